"""The org-wide key inventory: every access key in scope, its compliance, and what the product will do to it and when.

One row per key, built by the audit from what it already holds (the credential report for every user,
the full reading of the users triage picked, the policy's decisions), so the inventory costs the audit
no IAM call. Pure: no AWS call, no clock.

What each column says:

- ``keyId``: the key's id when the audit read the user in full this run; otherwise ``slot 1`` or
  ``slot 2``, the credential report's column (the report has no key ids, and reading them would cost a
  call per user).
- ``exemption``: why the user is exempt, for users read in full; ``not read this run`` for the others
  (their tags and groups were not read: nothing of theirs is due, so an exemption holds nothing back
  this run; their next action is then what the lifecycle does unless an exemption holds it back).
- ``nextAction`` / ``nextActionDate``: what this run does to the key (``rotate``, ``disable``,
  ``delete``; ``would rotate``... in a dry run), or the first thing the policy will do to it at a later
  run and the day of that run, as the keys stand now; ``exempt``, ``blocked`` or ``deferred`` when that
  holds it back, empty when nothing is due within :data:`HORIZON_DAYS`.
- ``cis112`` (CIS 1.12, credentials unused for 45 days are disabled), ``cis113`` (CIS 1.13, one Active
  key per user), ``cis114`` (CIS 1.14, keys rotated every 90 days) and ``iam3`` (Security Hub IAM.3,
  the same 90 days): ``PASS`` or ``FAIL``; an Inactive key passes them all.
- ``adoption`` (users the product rotated, read in full) and ``hint`` (a way off a long-lived key):
  :mod:`keyrotation.adoption`.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from keyrotation.model import AccessKey, KeyStatus
    >>> now = datetime(2026, 6, 1, tzinfo=UTC)
    >>> old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, now - timedelta(days=120), last_used=now - timedelta(days=1))
    >>> new = AccessKey("AKIANEW", KeyStatus.ACTIVE, now - timedelta(days=10))
    >>> checks(old, (old, new), now)
    {'cis112': 'PASS', 'cis113': 'FAIL', 'cis114': 'FAIL', 'iam3': 'FAIL'}
    >>> checks(new, (new,), now)
    {'cis112': 'PASS', 'cis113': 'PASS', 'cis114': 'PASS', 'iam3': 'PASS'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from keyrotation import clock, policy
from keyrotation.adoption import adoption, key_hints
from keyrotation.compliance import is_overdue
from keyrotation.config import LifecycleConfig
from keyrotation.model import AccessKey, Action, ActionType, Decision, Delivery, KeyStatus, NoticeKind, UserSnapshot

#: CIS 1.12: a credential unused for this many days should be disabled.
UNUSED_DAYS = 45
#: How far ahead the next action is looked for.
HORIZON_DAYS = 3 * 366
#: The inventory's columns, in order (``inventory.csv``; ``inventory.json`` has the same fields).
COLUMNS = (
    "accountId",
    "accountName",
    "userName",
    "keyId",
    "status",
    "created",
    "ageDays",
    "lastUsed",
    "lastUsedService",
    "lastUsedRegion",
    "exemption",
    "nextAction",
    "nextActionDate",
    "cis112",
    "cis113",
    "cis114",
    "iam3",
    "adoption",
    "hint",
)
#: The totals of an inventory (a fragment, or the whole run's).
TOTALS = ("keys", "compliant", "exempt", "blocked", "overdue")
PASS, FAIL = "PASS", "FAIL"


def checks(key: AccessKey, keys: Sequence[AccessKey], now: datetime) -> dict[str, str]:
    """The key's CIS 1.12, 1.13, 1.14 and Security Hub IAM.3 status among its user's ``keys``."""
    if not key.active:
        return {"cis112": PASS, "cis113": PASS, "cis114": PASS, "iam3": PASS}
    used = key.last_used or key.created
    unused = clock.age_days(used, now) >= UNUSED_DAYS
    overdue = is_overdue(key.created, key.active, now)
    two_active = sum(1 for other in keys if other.active) > 1
    return {
        "cis112": FAIL if unused else PASS,
        "cis113": FAIL if two_active else PASS,
        "cis114": FAIL if overdue else PASS,
        "iam3": FAIL if overdue else PASS,
    }


@dataclass(frozen=True)
class UserView:
    """One user as the inventory sees it: its keys, whether they were read in full, this run's decision."""

    user: UserSnapshot
    read: bool  # keys with their ids, tags and groups (else the report's picture: ids are ``slotN``)
    delivery: Delivery = Delivery()
    decision: Decision | None = None  # this run's, for users read in full


def user_rows(
    view: UserView,
    account_id: str,
    account_name: str,
    now: datetime,
    config: LifecycleConfig,
    this_run: Mapping[tuple[str, str], str],
    dry_run: bool,
) -> list[dict[str, Any]]:
    """The inventory's rows for one user's keys.

    ``this_run``: (user name, key id) to the action this run plans for it (``deferred`` for one beyond
    the account's cap).
    """
    user, decision = view.user, view.decision
    exemption = policy.exemption(user, now, config) if view.read else None
    blocked = bool(decision and any(notice.kind is NoticeKind.BLOCKED for notice in decision.notices))
    upcoming = {} if (exemption and exemption.exempt) or blocked else _upcoming(view, now, config)
    rows = []
    hints = dict(key_hints(user.keys, view.delivery if view.read else Delivery(), now))
    for key in user.keys:
        planned = this_run.get((user.user_name, key.key_id))
        if exemption is not None and exemption.exempt:
            what, when = "exempt", exemption.ends
        elif blocked:
            what, when = "blocked", None
        elif planned:
            what = planned if planned == "deferred" or not dry_run else f"would {planned}"
            when = now
        else:
            what, when = upcoming.get(key.key_id, ("", None))
        rows.append(
            {
                "accountId": account_id,
                "accountName": account_name,
                "userName": user.user_name,
                "keyId": key.key_id if view.read else key.key_id.replace("slot", "slot "),
                "status": key.status.value,
                "created": clock.to_iso(key.created),
                "ageDays": int(clock.age_days(key.created, now)),
                "lastUsed": clock.to_iso(key.last_used) if key.last_used else "",
                "lastUsedService": key.last_used_service or "",
                "lastUsedRegion": key.last_used_region or "",
                "exemption": _exemption(exemption),
                "nextAction": what,
                "nextActionDate": when.date().isoformat() if when else "",
                **checks(key, user.keys, now),
                "adoption": adoption(key, user.keys, view.delivery) if view.read else "",
                "hint": hints.get(key.key_id, ""),
            }
        )
    return rows


#: The exemption of a user the audit did not read in full (its tags and groups).
NOT_READ = "not read this run"


def _exemption(exemption: policy.Exemption | None) -> str:
    if exemption is None:
        return NOT_READ
    return exemption.grounds or "" if exemption.exempt else ""


def _upcoming(view: UserView, now: datetime, config: LifecycleConfig) -> dict[str, tuple[str, datetime]]:
    """For each key, the first action a later run takes on it and the moment it may.

    The policy is asked at each moment it can change its mind (:func:`policy.decision_moments`); what it does then is
    applied (a disable sets the key Inactive, a delete removes it), so a key whose rotation waits for
    another key's deletion gets the date it follows from. At most :data:`_STEPS` steps.
    """
    user = view.user
    delivery = view.delivery if view.read else Delivery()
    found: dict[str, tuple[str, datetime]] = {}
    horizon = now + clock.days(HORIZON_DAYS)
    moment = now
    for _ in range(_STEPS):
        step = _next_actions(user, delivery, moment, horizon, config)
        if step is None:
            break
        moment, actions = step
        for action in actions:
            found.setdefault(action.key_id, (action.type.value, moment))
        if all(key.key_id in found for key in view.user.keys):
            break
        user, delivery = _applied(user, delivery, actions, moment)
    return found


#: How many later runs' actions :func:`_upcoming` follows.
_STEPS = 6


def _next_actions(
    user: UserSnapshot, delivery: Delivery, after: datetime, horizon: datetime, config: LifecycleConfig
) -> tuple[datetime, tuple[Action, ...]] | None:
    for moment in policy.decision_moments(user, delivery, after, config):
        if moment > horizon:
            return None
        actions = policy.decide(user, delivery, moment, config).actions
        if actions:
            return moment, actions
    return None


def _applied(
    user: UserSnapshot, delivery: Delivery, actions: Iterable[Action], moment: datetime
) -> tuple[UserSnapshot, Delivery]:
    """The user and its record once ``actions`` are done at ``moment`` (a rotation changes nothing here)."""
    keys = list(user.keys)
    for action in actions:
        if action.type is ActionType.DISABLE:
            keys = [replace(key, status=KeyStatus.INACTIVE) if key.key_id == action.key_id else key for key in keys]
            done = frozenset({(action.key_id, moment)})
            delivery = replace(delivery, disabled=delivery.disabled | done, disabled_done=delivery.disabled_done | done)
        elif action.type is ActionType.DELETE:
            keys = [key for key in keys if key.key_id != action.key_id]
    return replace(user, keys=tuple(keys)), delivery


def totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The inventory's counts: keys in scope, compliant (passing all four checks), exempt, blocked, overdue.

    >>> totals([{"cis112": "PASS", "cis113": "PASS", "cis114": "FAIL", "iam3": "FAIL", "nextAction": "exempt"}])
    {'keys': 1, 'compliant': 0, 'exempt': 1, 'blocked': 0, 'overdue': 1}
    """
    counted = dict.fromkeys(TOTALS, 0)
    for row in rows:
        counted["keys"] += 1
        counted["compliant"] += all(row.get(name) == PASS for name in ("cis112", "cis113", "cis114", "iam3"))
        counted["exempt"] += row.get("nextAction") == "exempt"
        counted["blocked"] += row.get("nextAction") == "blocked"
        counted["overdue"] += row.get("cis114") == FAIL
    return counted


def add(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, int]:
    """Two inventories' totals added (a missing or malformed count is 0).

    >>> add({"keys": 2, "overdue": 1}, {"keys": 3, "compliant": "x"})
    {'keys': 5, 'compliant': 0, 'exempt': 0, 'blocked': 0, 'overdue': 1}
    """
    return {name: _count(left.get(name)) + _count(right.get(name)) for name in TOTALS}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def planned(actions: Iterable[Action], deferred: Iterable[Action]) -> dict[tuple[str, str], str]:
    """(user name, key id) to what this run does to the key: its first planned action, else ``deferred``."""
    found: dict[tuple[str, str], str] = {}
    for action in actions:
        found.setdefault((action.user_name, action.key_id), action.type.value)
    for action in deferred:
        found.setdefault((action.user_name, action.key_id), "deferred")
    return found
