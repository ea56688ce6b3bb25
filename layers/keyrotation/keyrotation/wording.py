"""The sentences people read about the key-lifecycle policy's decisions.

:mod:`keyrotation.policy` decides; this module only words what it decided: the
reason each action carries and the detail of each notice. Every date a sentence
quotes is given to it, and every period comes from the
:class:`~keyrotation.config.LifecycleConfig`, so nothing here decides or
recomputes anything. Sentences name key ids and dates only; never a secret.

Example:
    >>> from datetime import UTC, datetime
    >>> from keyrotation.model import AccessKey, KeyStatus
    >>> key = AccessKey("AKIAOLD", KeyStatus.ACTIVE, datetime(2025, 1, 1, tzinfo=UTC))
    >>> discard_reason(key, "deleted")  # doctest: +NORMALIZE_WHITESPACE
    "Key AKIAOLD was created on 2025-01-01 by a rotation that never delivered it to the user's secret,
    so nobody holds its secret; it is deleted in this run, and the rotation is redone if it is still due."
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from keyrotation.clock import age_days
from keyrotation.config import LifecycleConfig
from keyrotation.model import AccessKey, Action, UserSnapshot, creation_order, recorded

_MAX_QUOTED_TAG_VALUE = 40


# --------------------------------------------------------------------------
# Last use
# --------------------------------------------------------------------------


def describe_last_use(key: AccessKey) -> str:
    """When, where and with which service ``key`` was last used, as a sentence.

    Example:
        >>> from keyrotation.clock import days
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> created = datetime(2025, 1, 1, tzinfo=UTC)
        >>> describe_last_use(AccessKey("AKIAOLD", KeyStatus.ACTIVE, created, created + days(40), "s3", "eu-west-1"))
        'Key AKIAOLD was last used on 2025-02-10 with s3 in eu-west-1.'
        >>> describe_last_use(AccessKey("AKIAOLD", KeyStatus.ACTIVE, created, created + days(40), "N/A", "N/A"))
        'Key AKIAOLD was last used on 2025-02-10.'
        >>> describe_last_use(AccessKey("AKIAOLD", KeyStatus.ACTIVE, created))
        'Key AKIAOLD has never been used (as far as IAM records).'
    """
    if key.last_used is None:
        return f"Key {key.key_id} has never been used (as far as IAM records)."
    service = recorded(key.last_used_service)
    region = recorded(key.last_used_region)
    where = ""
    if service:
        where += f" with {service}"
    if region:
        where += f" in {region}"
    return f"Key {key.key_id} was last used on {_day(key.last_used)}{where}."


# --------------------------------------------------------------------------
# Exemptions
# --------------------------------------------------------------------------


def exempt_by_group(group: str) -> str:
    """The grounds of an exemption by group membership, as words that follow the user's name."""
    return f"is a member of the group {group}"


def exempt_by_tag(tag_key: str, tag_value: str) -> str:
    """The grounds of an exemption by tag, as words that follow the user's name.

    Example:
        >>> exempt_by_tag("key-rotation:exempt", "2025-06-30")
        "has the tag key-rotation:exempt='2025-06-30'"
    """
    return f"has the tag {tag_key}={_quote(tag_value)}"


def invalid_tag_value(tag_key: str, tag_value: str) -> str:
    """Why the exemption tag's value cannot be used (a long value is cut short).

    Example:
        >>> invalid_tag_value("key-rotation:exempt", "yes")
        "the tag key-rotation:exempt has the value 'yes', which is not a date written YYYY-MM-DD"
    """
    return f"the tag {tag_key} has the value {_quote(tag_value)}, which is not a date written YYYY-MM-DD"


def permanent_tag_exemption(tag_key: str, tag_value: str, group: str) -> str:
    """Why ``true`` does not exempt: a tag exempts until a date; the group, for good.

    Example:
        >>> permanent_tag_exemption("key-rotation:exempt", "true", "Exempt")
        "the tag key-rotation:exempt has the value 'true', but a tag exempts only until a date (YYYY-MM-DD); ...
        >>> permanent_tag_exemption("key-rotation:exempt", "true", "Exempt").endswith("as a member of the group Exempt")
        True
    """
    where = f"as a member of the group {group}" if group else "through an exemption group (ExemptGroupName is empty)"
    return (
        f"the tag {tag_key} has the value {_quote(tag_value)}, but a tag exempts only until a date (YYYY-MM-DD); "
        f"a user is exempt for good only {where}"
    )


def exemption_too_far(tag_key: str, tag_value: str, latest: date, max_days: int) -> str:
    """Why a date too far ahead does not exempt.

    Example:
        >>> exemption_too_far("key-rotation:exempt", "2099-01-01", date(2026, 6, 1), 365)
        "the tag key-rotation:exempt has the date '2099-01-01', more than 365 days ahead (MaxExemptionDays): ...
        >>> exemption_too_far("key-rotation:exempt", "2099-01-01", date(2026, 6, 1), 365).endswith("is 2026-06-01")
        True
    """
    return (
        f"the tag {tag_key} has the date {_quote(tag_value)}, more than {max_days} days ahead (MaxExemptionDays): "
        f"the latest date it may hold today is {latest.isoformat()}"
    )


def exempt_detail(user: UserSnapshot, grounds: str | None, last_day: date | None, now: datetime) -> str:
    """The EXEMPT notice: on what grounds the user is exempt, until when, and its keys."""
    until = "" if last_day is None else f" until {last_day.isoformat()} (inclusive)"
    return (
        f"User {user.user_name} {grounds}, so it is exempt{until} and none of its access keys "
        f"is rotated, disabled or deleted (checked on {_day(now)}). {_keys_summary(user)}"
    )


def exemption_expiring_detail(user: UserSnapshot, last_day: date, ends: datetime) -> str:
    """The EXEMPTION_EXPIRING notice: the last exempt day, and the first day on the schedule again."""
    return (
        f"The exemption of user {user.user_name} ends after {last_day.isoformat()}: from "
        f"{_day(ends)} its keys follow the rotation schedule again. {_keys_summary(user)}"
    )


def invalid_tag_detail(user: UserSnapshot, tag_error: str, now: datetime) -> str:
    """The INVALID_TAG notice: what is wrong with the tag, and that nothing changes until it is fixed."""
    return (
        f"For user {user.user_name}, {tag_error} (checked on {_day(now)}). No key of this user is changed "
        f"until the tag is corrected (to a date at most MaxExemptionDays ahead, or removed). {_keys_summary(user)}"
    )


# --------------------------------------------------------------------------
# The reasons actions carry
# --------------------------------------------------------------------------


def rotate_reason(
    key: AccessKey, due: datetime, now: datetime, disable_by: datetime, delete_by: datetime, config: LifecycleConfig
) -> str:
    """Why ``key`` is rotated at ``now`` (it is due on ``due``), and until when it stays usable.

    ``disable_by`` and ``delete_by`` are the runs that disable and delete it once replaced now
    (:func:`keyrotation.policy.retirement_runs`).

    Example:
        >>> from keyrotation.clock import days
        >>> from keyrotation.model import AccessKey, KeyStatus
        >>> key = AccessKey("AKIAOLD", KeyStatus.ACTIVE, datetime(2025, 1, 1, 6, 0, 1, tzinfo=UTC))
        >>> schedule = LifecycleConfig(
        ...     75, 90, 100, 7, 50, "key-rotation:exempt", "IAMKeyRotationExemptionGroup", 365, days(1)
        ... )
        >>> now = datetime(2025, 3, 17, 6, 0, tzinfo=UTC)
        >>> rotate_reason(key, key.created + days(75), now, now + days(15), now + days(25), schedule)
        ... # doctest: +NORMALIZE_WHITESPACE
        "Key AKIAOLD was created on 2025-01-01 and is 74 days old; it reaches the rotation age of 75 days on
        2025-03-17, within one run interval (1 day): a new key is created and delivered to the user's secret.
        Key AKIAOLD is disabled by 2025-04-01 and deleted by 2025-04-11."
    """
    if now >= due:
        reached = f"it reached the rotation age of {config.rotation_days} days on {_day(due)}"
    else:
        reached = (
            f"it reaches the rotation age of {config.rotation_days} days on {_day(due)}, {_within_one_run(config)}"
        )
    return (
        f"Key {key.key_id} was created on {_day(key.created)} and is {_age(key, now)} days old; {reached}: "
        "a new key is created and delivered to the user's secret. "
        f"Key {key.key_id} is disabled by {_day(disable_by)} and deleted by {_day(delete_by)}."
    )


def disable_reason(
    key: AccessKey, replacement: AccessKey, when: datetime, now: datetime, config: LifecycleConfig
) -> str:
    """Why a retired key is disabled: its disable date ``when`` has come, or comes before the next run."""
    return (
        f"Key {key.key_id} (created {_day(key.created)}) was replaced by key {replacement.key_id} "
        f"(created {_day(replacement.created)}), and {_date_comes('its disable date', when, now, config)} "
        f"(the later of {config.inactive_days} days after its own creation and {config.disable_grace_days} days "
        f"after its replacement's). {describe_last_use(key)}"
    )


def disable_again_reason(key: AccessKey, disabled: datetime, honoured: datetime | None) -> str:
    """Why a key the product disabled, and a person re-enabled, is disabled again.

    ``honoured`` is when its first re-enable stopped being honoured; None for a second re-enable.
    """
    if honoured is None:
        why = "it was re-enabled a second time, and only a key's first re-enable is honoured"
    else:
        why = f"its re-enable was honoured until {_day(honoured)}"
    return (
        f"Key {key.key_id} (created {_day(key.created)}) was disabled by this product on {_day(disabled)} "
        f"and re-enabled by a person since; {why}: it is disabled again. {describe_last_use(key)}"
    )


def delete_reason(
    key: AccessKey,
    replacement: AccessKey | None,
    when: datetime,
    now: datetime,
    disabled: datetime | None,
    config: LifecycleConfig,
) -> str:
    """Why an Inactive key is deleted: its deletion date ``when`` has come, or comes before the next run.

    ``replacement`` is the newer Active key (None for a spare key);
    ``disabled`` is when the product disabled the key (None if it did not).
    """
    if disabled is None:
        disabled_words, quarantine_words = "", ""
    else:
        disabled_words = f" (it was disabled on {_day(disabled)})"
        quarantine_words = f", and at least {config.quarantine_days} days after the day it was disabled"
    deadline = _date_comes("its deletion date", when, now, config)
    if replacement is None:
        return (
            f"Key {key.key_id} (created {_day(key.created)}) is Inactive{disabled_words} and no newer Active key "
            f"replaces it; {deadline} ({config.delete_days} days after its creation{quarantine_words})."
        )
    return (
        f"Key {key.key_id} (created {_day(key.created)}) is Inactive{disabled_words} and was replaced by key "
        f"{replacement.key_id} (created {_day(replacement.created)}); {deadline} "
        f"(the later of {config.delete_days} days after its own creation and {config.delete_grace_days} days "
        f"after its replacement's{quarantine_words})."
    )


def discard_reason(key: AccessKey, verb: str) -> str:
    """Why an undelivered key is ``verb`` ("disabled" or "deleted")."""
    return (
        f"Key {key.key_id} was created on {_day(key.created)} by a rotation that never delivered it "
        f"to the user's secret, so nobody holds its secret; it is {verb} in this run, "
        "and the rotation is redone if it is still due."
    )


# --------------------------------------------------------------------------
# The details notices carry
# --------------------------------------------------------------------------


def disable_soon_detail(
    user: UserSnapshot,
    key: AccessKey,
    replacement: AccessKey,
    disable_run: datetime,
    delete_run: datetime,
    switch_by: datetime,
) -> str:
    """The DISABLE_SOON notice: ``key`` is disabled by the run at ``disable_run``, deleted by the one at ``delete_run``.

    Both are the runs that do it (:func:`keyrotation.policy.retirement_runs`), so their dates are the days it
    happens; ``switch_by`` is the earliest moment the disable can come (the run itself, on a cron schedule).
    """
    return (
        f"Key {key.key_id} of user {user.user_name} (created {_day(key.created)}) will be disabled by "
        f"{_day(disable_run)} and deleted by {_day(delete_run)}; its "
        f"replacement is key {replacement.key_id}, created {_day(replacement.created)}. {describe_last_use(key)} "
        f"Anything still using key {key.key_id} must switch to key {replacement.key_id} before {_day(switch_by)}."
    )


def reenabled_detail(
    user: UserSnapshot, key: AccessKey, disabled: datetime, honoured: datetime, config: LifecycleConfig
) -> str:
    """The REENABLED notice for a key's first re-enable: honoured until ``honoured``."""
    return (
        f"Key {key.key_id} of user {user.user_name} (created {_day(key.created)}), which this product disabled "
        f"on {_day(disabled)}, is Active again: someone re-enabled it. The re-enable is honoured: the key stays "
        f"Active until {_day(honoured)}, is then disabled again at the first run, and is deleted "
        f"{config.quarantine_days} days after that. A second re-enable of this key will not be honoured; to keep "
        f"it longer, exempt the user. {describe_last_use(key)}"
    )


def reenabled_again_detail(user: UserSnapshot, key: AccessKey, disabled: datetime, deleted_from: datetime) -> str:
    """The REENABLED notice for a second re-enable: not honoured, the key is disabled again in this run."""
    return (
        f"Key {key.key_id} of user {user.user_name} (created {_day(key.created)}), which this product disabled "
        f"again on {_day(disabled)} after honouring one re-enable, was re-enabled again. This re-enable is not "
        f"honoured: the key is disabled again in this run, and deleted no sooner than {_day(deleted_from)}. "
        f"To keep it, exempt the user. {describe_last_use(key)}"
    )


def blocked_by_retired_key(
    user: UserSnapshot,
    current: AccessKey,
    due: datetime,
    blocker: AccessKey,
    disable_from: datetime,
    frees_on: datetime,
    now: datetime,
) -> str:
    """The BLOCKED notice when the second key is an older Active key, disabled from ``disable_from``."""
    return (
        f"{_rotation_due(user, current, due, now)}the older key {blocker.key_id} is in its grace period and is "
        f"disabled at the first run on or after {_day(disable_from)}. {_rotation_after(frees_on)} "
        f"{describe_last_use(blocker)} To rotate sooner, stop using key {blocker.key_id} and delete it."
    )


def blocked_by_inactive_key(
    user: UserSnapshot, current: AccessKey, due: datetime, blocker: AccessKey, frees_on: datetime, now: datetime
) -> str:
    """The BLOCKED notice when the second key is an older Inactive key waiting for its deletion."""
    return (
        f"{_rotation_due(user, current, due, now)}the older key {blocker.key_id} is Inactive and waits for its "
        f"deletion date. {_rotation_after(frees_on)} To rotate sooner, delete key {blocker.key_id}."
    )


def blocked_by_spare_key(
    user: UserSnapshot,
    current: AccessKey,
    due: datetime,
    blocker: AccessKey,
    frees_on: datetime,
    now: datetime,
    config: LifecycleConfig,
) -> str:
    """The BLOCKED notice when the second key is a newer Inactive (spare) key."""
    return (
        f"{_rotation_due(user, current, due, now)}the newer key {blocker.key_id} (created {_day(blocker.created)}) "
        f"is Inactive and holds the second key slot; Inactive keys are deleted once {config.delete_days} days old. "
        f"{_rotation_after(frees_on)} If key {blocker.key_id} is not needed, delete it; if it is the key in use, "
        f"re-enable it (key {current.key_id} then follows the normal disable and delete schedule)."
    )


def too_many_keys_detail(user: UserSnapshot, allowed: int) -> str:
    """The BLOCKED notice for an inventory that shows more keys than IAM ``allowed``."""
    listed = ", ".join(f"{key.key_id} (created {_day(key.created)})" for key in _oldest_first(user.keys))
    return (
        f"User {user.user_name} appears to have {len(user.keys)} access keys ({listed}), more than the "
        f"{allowed} IAM allows; the inventory is inconsistent, so nothing is changed."
    )


def ambiguous_rotation_detail(
    user: UserSnapshot, candidates: Sequence[AccessKey], pending_since: datetime | None, run_id: str | None = None
) -> str:
    """The BLOCKED notice for keys of unknown origin: made around a rotation that did not record its key's id.

    Example:
        >>> from keyrotation.model import KeyStatus
        >>> started = datetime(2030, 5, 31, 6, 0, 3, tzinfo=UTC)
        >>> key = AccessKey("AKIAUNKNOWN", KeyStatus.ACTIVE, datetime(2030, 5, 31, 6, 0, 4, tzinfo=UTC))
        >>> print(ambiguous_rotation_detail(UserSnapshot("alice", "arn"), [key], started, "run-7"))
        ... # doctest: +NORMALIZE_WHITESPACE
        A rotation of user alice started at 2030-05-31 06:00:03 UTC (run run-7) and stopped before it recorded
        the id of the key it created: it may or may not have created one. Key AKIAUNKNOWN (created 2030-05-31
        06:00:04 UTC) was created within 15 minutes of that start, so the product cannot tell whether it is its
        own undelivered key (whose secret nobody holds) or a key made by hand. Nothing is changed for this user
        until a person decides: delete a key that nobody uses; if the key is in use, it is the user's own, and
        the security team clears the unfinished rotation from the ledger (docs/lifecycle.md, 'Keys of unknown origin').
    """
    started = "at an unknown time" if pending_since is None else f"at {_moment(pending_since)}"
    run = f" (run {run_id})" if run_id else ""
    listed = " and ".join(f"{key.key_id} (created {_moment(key.created)})" for key in _oldest_first(candidates))
    one = len(candidates) == 1
    return (
        f"A rotation of user {user.user_name} started {started}{run} and stopped before it recorded the id of "
        f"the key it created: it may or may not have created one. {'Key' if one else 'Keys'} {listed} "
        f"{'was' if one else 'were'} created within 15 minutes of that start, so the product cannot tell whether "
        f"{'it is' if one else 'one of them is'} its own undelivered key (whose secret nobody holds) or a key made "
        "by hand. Nothing is changed for this user until a person decides: delete a key that nobody uses; if the "
        "key is in use, it is the user's own, and the security team clears the unfinished rotation from the "
        "ledger (docs/lifecycle.md, 'Keys of unknown origin')."
    )


def deferred_detail(action: Action, limit: int) -> str:
    """The DEFERRED notice: ``action`` waits because the run already has ``limit`` actions in the account."""
    return (
        f"The {action.type.value} of key {action.key_id} waits for a later run: this run already has the "
        f"{limit} actions MaxActionsPerAccount allows in this account, and a user's actions are kept "
        f"together. Planned because: {action.reason}"
    )


# --------------------------------------------------------------------------
# Pieces of sentences
# --------------------------------------------------------------------------


def _rotation_due(user: UserSnapshot, current: AccessKey, due: datetime, now: datetime) -> str:
    when = "since" if now >= due else "on"
    return (
        f"Key {current.key_id} of user {user.user_name} is {_age(current, now)} days old and due for "
        f"rotation {when} {_day(due)}, but the user already has two keys: "
    )


def _date_comes(what: str, when: datetime, now: datetime, config: LifecycleConfig) -> str:
    """``what`` ``when`` has come, or comes before the next run could (so a run acts on it now)."""
    if now >= when:
        return f"{what} {_day(when)} has come"
    return f"{what} {_day(when)} is {_within_one_run(config)}"


def _within_one_run(config: LifecycleConfig) -> str:
    return f"within one run interval ({_duration(config.run_interval)})"


def _duration(period: timedelta) -> str:
    """A run interval in words.

    >>> _duration(timedelta(days=1)), _duration(timedelta(days=3, hours=12)), _duration(timedelta(minutes=15))
    ('1 day', '3 days 12 hours', '15 minutes')
    """
    whole_days, rest = period.days, period.seconds
    parts = [(whole_days, "day"), (rest // 3600, "hour"), (rest % 3600 // 60, "minute"), (rest % 60, "second")]
    words = [f"{count} {unit}{'' if count == 1 else 's'}" for count, unit in parts if count]
    return " ".join(words) or "0 seconds"


def _rotation_after(frees_on: datetime) -> str:
    return f"The rotation happens on the first run on or after {_day(frees_on)}, when that key is deleted."


def _keys_summary(user: UserSnapshot) -> str:
    if not user.keys:
        return "It has no access keys."
    listed = ", ".join(
        f"{key.key_id} ({key.status.value}, created {_day(key.created)})" for key in _oldest_first(user.keys)
    )
    return f"Its keys: {listed}."


def _oldest_first(keys: Sequence[AccessKey]) -> list[AccessKey]:
    return sorted(keys, key=creation_order)


def _quote(value: str) -> str:
    if len(value) > _MAX_QUOTED_TAG_VALUE:
        value = value[:_MAX_QUOTED_TAG_VALUE] + "..."
    return repr(value)


def _age(key: AccessKey, now: datetime) -> int:
    return max(0, int(age_days(key.created, now)))


def _moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()
