"""Which users an audit reads in full: the credential report and the ledger say, the policy judges.

Reading a user in full costs calls (ListAccessKeys, ListUserTags); the credential report shows every
user's keys (status and creation time, no key id) for the price of two. A user is read in full when:

- the ledger records an unfinished rotation (a key of ours may exist that the report cannot show);
- the user is a member of the exemption group (an exempt user is reported on every run);
- the policy, asked about the keys the report shows (:func:`report_snapshot`), has something to do or
  to say, unless a full reading of the same keys found the user quiet until later (:class:`Quiet`);
- two of its keys were created in the same second (the policy orders keys by creation, then by id);
- the report shows fewer Inactive keys than the ledger has keys the product disabled (and no run found
  Active again since): one may have been re-enabled by a person, which the policy must hear of at once.
  A key the product since deleted counts too, until a full reading finds the user quiet (its mark then
  holds while the report shows the same keys).

Why that is enough: the policy's verdict depends on the keys (ages and statuses), the exemption tag and
group, and the ledger's record. Without tags, groups, warnings already given or disable records, the
policy can only find *more* to do, never less (a warning given, a tag or a quarantine only hold things
back). So a user the report shows with nothing due has nothing due, except for what a tag holds back
(an exemption by tag is reported on the runs where it holds something back) and what happened since the
report was made (it is at most four hours old): a key made since is less than a day old, and nothing in
the lifecycle falls due because of a key that young, except the product's own undelivered key, which
the ledger's unfinished rotation names; a key deleted or re-enabled since is seen on the next run.
Every decision that changes anything is taken on a fresh reading of the user, never on the report.

Pure: no AWS call, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from keyrotation import policy
from keyrotation.config import LifecycleConfig
from keyrotation.credential_report import ReportUser
from keyrotation.model import AccessKey, Delivery, KeyStatus, UserSnapshot

#: Bumped whenever what a :class:`Quiet` mark means changes, so that older marks are not trusted.
QUIET_VERSION = "1"


@dataclass(frozen=True)
class Quiet:
    """A full reading found nothing to do or say for the user until ``until``, given ``keys`` and ``basis``.

    ``keys``: :func:`fingerprint` of the keys read. ``basis``: :func:`basis` of the configuration used.
    Trusted only while both still match: a key made, deleted, enabled or disabled, or a new schedule,
    makes the user read again.
    """

    until: datetime
    keys: str
    basis: str


@dataclass(frozen=True)
class Selected:
    """A user to read in full, and why (a few words, for the log)."""

    user_name: str
    why: str
    row: ReportUser | None = None


def fingerprint(keys: Iterable[tuple[datetime, bool]]) -> str:
    """The keys as ``(created, active)`` pairs, in a form the report and ListAccessKeys both give.

    Example:
        >>> fingerprint([(datetime(2025, 3, 1, 6, 0, 1, tzinfo=UTC), True), (datetime(2025, 1, 1, tzinfo=UTC), False)])
        '2025-01-01T00:00:00Z/I,2025-03-01T06:00:01Z/A'
    """
    parts = sorted(
        f"{created.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}/{'A' if active else 'I'}" for created, active in keys
    )
    return ",".join(parts)


def basis(config: LifecycleConfig) -> str:
    """What a quiet mark was computed with: the lifecycle, the exemption's tag and group, the run interval."""
    return "/".join(
        [
            QUIET_VERSION,
            str(config.rotation_days),
            str(config.inactive_days),
            str(config.delete_days),
            str(config.warning_days),
            config.exempt_tag_key.lower(),
            config.exempt_group_name.lower(),
            str(int(config.run_interval.total_seconds())),
        ]
    )


def report_snapshot(row: ReportUser) -> UserSnapshot:
    """The user as the report shows it: its keys (ids stand for the report's slots), no tags, no groups."""
    keys = tuple(
        AccessKey(f"slot{key.slot}", KeyStatus.ACTIVE if key.active else KeyStatus.INACTIVE, key.created)
        for key in row.keys
    )
    return UserSnapshot(user_name=row.user_name, user_arn=row.arn, keys=keys)


def select(
    rows: Iterable[ReportUser],
    records: Mapping[str, tuple[Delivery, Quiet | None]],
    exempt_members: Collection[str],
    now: datetime,
    config: LifecycleConfig,
) -> Iterator[Selected]:
    """The users to read in full, in user-name order: report rows first judged, then the ledger's unfinished rotations.

    ``records``: each user's delivery record and quiet mark, by user name (see the module's docstring).
    """
    seen: set[str] = set()
    chosen: list[Selected] = []
    for row in rows:
        seen.add(row.user_name)
        delivery, quiet = records.get(row.user_name, (Delivery(), None))
        why = _why(row, delivery, quiet, exempt_members, now, config)
        if why is not None:
            chosen.append(Selected(row.user_name, why, row))
    for user_name, (delivery, _) in records.items():
        if user_name not in seen and _unfinished(delivery):
            chosen.append(Selected(user_name, "unfinished rotation, user not in the report"))
    return iter(sorted(chosen, key=lambda selected: selected.user_name))


def _why(
    row: ReportUser,
    delivery: Delivery,
    quiet: Quiet | None,
    exempt_members: Collection[str],
    now: datetime,
    config: LifecycleConfig,
) -> str | None:
    if _unfinished(delivery):
        return "unfinished rotation"
    if not row.keys:
        return None
    if row.user_name in exempt_members:
        return "exemption group"
    if (
        quiet is not None
        and now < quiet.until
        and quiet.basis == basis(config)
        and quiet.keys == fingerprint((key.created, key.active) for key in row.keys)
    ):
        return None
    if _unreconciled_disables(delivery) > sum(1 for key in row.keys if not key.active):
        return "a key the product disabled may be Active again"
    if len({key.created.replace(microsecond=0) for key in row.keys}) < len(row.keys):
        return "keys created in the same second"
    decision = policy.decide(report_snapshot(row), Delivery(), now, config)
    if decision.actions or decision.notices:
        return "due"
    return None


def _unreconciled_disables(delivery: Delivery) -> int:
    """Keys the product disabled whose re-enable no run has recorded since: each is Inactive, or gone, or a
    person set it Active again (which only a full reading can tell, the report having no key ids)."""
    latest: dict[str, datetime] = {}
    for key_id, moment in delivery.disabled_done:
        latest[key_id] = max(moment, latest.get(key_id, moment))
    return sum(
        1 for key_id, disabled in latest.items() if policy.reenable_found_since(key_id, disabled, delivery) is None
    )


def _unfinished(delivery: Delivery) -> bool:
    return delivery.pending_key_id is not None or delivery.pending_since is not None


def quiet_until(user: UserSnapshot, delivery: Delivery, now: datetime, config: LifecycleConfig) -> datetime | None:
    """The first moment after ``now`` at which the policy has something to do or say for ``user``.

    Assumes the user's keys, tags and groups and its ledger record stay as they are (a change of keys
    shows in the report and voids the mark). None when that moment cannot be found among the moments
    the policy compares ``now`` with (then no mark is written and the user is read again next run).
    Only meaningful when the policy has nothing to do or say at ``now``.

    The policy's verdict can only change at one of :func:`policy.decision_moments`, so only those are
    tried. ``tests/unit/test_triage.py`` checks the verdict stays empty everywhere before the moment.
    """
    for moment in policy.decision_moments(user, delivery, now, config):
        decision = policy.decide(user, delivery, moment, config)
        if decision.actions or decision.notices:
            return moment
    return None
