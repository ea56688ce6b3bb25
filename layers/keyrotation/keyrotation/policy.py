"""The life of an IAM access key, decided by pure functions.

This module is the whole key-lifecycle policy. Given one user's keys, tags and
groups, what the product delivered to that user before, the time and the
schedule, it says what to do with the user's keys today. Nothing here calls
AWS, reads the clock or keeps state: ``now`` is a parameter, so every decision
can be replayed and tested. The sentences that explain each decision are
written by :mod:`keyrotation.wording`.

The schedule is R = rotation_days, I = inactive_days, D = delete_days and
W = warning_days (:class:`~keyrotation.config.LifecycleConfig`). Its dates are
deadlines. Runs come on a schedule, at most ``config.run_interval`` apart, so
a run does what would otherwise be late by the next run: each event happens at
the last scheduled run before its date, the first run at or after
:func:`act_from` (the date less one run interval). With, for example, R = 75,
I = 90, D = 100, W = 7 and a daily run, a key made by the day's run lives like
this::

    day   0  key A is created by the run and delivered to the user's secret
    day  75  the last run before A is R days old: ROTATE A (key B is created and delivered)
    day  83  DISABLE_SOON notice: A will be disabled by day 90
    day  90  the last run before A is I days old (B is I-R = 15 days old): DISABLE A
    day 100  the last run before A is D days old (B is D-R = 25 days old): DELETE A
    day 150  the last run before B is R days old: ROTATE B, and so on.

Words used throughout:

- An **undelivered** key is one the product created for a rotation that never
  reached the user's secret, and whose id the ledger recorded as soon as
  CreateAccessKey answered. Nobody holds its secret; it is discarded.
- A key of **unknown origin** was created within :data:`PENDING_WINDOW` of a
  rotation that recorded its start but not its new key's id (the run died or
  timed out around CreateAccessKey): it may be the product's or the user's. It
  is never discarded on a guess; the user is blocked until a person decides.
- Every other key is a **readable** key: its secret is in the user's secret
  (the delivered key) or the user made it by hand (or had it before the
  product was installed).
- The **current** key is the newest Active readable key: the one the user is
  meant to use. Only the current key is ever rotated.
- A **retired** key is a readable key older than the current key. It is
  disabled on :func:`disable_on` and deleted on :func:`delete_on`.
- A **spare** key is an Inactive readable key that no newer Active key
  replaces (a lone Inactive key, or an Inactive key newer than the current
  key). It is deleted once it is D days old.
- A **re-enabled** key is a retired key the product disabled that is Active
  again: a person re-enabled it. Its first re-enable is honoured for D-I days
  from the day a run found it (:func:`honoured_until`); a second is not.

Safety rules that hold for every input (proved by
``tests/unit/test_policy_properties.py``):

1. DELETE is only planned for a key that is Inactive, or for an undelivered
   key right after its DISABLE. A readable key that is Active when the run
   starts is never deleted in that run.
2. ROTATE is only planned when the user will have a single key when it runs,
   so nobody ever needs a third key.
3. DISABLE is only planned for an undelivered key, or for a retired key whose
   replacement is Active: a user who has an Active readable key keeps one.
4. A retired key is disabled no sooner than I-R days and deleted no sooner
   than D-R days after its replacement was created, less one run interval,
   and a key the product disabled is deleted no sooner than D-I calendar days
   after that day.
5. Bad input changes nothing: an unreadable exemption tag, more than two
   keys, or a key of unknown origin yields notices and no action. A key is
   only ever discarded as undelivered when the ledger recorded its id.
6. The plan is a fixed point: carrying out its actions one at a time, each
   is still the first action :func:`decide` wants on the state it finds, and
   after the last one :func:`decide` wants nothing more that day.

How recently a key was used never changes a decision (IAM records usage only
approximately, and a key unused for months may belong to a quarterly job); it
is quoted in warnings and reasons so people can judge the impact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from keyrotation import wording
from keyrotation.clock import days, parse_day
from keyrotation.config import LifecycleConfig
from keyrotation.model import (
    AccessKey,
    Action,
    ActionType,
    Decision,
    Delivery,
    KeyStatus,
    Notice,
    NoticeKind,
    UserSnapshot,
    creation_order,
)
from keyrotation.schedule import first_run_at_or_after

#: IAM allows at most two access keys per user.
MAX_KEYS_PER_USER = 2

#: How long after ``Delivery.pending_since`` the product's own CreateAccessKey
#: can have happened. The intent is recorded by the same Lambda invocation just
#: before it calls CreateAccessKey, and an invocation lasts at most 15 minutes,
#: so a key created later than this is not the product's. A key created within
#: it, when the new key's id was not recorded, is of unknown origin.
PENDING_WINDOW = timedelta(minutes=15)

#: The key id under which user-level warnings are remembered in ``Delivery.warned``.
USER_LEVEL_KEY_ID = ""

_DATE_TAG_VALUE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only, used with fullmatch


# --------------------------------------------------------------------------
# The schedule's dates
# --------------------------------------------------------------------------


def act_from(deadline: datetime, config: LifecycleConfig) -> datetime:
    """The first moment a run acts on ``deadline``: one run interval before it.

    The next run may come after the deadline, so a run at or after this moment
    does what falls due: it is the last scheduled run before the deadline (or a
    later one, when runs were missed). With a run interval of zero, the
    deadline itself.

    Example:
        >>> daily = LifecycleConfig(
        ...     75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365, timedelta(days=1)
        ... )
        >>> act_from(datetime(2025, 4, 1, 6, 0, 5, tzinfo=UTC), daily)  # the 06:00 run of 1 April does it
        datetime.datetime(2025, 3, 31, 6, 0, 5, tzinfo=datetime.timezone.utc)
    """
    return deadline - config.run_interval


def acting_run(moment: datetime, config: LifecycleConfig) -> datetime:
    """When the run comes that acts from ``moment``: the moment an owner is told something happens.

    A run acts on what falls due from ``moment`` on (:func:`act_from`,
    :func:`disabled_from`, :func:`deleted_from`, a quarantine's end), so it is
    the first scheduled run at or after ``moment``. For a ``cron(...)``
    schedule that run's time is known exactly; for a ``rate(...)`` schedule
    (whose runs count from when its rule was made) it is at the latest one
    run interval later, and that is the moment given.

    Every date promised to an owner (a rotated key's disable and delete dates,
    a warning's disable date) is the date of this moment, so it is the date
    of the run that does it.

    Example:
        >>> daily = LifecycleConfig(
        ...     75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365, timedelta(days=1),
        ...     "cron(0 6 * * ? *)",
        ... )
        >>> deadline = datetime(2025, 12, 17, 3, 0, tzinfo=UTC)  # the key was made at 03:00
        >>> acting_run(act_from(deadline, daily), daily)  # the 06:00 run of the day before does it
        datetime.datetime(2025, 12, 16, 6, 0, tzinfo=datetime.timezone.utc)
    """
    run = _scheduled_run(moment, config)
    return moment + config.run_interval if run is None else run


def _scheduled_run(moment: datetime, config: LifecycleConfig) -> datetime | None:
    """The first run at or after ``moment`` of a ``cron(...)`` schedule; None when the schedule does not say."""
    return first_run_at_or_after(config.schedule_expression, moment) if config.schedule_expression else None


def retirement_runs(old: AccessKey, replacement: AccessKey, config: LifecycleConfig) -> tuple[datetime, datetime]:
    """When the runs come that disable and then delete a retired Active key, if nobody changes anything.

    The disable at the first run from :func:`disabled_from`; the delete at the
    first run from :func:`deleted_from`, whose quarantine counts from the day
    of that disable. These are the dates promised when the key is replaced and
    in its DISABLE_SOON warning (:func:`acting_run`).
    """
    disabled = acting_run(act_from(disable_on(old, replacement, config), config), config)
    delete_from = max(
        act_from(delete_on(old, replacement, config), config), _start_of_day(disabled) + days(config.quarantine_days)
    )
    return disabled, acting_run(delete_from, config)


def rotate_on(key: AccessKey, config: LifecycleConfig) -> datetime:
    """When ``key`` is due for a replacement: R days after it was created.

    The rotation happens at the last run before then (:func:`act_from`).

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> key = AccessKey("AKIAOLD", KeyStatus.ACTIVE, datetime(2025, 1, 1, tzinfo=UTC))
        >>> schedule = LifecycleConfig(75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> rotate_on(key, schedule).date()
        datetime.date(2025, 3, 17)
    """
    return key.created + days(config.rotation_days)


def disable_on(old: AccessKey, replacement: AccessKey, config: LifecycleConfig) -> datetime:
    """When a retired key is due to be disabled, given the newer Active key that replaces it.

    I days after ``old`` was created, and never sooner than I-R days after
    ``replacement`` was created, so a user always has I-R days (less one run
    interval: the disable happens at the last run before this date, see
    :func:`act_from`) to switch to the new key, even when the rotation
    happened late.

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, datetime(2025, 1, 1, tzinfo=UTC))
        >>> on_time = AccessKey("AKIANEW", KeyStatus.ACTIVE, datetime(2025, 3, 17, tzinfo=UTC))  # day 75
        >>> schedule = LifecycleConfig(75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> disable_on(old, on_time, schedule).date()  # day 90
        datetime.date(2025, 4, 1)
        >>> late = AccessKey("AKIANEW", KeyStatus.ACTIVE, datetime(2025, 7, 20, tzinfo=UTC))  # day 200
        >>> disable_on(old, late, schedule).date()  # day 215: 15 days after the late rotation
        datetime.date(2025, 8, 4)
    """
    return max(
        old.created + days(config.inactive_days),
        replacement.created + days(config.disable_grace_days),
    )


def delete_on(old: AccessKey, replacement: AccessKey, config: LifecycleConfig) -> datetime:
    """When a retired key is due to be deleted (once Inactive), given the newer Active key that replaces it.

    D days after ``old`` was created, and never sooner than D-R days after
    ``replacement`` was created. It is always D-I days after :func:`disable_on`.
    The deletion happens at the last run before this date (:func:`act_from`).

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> old = AccessKey("AKIAOLD", KeyStatus.INACTIVE, datetime(2025, 1, 1, tzinfo=UTC))
        >>> on_time = AccessKey("AKIANEW", KeyStatus.ACTIVE, datetime(2025, 3, 17, tzinfo=UTC))  # day 75
        >>> schedule = LifecycleConfig(75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> delete_on(old, on_time, schedule).date()  # day 100
        datetime.date(2025, 4, 11)
        >>> late = AccessKey("AKIANEW", KeyStatus.ACTIVE, datetime(2025, 7, 20, tzinfo=UTC))  # day 200
        >>> delete_on(old, late, schedule).date()  # day 225: 25 days after the late rotation
        datetime.date(2025, 8, 14)
    """
    return max(
        old.created + days(config.delete_days),
        replacement.created + days(config.delete_grace_days),
    )


def disabled_by_product_on(key: AccessKey, delivery: Delivery) -> datetime | None:
    """When the product last set ``key`` Inactive, or None if it never did (or it was not recorded)."""
    moments = [moment for key_id, moment in delivery.disabled if key_id == key.key_id]
    return max(moments) if moments else None


def quarantine_ends(key: AccessKey, delivery: Delivery, config: LifecycleConfig) -> datetime | None:
    """The earliest deletion of a key the product disabled: D-I calendar days (UTC) after that day.

    This is the gap between disabling and deleting on the normal schedule. It
    also holds when a key is first disabled late (already older than D), so
    its owner can notice and react before the key is gone for good. None when
    the product never disabled the key.

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> key = AccessKey("AKIAOLD", KeyStatus.INACTIVE, datetime(2024, 1, 1, tzinfo=UTC))
        >>> record = Delivery(disabled=frozenset({("AKIAOLD", datetime(2025, 6, 1, 14, 30, tzinfo=UTC))}))
        >>> schedule = LifecycleConfig(75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> quarantine_ends(key, record, schedule)
        datetime.datetime(2025, 6, 11, 0, 0, tzinfo=datetime.timezone.utc)
    """
    disabled = disabled_by_product_on(key, delivery)
    if disabled is None:
        return None
    return _start_of_day(disabled) + days(config.quarantine_days)


def deletion_due(key: AccessKey, replacement: AccessKey | None, config: LifecycleConfig) -> datetime:
    """When a readable Inactive key is due to be deleted, before any quarantine.

    A retired key (``replacement`` is the newer Active key) on :func:`delete_on`;
    a spare key (``replacement`` is None) once it is D days old.
    """
    if replacement is None:
        return key.created + days(config.delete_days)
    return delete_on(key, replacement, config)


def deleted_from(
    key: AccessKey, replacement: AccessKey | None, delivery: Delivery, config: LifecycleConfig
) -> datetime:
    """The first moment a run deletes a readable Inactive key.

    The last run before :func:`deletion_due` (:func:`act_from`), and not before
    :func:`quarantine_ends` (a quarantine is a grace, never shortened).
    """
    start = act_from(deletion_due(key, replacement, config), config)
    quarantine = quarantine_ends(key, delivery, config)
    return start if quarantine is None else max(start, quarantine)


def undone_disable(key: AccessKey, delivery: Delivery) -> datetime | None:
    """When the product disabled ``key``, if a person has set it Active since; None otherwise.

    The product's latest disable of the key must be done (``Delivery.disabled_done``):
    a disable whose UpdateAccessKey failed left the key Active, and is no re-enable.
    """
    disabled = disabled_by_product_on(key, delivery)
    if not key.active or disabled is None or (key.key_id, disabled) not in delivery.disabled_done:
        return None
    return disabled


def reenable_found(key: AccessKey, delivery: Delivery) -> datetime | None:
    """When a run first found ``key`` Active after the product last disabled it, or None if no run recorded it."""
    disabled = disabled_by_product_on(key, delivery)
    return None if disabled is None else reenable_found_since(key.key_id, disabled, delivery)


def reenable_found_since(key_id: str, disabled: datetime, delivery: Delivery) -> datetime | None:
    """When a run first recorded key ``key_id`` Active again at or after ``disabled``; None if none did.

    By key id, for readers that have no key in hand (the credential report has no key ids).

    Example:
        >>> disabled = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)
        >>> record = Delivery(reenabled=frozenset({("AKIAOLD", disabled - days(9)), ("AKIAOLD", disabled + days(2))}))
        >>> reenable_found_since("AKIAOLD", disabled, record) == disabled + days(2)
        True
        >>> reenable_found_since("AKIAOLD", disabled + days(3), record) is None
        True
    """
    found = [moment for found_id, moment in delivery.reenabled if found_id == key_id and moment >= disabled]
    return min(found) if found else None


def reenabled_before(key: AccessKey, delivery: Delivery) -> bool:
    """Whether a person re-enabled ``key`` once already, and the product disabled it again since."""
    disabled = disabled_by_product_on(key, delivery)
    return disabled is not None and any(
        key_id == key.key_id and moment < disabled for key_id, moment in delivery.reenabled
    )


def honoured_until(key: AccessKey, delivery: Delivery, now: datetime, config: LifecycleConfig) -> datetime | None:
    """Until when a person's re-enable of a key the product disabled is honoured; None if there is none to honour.

    The first re-enable of a key is honoured for D-I calendar days (UTC) from
    the day of the run that found it Active (``now`` if no run recorded it
    yet), the time the product leaves between disabling a key and deleting it.
    None for a key that nobody re-enabled (see :func:`undone_disable`), or that
    was re-enabled once already: a second re-enable is not honoured.

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> key = AccessKey("AKIAOLD", KeyStatus.ACTIVE, datetime(2025, 1, 1, tzinfo=UTC))
        >>> disabled = datetime(2025, 4, 1, 6, 0, tzinfo=UTC)
        >>> found = datetime(2025, 4, 3, 6, 0, tzinfo=UTC)
        >>> schedule = LifecycleConfig(75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> done = frozenset({("AKIAOLD", disabled)})
        >>> record = Delivery(disabled=done, disabled_done=done, reenabled=frozenset({("AKIAOLD", found)}))
        >>> honoured_until(key, record, found + days(1), schedule)
        datetime.datetime(2025, 4, 13, 0, 0, tzinfo=datetime.timezone.utc)
        >>> again = done | {("AKIAOLD", disabled + days(12))}
        >>> second = Delivery(disabled=again, disabled_done=again, reenabled=record.reenabled)
        >>> honoured_until(key, second, found + days(13), schedule) is None  # re-enabled a second time
        True
    """
    if undone_disable(key, delivery) is None or reenabled_before(key, delivery):
        return None
    found = reenable_found(key, delivery) or now
    return _start_of_day(found) + days(config.quarantine_days)


def disabled_from(
    old: AccessKey, replacement: AccessKey, delivery: Delivery, now: datetime, config: LifecycleConfig
) -> datetime:
    """The first moment a run disables a retired Active key.

    The last run before :func:`disable_on` (:func:`act_from`), and not before a
    person's re-enable of it stops being honoured (:func:`honoured_until`).
    """
    start = act_from(disable_on(old, replacement, config), config)
    honoured = honoured_until(old, delivery, now, config)
    return start if honoured is None else max(start, honoured)


def unrecorded_reenables(user: UserSnapshot, delivery: Delivery) -> tuple[str, ...]:
    """The keys of ``user`` a run finds re-enabled by a person and must record (see ``Delivery.reenabled``).

    Readable retired keys the product disabled that are Active again, and whose
    re-enable no run recorded yet. The audit records them in a real run, so the
    honoured D-I days count from the first run that found them.

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, datetime(2025, 1, 1, tzinfo=UTC))
        >>> new = AccessKey("AKIANEW", KeyStatus.ACTIVE, datetime(2025, 3, 17, tzinfo=UTC))
        >>> alice = UserSnapshot("alice", "arn:aws:iam::111122223333:user/alice", keys=(old, new))
        >>> done = frozenset({("AKIAOLD", datetime(2025, 4, 1, tzinfo=UTC))})
        >>> unrecorded_reenables(alice, Delivery(disabled=done, disabled_done=done))
        ('AKIAOLD',)
        >>> unrecorded_reenables(alice, Delivery(disabled=done))  # the disable failed: AKIAOLD was never Inactive
        ()
    """
    if len(user.keys) > MAX_KEYS_PER_USER or unknown_origin_keys(user.keys, delivery):
        return ()  # the user is blocked: no decision is made on its keys
    undelivered = undelivered_keys(user.keys, delivery)
    ring = key_ring(user.keys, undelivered[0] if undelivered else None)
    return tuple(
        key.key_id
        for key in ring.readable
        if key.active
        and ring.replacement_of(key) is not None
        and undone_disable(key, delivery) is not None
        and not reenabled_before(key, delivery)
        and reenable_found(key, delivery) is None
    )


# --------------------------------------------------------------------------
# Exemptions
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Exemption:
    """Whether a user is exempt from the lifecycle, and on what grounds.

    ``exempt``: no key of the user is touched this run.
    ``grounds``: what exempts the user, as words that follow the user's name.
    ``last_day``: the last exempt day (UTC, inclusive) of a dated tag; None when
    the exemption has no end or the user is not exempt.
    ``tag_error``: why the exemption tag's value cannot be used, or None. A
    user with a tag error is never exempt by the tag, and gets no action
    either (see :func:`decide`).
    """

    exempt: bool
    grounds: str | None = None
    last_day: date | None = None
    tag_error: str | None = None

    @property
    def ends(self) -> datetime | None:
        """The first moment the user is no longer exempt: midnight UTC after ``last_day``."""
        if self.last_day is None or self.last_day == date.max:
            return None
        return datetime.combine(self.last_day + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def last_moment(self) -> datetime | None:
        """The last exempt second, 23:59:59 UTC of ``last_day``: a notice's ``due``, whose day is the tag's date.

        (``ends`` is midnight after it, the next day: shown as a day, it would not be the date the tag gives.)
        """
        if self.last_day is None or self.last_day == date.max:
            return None
        return datetime.combine(self.last_day, time(23, 59, 59), tzinfo=UTC)


def exemption(user: UserSnapshot, now: datetime, config: LifecycleConfig) -> Exemption:
    """Read the user's exemption from its group membership and its exemption tag.

    - Membership of ``config.exempt_group_name`` exempts, without end: joining
      the group takes a privileged IAM action (``iam:AddUserToGroup``).
    - Tag ``config.exempt_tag_key`` = a date ``YYYY-MM-DD`` at most
      ``config.max_exemption_days`` ahead exempts until the end of that day
      (UTC); a past date exempts no more. A tag takes only ``iam:TagUser``, so
      it never exempts for good.
    - Any other tag value is an error: not exempt, and reported. That includes
      ``true`` (a permanent exemption is the group's to give) and a date
      further ahead than ``config.max_exemption_days``.

    Tag keys and group names are compared ignoring case, as IAM does (it does
    not allow two tag keys or two group names that differ only in case).
    Surrounding spaces in the tag value are ignored.

    Example:
        >>> now = datetime(2025, 6, 1, tzinfo=UTC)
        >>> arn = "arn:aws:iam::111122223333:user/alice"
        >>> schedule = LifecycleConfig(75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> def tagged(value):
        ...     user = UserSnapshot("alice", arn, tags={"key-rotation:exempt": value})
        ...     return exemption(user, now, schedule)
        >>> tagged("2025-06-30").exempt, tagged("2025-06-30").last_day, tagged("2025-06-30").ends
        (True, datetime.date(2025, 6, 30), datetime.datetime(2025, 7, 1, 0, 0, tzinfo=datetime.timezone.utc))
        >>> tagged("yes").exempt, tagged("yes").tag_error
        (False, "the tag key-rotation:exempt has the value 'yes', which is not a date written YYYY-MM-DD")
        >>> tagged("2027-01-01").exempt  # more than 365 days ahead
        False
    """
    tag = _exempt_tag(user.tags, config.exempt_tag_key)
    tag_error: str | None = None
    tag_last_day: date | None = None
    if tag is not None:
        tag_key, tag_value = tag
        value = tag_value.strip()
        latest = _latest_exemption_day(now, config)
        if value.lower() == "true":
            tag_error = wording.permanent_tag_exemption(tag_key, tag_value, config.exempt_group_name)
        elif _DATE_TAG_VALUE.fullmatch(value) and _is_calendar_date(value):
            if parse_day(value) > latest:
                tag_error = wording.exemption_too_far(tag_key, tag_value, latest, config.max_exemption_days)
            else:
                tag_last_day = parse_day(value)
        else:
            tag_error = wording.invalid_tag_value(tag_key, tag_value)

    group = _exempt_group(user.groups, config.exempt_group_name)
    if group is not None:
        return Exemption(True, wording.exempt_by_group(group), tag_error=tag_error)
    if tag is not None and tag_last_day is not None and _today(now) <= tag_last_day:
        return Exemption(True, wording.exempt_by_tag(*tag), last_day=tag_last_day)
    return Exemption(False, tag_error=tag_error)


def _latest_exemption_day(now: datetime, config: LifecycleConfig) -> date:
    """The last day an exemption tag may name today: MaxExemptionDays ahead (the calendar's end at most)."""
    try:
        return _today(now) + timedelta(days=config.max_exemption_days)
    except OverflowError:
        return date.max


def _exempt_tag(tags: dict[str, str], tag_key: str) -> tuple[str, str] | None:
    for key, value in tags.items():
        if key.lower() == tag_key.lower():
            return key, value
    return None


def _exempt_group(groups: Iterable[str], group_name: str) -> str | None:
    if not group_name:
        return None
    for group in groups:
        if group.lower() == group_name.lower():
            return group
    return None


def _is_calendar_date(text: str) -> bool:
    try:
        parse_day(text)
    except ValueError:
        return False
    return True


def _exemption_notices(
    user: UserSnapshot, status: Exemption, delivery: Delivery, now: datetime, config: LifecycleConfig
) -> tuple[Notice, ...]:
    """Step 1: EXEMPT; EXEMPTION_EXPIRING once in the W days before a dated exemption ends; INVALID_TAG."""
    notices = [
        Notice(
            NoticeKind.EXEMPT,
            user.user_name,
            None,
            wording.exempt_detail(user, status.grounds, status.last_day, now),
            due=status.last_moment,
        )
    ]
    ends = status.ends
    already_warned = (USER_LEVEL_KEY_ID, NoticeKind.EXEMPTION_EXPIRING.value) in delivery.warned
    if (
        status.last_day is not None
        and ends is not None
        and not already_warned
        and ends - now <= days(config.warning_days)
    ):
        detail = wording.exemption_expiring_detail(user, status.last_day, ends)
        notices.append(Notice(NoticeKind.EXEMPTION_EXPIRING, user.user_name, None, detail, due=status.last_moment))
    if status.tag_error is not None:
        notices.append(_invalid_tag_notice(user, status.tag_error, now))
    return tuple(notices)


def _invalid_tag_notice(user: UserSnapshot, tag_error: str, now: datetime) -> Notice:
    return Notice(NoticeKind.INVALID_TAG, user.user_name, None, wording.invalid_tag_detail(user, tag_error, now))


# --------------------------------------------------------------------------
# Which key is which
# --------------------------------------------------------------------------


def undelivered_keys(keys: Sequence[AccessKey], delivery: Delivery) -> tuple[AccessKey, ...]:
    """The key the product can prove it created for a rotation that never reached the user's secret.

    Only the key whose id the ledger recorded (``pending_key_id``, written by
    the invocation that called CreateAccessKey as soon as it answered), and
    never the delivered key. A key is never taken for the product's by its
    creation time alone: see :func:`unknown_origin_keys`.

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> started = datetime(2025, 6, 1, 2, 0, 0, 400000, tzinfo=UTC)
        >>> ours = AccessKey("AKIANEW", KeyStatus.ACTIVE, datetime(2025, 6, 1, 2, 0, 1, tzinfo=UTC))
        >>> [k.key_id for k in undelivered_keys([ours], Delivery(pending_key_id="AKIANEW", pending_since=started))]
        ['AKIANEW']
        >>> undelivered_keys([ours], Delivery(pending_since=started))
        ()
    """
    if delivery.pending_key_id is None:
        return ()
    return tuple(
        key for key in keys if key.key_id == delivery.pending_key_id and key.key_id != delivery.delivered_key_id
    )


def unknown_origin_keys(keys: Sequence[AccessKey], delivery: Delivery) -> tuple[AccessKey, ...]:
    """Keys that may or may not be the product's: see "unknown origin" above.

    A rotation recorded its start (``pending_since``) but not its new key's id,
    so the product cannot tell whether its CreateAccessKey made a key (it died
    or timed out around the call). Every key created within
    :data:`PENDING_WINDOW` of the start could be that key, or one the user made
    by hand. IAM reports creation times to the second, so ``pending_since`` is
    compared to the second. The delivered key is never among them.

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> started = datetime(2025, 6, 1, 2, 0, 0, 400000, tzinfo=UTC)
        >>> maybe = AccessKey("AKIAMAYBE", KeyStatus.ACTIVE, datetime(2025, 6, 1, 2, 0, 0, tzinfo=UTC))
        >>> later = AccessKey("AKIAHAND", KeyStatus.ACTIVE, datetime(2025, 6, 3, tzinfo=UTC))
        >>> [k.key_id for k in unknown_origin_keys([maybe, later], Delivery(pending_since=started))]
        ['AKIAMAYBE']
    """
    if delivery.pending_key_id is not None or delivery.pending_since is None:
        return ()
    earliest = delivery.pending_since.replace(microsecond=0)
    latest = delivery.pending_since + PENDING_WINDOW
    return tuple(key for key in keys if earliest <= key.created <= latest and key.key_id != delivery.delivered_key_id)


@dataclass(frozen=True)
class KeyRing:
    """A user's keys sorted into the roles the lifecycle gives them.

    ``undelivered``: the key to discard, if any.
    ``readable``: every other key, oldest first.
    """

    undelivered: AccessKey | None
    readable: tuple[AccessKey, ...]

    @property
    def current(self) -> AccessKey | None:
        """The newest Active readable key: the one the user is meant to use."""
        active = [key for key in self.readable if key.active]
        return active[-1] if active else None

    def replacement_of(self, key: AccessKey) -> AccessKey | None:
        """The newer Active key that replaces ``key``, or None (``key`` is current or spare)."""
        current = self.current
        if current is None or current.key_id == key.key_id or creation_order(current) < creation_order(key):
            return None
        return current


def key_ring(keys: Sequence[AccessKey], undelivered: AccessKey | None) -> KeyRing:
    """Sort ``keys`` oldest first (ties broken by key id) and set the undelivered one apart."""
    readable = tuple(
        sorted((key for key in keys if undelivered is None or key.key_id != undelivered.key_id), key=creation_order)
    )
    return KeyRing(undelivered, readable)


# --------------------------------------------------------------------------
# The decision for one user
# --------------------------------------------------------------------------


def decide(user: UserSnapshot, delivery: Delivery, now: datetime, config: LifecycleConfig) -> Decision:
    """What to do with one user's keys at ``now``: actions in the order they must run, and notices.

    In this order:

    1. An exempt user gets an EXEMPT notice (and EXEMPTION_EXPIRING once, W
       days before a dated exemption ends) and no action.
    2. An unreadable exemption tag gets an INVALID_TAG notice and no action.
    3. More than two keys, or a key of unknown origin: a BLOCKED notice and no
       action, until a person resolves it.
    4. The undelivered key, if any, is discarded: DISABLE (if Active), DELETE.
    5. Each readable key, oldest first: a retired Active key is disabled from
       :func:`disabled_from` (with a DISABLE_SOON notice W days before, and a
       REENABLED notice when a run first finds a person re-enabled it, or
       re-enabled it a second time); a retired or spare Inactive key is
       deleted from :func:`deleted_from`.
    6. The current key is rotated at the last run before it is R days old,
       provided every other key is deleted by the steps above; otherwise a
       BLOCKED notice says when the rotation will happen and what the user
       can do.

    ``now`` must be timezone-aware.

    Example:
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> now = datetime(2025, 6, 1, tzinfo=UTC)
        >>> old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, now - days(80))
        >>> user = UserSnapshot("alice", "arn:aws:iam::111122223333:user/alice", keys=(old,))
        >>> schedule = LifecycleConfig(75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> [(a.type.value, a.key_id) for a in decide(user, Delivery(), now, schedule).actions]
        [('rotate', 'AKIAOLD')]
    """
    delivery = delivery.for_user(user.user_id)  # a record written for an earlier user of the name is not theirs
    status = exemption(user, now, config)
    if status.exempt:
        return Decision(notices=_exemption_notices(user, status, delivery, now, config), exempt=True)
    if status.tag_error is not None:
        return Decision(notices=(_invalid_tag_notice(user, status.tag_error, now),))
    if len(user.keys) > MAX_KEYS_PER_USER:
        detail = wording.too_many_keys_detail(user, MAX_KEYS_PER_USER)
        return Decision(notices=(Notice(NoticeKind.BLOCKED, user.user_name, None, detail),))
    unknown = unknown_origin_keys(user.keys, delivery)
    if unknown:
        detail = wording.ambiguous_rotation_detail(user, unknown, delivery.pending_since, delivery.pending_run_id)
        return Decision(notices=(Notice(NoticeKind.BLOCKED, user.user_name, None, detail),))
    undelivered = undelivered_keys(user.keys, delivery)
    ring = key_ring(user.keys, undelivered[0] if undelivered else None)
    return _lifecycle(user, ring, delivery, now, config)


def _lifecycle(
    user: UserSnapshot, ring: KeyRing, delivery: Delivery, now: datetime, config: LifecycleConfig
) -> Decision:
    steps: list[Decision] = []
    if ring.undelivered is not None:
        steps.append(_discard(user, ring.undelivered))
    for key in ring.readable:
        replacement = ring.replacement_of(key)
        if key.active and replacement is not None:
            steps.append(_retire_active(user, key, replacement, delivery, now, config))
        elif not key.active:
            steps.append(_delete_inactive(user, key, replacement, delivery, now, config))
    planned = _merge(steps)
    return _merge([planned, _rotate_current(user, ring, planned.actions, delivery, now, config)])


def _discard(user: UserSnapshot, key: AccessKey) -> Decision:
    """Step 4: an undelivered key is disabled (if Active) and deleted in the same run."""
    actions = []
    if key.active:
        actions.append(Action(ActionType.DISABLE, user.user_name, key.key_id, wording.discard_reason(key, "disabled")))
    actions.append(Action(ActionType.DELETE, user.user_name, key.key_id, wording.discard_reason(key, "deleted")))
    return Decision(actions=tuple(actions))


def _retire_active(
    user: UserSnapshot,
    key: AccessKey,
    replacement: AccessKey,
    delivery: Delivery,
    now: datetime,
    config: LifecycleConfig,
) -> Decision:
    """Step 5, retired Active key: DISABLE from its moment, DISABLE_SOON once in the W days before.

    A key the product disabled that is Active again was re-enabled by a person:
    the run that first finds it says how long the re-enable is honoured, and a
    second re-enable is announced as not honoured, with the DISABLE.
    """
    when = disable_on(key, replacement, config)
    start = disabled_from(key, replacement, delivery, now, config)
    disabled = undone_disable(key, delivery)
    honoured = honoured_until(key, delivery, now, config)
    notices: tuple[Notice, ...] = ()
    if disabled is not None and honoured is None:
        detail = wording.reenabled_again_detail(user, key, disabled, _start_of_day(now) + days(config.quarantine_days))
        notices = (Notice(NoticeKind.REENABLED, user.user_name, key.key_id, detail),)  # not honoured: no date
    elif disabled is not None and honoured is not None and reenable_found(key, delivery) is None:
        detail = wording.reenabled_detail(user, key, disabled, honoured, config)
        notices = (Notice(NoticeKind.REENABLED, user.user_name, key.key_id, detail, due=honoured),)
    if now >= start:
        if disabled is None:
            reason = wording.disable_reason(key, replacement, when, now, config)
        else:
            reason = wording.disable_again_reason(key, disabled, honoured)
        return Decision(actions=(Action(ActionType.DISABLE, user.user_name, key.key_id, reason),), notices=notices)
    warned = (key.key_id, NoticeKind.DISABLE_SOON.value) in delivery.warned
    if now >= start - days(config.warning_days) and not warned and disabled is None:
        disable_run, delete_run = retirement_runs(key, replacement, config)
        switch_by = _scheduled_run(start, config) or start  # the earliest the disable can come
        detail = wording.disable_soon_detail(user, key, replacement, disable_run, delete_run, switch_by)
        notices += (Notice(NoticeKind.DISABLE_SOON, user.user_name, key.key_id, detail, due=disable_run),)
    return Decision(notices=notices)


def _delete_inactive(
    user: UserSnapshot,
    key: AccessKey,
    replacement: AccessKey | None,
    delivery: Delivery,
    now: datetime,
    config: LifecycleConfig,
) -> Decision:
    """Step 5, Inactive readable key: DELETE from its moment (:func:`deleted_from`)."""
    if now < deleted_from(key, replacement, delivery, config):
        return Decision()
    reason = wording.delete_reason(
        key, replacement, deletion_due(key, replacement, config), now, disabled_by_product_on(key, delivery), config
    )
    return Decision(actions=(Action(ActionType.DELETE, user.user_name, key.key_id, reason),))


def _rotate_current(
    user: UserSnapshot,
    ring: KeyRing,
    planned: Sequence[Action],
    delivery: Delivery,
    now: datetime,
    config: LifecycleConfig,
) -> Decision:
    """Step 6: ROTATE the current key at the last run before it is R days old, if every other key is deleted first."""
    current = ring.current
    if current is None or now < act_from(rotate_on(current, config), config):
        return Decision()
    deleted = {action.key_id for action in planned if action.type is ActionType.DELETE}
    left = [key for key in user.keys if key.key_id != current.key_id and key.key_id not in deleted]
    if not left:
        made_now = AccessKey("", KeyStatus.ACTIVE, now)  # the replacement, as the rotation is about to make it
        disable_by, delete_by = retirement_runs(current, made_now, config)
        reason = wording.rotate_reason(current, rotate_on(current, config), now, disable_by, delete_by, config)
        return Decision(actions=(Action(ActionType.ROTATE, user.user_name, current.key_id, reason),))
    blocker = left[0]
    frees_on = _expected_deletion(blocker, current, planned, delivery, now, config)
    detail = _blocked_detail(user, current, blocker, frees_on, delivery, now, config)
    return Decision(notices=(Notice(NoticeKind.BLOCKED, user.user_name, current.key_id, detail, due=frees_on),))


def _blocked_detail(
    user: UserSnapshot,
    current: AccessKey,
    blocker: AccessKey,
    frees_on: datetime,
    delivery: Delivery,
    now: datetime,
    config: LifecycleConfig,
) -> str:
    """Step 6's BLOCKED notice, worded for the role the other key plays (see :func:`_expected_deletion`)."""
    due = rotate_on(current, config)
    if blocker.active:
        disable_from = max(now, disabled_from(blocker, current, delivery, now, config))
        return wording.blocked_by_retired_key(user, current, due, blocker, disable_from, frees_on, now)
    if creation_order(blocker) < creation_order(current):
        return wording.blocked_by_inactive_key(user, current, due, blocker, frees_on, now)
    return wording.blocked_by_spare_key(user, current, due, blocker, frees_on, now, config)


def _expected_deletion(
    blocker: AccessKey,
    current: AccessKey,
    planned: Sequence[Action],
    delivery: Delivery,
    now: datetime,
    config: LifecycleConfig,
) -> datetime:
    """When the other key, which holds the second slot, will be deleted if nobody changes anything.

    The blocker is never the undelivered key (always deleted in the plan). If
    Active, it is a retired key (older than the current key, the newest Active
    one); if Inactive, it is retired when older than the current key, and
    spare when newer.
    """
    if not blocker.active:
        replacement = current if creation_order(blocker) < creation_order(current) else None
        return deleted_from(blocker, replacement, delivery, config)
    disabled_in_plan = any(a.type is ActionType.DISABLE and a.key_id == blocker.key_id for a in planned)
    disable_day = now if disabled_in_plan else disabled_from(blocker, current, delivery, now, config)
    quarantine = _start_of_day(disable_day) + days(config.quarantine_days)
    return max(act_from(delete_on(blocker, current, config), config), quarantine)


def _merge(parts: Iterable[Decision]) -> Decision:
    actions: list[Action] = []
    notices: list[Notice] = []
    for part in parts:
        actions.extend(part.actions)
        notices.extend(part.notices)
    return Decision(actions=tuple(actions), notices=tuple(notices))


def decision_moments(
    user: UserSnapshot, delivery: Delivery, after: datetime, config: LifecycleConfig
) -> list[datetime]:
    """The moments after ``after`` at which :func:`decide` may change its verdict for ``user``, in order.

    As long as the user's keys, tags and groups and its ledger record stay as they are, :func:`decide`
    compares the moment it is asked at only with: a key's creation plus R, I, D, I-R or D-R days (W days
    earlier for a warning); the day after a disable or re-enable record plus D-I days; the day a dated
    exemption tag starts to be near enough to exempt (``max_exemption_days`` before its day) and the
    midnight after its day, when the exemption ends (W days earlier for its notice); and each of these
    less one run interval (a run acts at the last run before a date, :func:`act_from`). Each date it acts
    or speaks on is the later of some of these, so its verdict can only change at one of them: the
    triage's quiet mark and the inventory's next-action dates ask it there and nowhere else.

    Example:
        >>> daily = LifecycleConfig(
        ...     75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365, timedelta(days=1)
        ... )
        >>> made = datetime(2025, 1, 1, 6, tzinfo=UTC)
        >>> user = UserSnapshot("alice", "arn:aws:iam::111122223333:user/alice", keys=(AccessKey("AKIA1", KeyStatus.ACTIVE, made),))
        >>> [str(moment.date()) for moment in decision_moments(user, Delivery(), made, daily)][:4]  # I-R-W, I-R days
        ['2025-01-08', '2025-01-09', '2025-01-15', '2025-01-16']
        >>> tagged = UserSnapshot(user.user_name, user.user_arn, keys=user.keys, tags={"key-rotation:exempt": "2025-02-10"})
        >>> added = set(decision_moments(tagged, Delivery(), made, daily)) - set(decision_moments(user, Delivery(), made, daily))
        >>> sorted(str(moment) for moment in added)  # the exemption's warning and its end, each one run early too
        ['2025-02-03 00:00:00+00:00', '2025-02-04 00:00:00+00:00', '2025-02-10 00:00:00+00:00', '2025-02-11 00:00:00+00:00']
    """
    offsets = {
        config.rotation_days,
        config.inactive_days,
        config.delete_days,
        config.disable_grace_days,
        config.delete_grace_days,
        config.inactive_days - config.warning_days,
        config.disable_grace_days - config.warning_days,
    }
    deadlines = {key.created + days(offset) for key in user.keys for offset in offsets}
    for _, moment in delivery.disabled | delivery.reenabled:  # deletes, and the end of an honoured re-enable
        deadlines.add(_start_of_day(moment) + days(config.quarantine_days))
    deadlines.update(_exemption_tag_moments(user, config))
    moments = {moment for deadline in deadlines for moment in (deadline, act_from(deadline, config))}
    return sorted(moment for moment in moments if moment > after)


def _exemption_tag_moments(user: UserSnapshot, config: LifecycleConfig) -> set[datetime]:
    """When a dated exemption tag starts to exempt, stops (the midnight after its day), and W days before that."""
    tag = _exempt_tag(user.tags, config.exempt_tag_key)
    value = tag[1].strip() if tag else ""
    if not (_DATE_TAG_VALUE.fullmatch(value) and _is_calendar_date(value)):
        return set()
    day = parse_day(value)
    found = set()
    for first, offset in ((day, -config.max_exemption_days), (day, 1), (day, 1 - config.warning_days)):
        try:
            found.add(datetime.combine(first + timedelta(days=offset), time(), tzinfo=UTC))
        except OverflowError:
            continue  # a day at the calendar's end: nothing changes there
    return found


# --------------------------------------------------------------------------
# The plan for one account
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountPlan:
    """What one account's run does.

    ``actions``: to carry out in this order (each user's actions consecutive).
    ``notices``: every notice of every user, plus one DEFERRED per deferred action.
    ``deferred``: actions left for a later run because of MaxActionsPerAccount.
    """

    actions: tuple[Action, ...] = ()
    notices: tuple[Notice, ...] = ()
    deferred: tuple[Action, ...] = ()


def plan_account(decisions: Sequence[Decision], config: LifecycleConfig) -> AccountPlan:
    """Keep at most ``config.max_actions_per_account`` actions for one account's run.

    Users are taken in the order given, each with all of its actions. The
    first user whose actions do not fit in what is left is deferred whole, and
    so is every user after it, so the plan is always a prefix of the work and
    nobody's sequence is started and left unfinished. One exception keeps a
    small limit from stalling a user forever: when a user's sequence alone is
    longer than the limit and nothing was planned before it, its first
    ``limit`` actions run now and the rest next time (every prefix of a
    user's sequence is itself a safe plan; see :func:`decide`).

    Example:
        >>> def user(name, n):
        ...     return Decision(actions=tuple(Action(ActionType.DELETE, name, f"AKIA{name}{i}", "r") for i in range(n)))
        >>> at_most_3 = LifecycleConfig(75, 90, 100, 7, 3, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365)
        >>> plan = plan_account([user("a", 2), user("b", 2), user("c", 1)], at_most_3)
        >>> [a.key_id for a in plan.actions], [a.key_id for a in plan.deferred]
        (['AKIAa0', 'AKIAa1'], ['AKIAb0', 'AKIAb1', 'AKIAc0'])
    """
    limit = config.max_actions_per_account
    actions: list[Action] = []
    notices: list[Notice] = []
    deferred: list[Action] = []
    closed = False
    for decision in decisions:
        notices.extend(decision.notices)
        wanted = decision.actions
        if closed:
            taken = 0
        elif len(actions) + len(wanted) <= limit:
            taken = len(wanted)
        elif not actions:
            taken = limit
        else:
            taken = 0
        actions.extend(wanted[:taken])
        for action in wanted[taken:]:
            deferred.append(action)
            notices.append(
                Notice(NoticeKind.DEFERRED, action.user_name, action.key_id, wording.deferred_detail(action, limit))
            )
        if taken < len(wanted):
            closed = True
    return AccountPlan(actions=tuple(actions), notices=tuple(notices), deferred=tuple(deferred))


# --------------------------------------------------------------------------
# The check every action function makes before it mutates anything
# --------------------------------------------------------------------------


def wants(decision: Decision, action_type: ActionType, key_id: str) -> bool:
    """Whether ``decision`` (made on freshly read state) still wants this action *next*.

    Each action function re-reads the user's keys, calls :func:`decide` again
    and mutates only if this is True. Only the first action counts, so an
    action whose predecessors did not happen is never carried out out of order.

    Example:
        >>> delete_old = Action(ActionType.DELETE, "bob", "AKIAOLD", "r")
        >>> plan = Decision(actions=(delete_old, Action(ActionType.ROTATE, "bob", "AKIANEW", "r")))
        >>> wants(plan, ActionType.DELETE, "AKIAOLD"), wants(plan, ActionType.ROTATE, "AKIANEW")
        (True, False)
    """
    if not decision.actions:
        return False
    first = decision.actions[0]
    return first.type == action_type and first.key_id == key_id


def _today(now: datetime) -> date:
    return now.astimezone(UTC).date()


def _start_of_day(moment: datetime) -> datetime:
    return datetime.combine(_today(moment), time(), tzinfo=UTC)
