"""Audit one account: read the credential report, read in full the users it points at, plan, record.

The credential report shows every user's keys for a couple of calls; :mod:`keyrotation.triage` picks
the users worth reading in full (keys, tags, groups), and the policy decides on that fresh reading.
A user read in full with nothing to do or say gets a quiet mark in the ledger, so it is not read again
before something can be due. Nothing in the state machine's state grows with the plan: the actions go
to the ledger (one item each, numbered in the order they must run) and the state machine fetches them
one at a time; notices (warnings, exemptions, deferred actions, blocked rotations) go to the ledger,
where notify reads them. So do the notices earlier runs could not deliver (an ``owed`` item per user,
from the user's delivery record): notify sends them again, and a disable planned for such a user is
marked (``ownerNotTold``), so the run report can say its owner was not told before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from keyrotation import adoption, key_inventory, policy, triage
from keyrotation.compliance import overdue_in_report, overdue_key_ids
from keyrotation.config import LifecycleConfig
from keyrotation.credential_report import CredentialReport, ReportUser
from keyrotation.events import Account, Run
from keyrotation.inventory import group_members, identities, read_for_audit, with_last_use, with_report_last_use
from keyrotation.ledger import OWNER_NOT_TOLD, ActionStatus, Ledger
from keyrotation.model import AccessKey, Action, ActionType, Decision, Delivery, NoticeKind, UserSnapshot
from keyrotation.observability import logger


@dataclass(frozen=True)
class AuditResult:
    plan: policy.AccountPlan
    users_with_keys: int
    users_read: int
    report_age_seconds: int
    owed: int = 0  # users whose person earlier runs could not tell something: notify sends it again
    inventory: dict[str, int] | None = None  # the account's key inventory totals (key_inventory.TOTALS), logged

    def to_json(self) -> dict[str, Any]:
        """What the state machine needs: how many actions to fetch, whether to notify; counts for the log.

        Example:
            >>> AuditResult(policy.AccountPlan(), users_with_keys=250, users_read=0, report_age_seconds=3).to_json()
            ... # doctest: +NORMALIZE_WHITESPACE
            {'actions': 0, 'notify': False, 'counts': {'usersWithKeys': 250, 'usersRead': 0, 'actions': 0,
            'deferred': 0, 'disable-soon': 0, 'blocked': 0, 'exempt': 0, 'exemption-expiring': 0, 'invalid-tag': 0,
            'reenabled': 0}}
        """
        notices = [notice.kind.value for notice in self.plan.notices]
        kinds = [kind for kind in NoticeKind if kind is not NoticeKind.DEFERRED]
        return {
            "actions": len(self.plan.actions),
            "notify": bool(self.plan.actions or self.plan.notices or self.owed),
            "counts": {
                "usersWithKeys": self.users_with_keys,
                "usersRead": self.users_read,
                "actions": len(self.plan.actions),
                "deferred": len(self.plan.deferred),
                **{kind.value: notices.count(kind.value) for kind in kinds},
            },
        }


def audit_account(
    iam: Any,
    ledger: Ledger,
    account: Account,
    run: Run,
    config: LifecycleConfig,
    now: datetime,
    owner_tag_key: str,
    report: CredentialReport,
    inventory_sink: Callable[[Account, list[dict[str, Any]], dict[str, int]], None] | None = None,
) -> AuditResult:
    """Plan the account's run; hand every key's inventory row and their totals to ``inventory_sink``."""
    account_records = ledger.account_records(account.account_id)
    records = account_records.users
    owed = {} if run.dry_run else account_records.owed
    selected, exempt_members = _select(iam, report, records, now, config)
    who = identities(iam, [chosen.user_name for chosen in selected], population=len(report.users))
    users: dict[str, UserSnapshot] = {}
    deliveries: dict[str, Delivery] = {}
    decisions = []
    by_user: dict[str, Decision] = {}
    for chosen in selected:
        identity = who.get(chosen.user_name)
        user = (
            read_for_audit(iam, chosen.user_name, identity, exempt_members, config.exempt_group_name)
            if identity
            else None
        )
        if user is None or not user.keys:
            continue
        delivery = records.get(user.user_name, (Delivery(), None))[0]
        decision = policy.decide(user, delivery, now, config)
        if decision.actions or decision.notices:
            # Only now is the keys' last use worth having: it goes into reasons and warnings.
            user = replace(user, keys=tuple(_last_use(iam, key, chosen.row) for key in user.keys))
            decision = policy.decide(user, delivery, now, config)
        else:
            _remember_quiet(ledger, account, user, delivery, now, config)
        if not run.dry_run and any(notice.kind is NoticeKind.REENABLED for notice in decision.notices):
            # Recorded before anything else of the run, so that its actions' functions decide on it too.
            ledger.record_reenabled(account.account_id, user.user_name, policy.unrecorded_reenables(user, delivery))
        logger.debug("user read", extra={"user": user.user_name, "why": chosen.why})
        users[user.user_name] = user
        deliveries[user.user_name] = delivery
        decisions.append(decision)
        by_user[user.user_name] = decision
    plan = policy.plan_account(decisions, config)
    # The 90-day rule's count, from what the audit has: its fresh readings, and the report for the others.
    read = {chosen.user_name for chosen in selected}
    unread = overdue_in_report((row for row in report.users if row.user_name not in read), now)
    ledger.record_overdue(run.run_id, account.account_id, overdue_key_ids(users.values(), now), unread=unread)

    def owner(user_name: str) -> dict[str, Any]:
        user = users.get(user_name)
        return {"ownerEmail": user.tags.get(owner_tag_key) if user else None}

    def uptake(user_name: str, with_adoption: bool) -> dict[str, Any]:
        """For the owner digest: the user's hints, and (a warning, a disable) whether the new key is taken up."""
        user, delivery = users.get(user_name), deliveries.get(user_name, Delivery())
        return _uptake(user, delivery, now, with_adoption) if user else {}

    def untold(action: Action) -> dict[str, Any]:
        runs = owed.get(action.user_name)
        return {OWNER_NOT_TOLD: sorted(runs)} if runs and action.type is ActionType.DISABLE else {}

    for user_name, runs in sorted(owed.items()):
        ledger.record_owed(run.run_id, account.account_id, user_name, runs)
    for action in plan.actions:
        ledger.record_action(
            run.run_id,
            account.account_id,
            action,
            status=ActionStatus.PLANNED,
            dryRun=run.dry_run,
            accountName=account.name,  # for the run's reports
            **owner(action.user_name),
            **untold(action),
            **uptake(action.user_name, action.type is ActionType.DISABLE),
        )
        logger.info(
            "planned",
            extra={
                "account_id": account.account_id,
                "user": action.user_name,
                "key_id": action.key_id,
                "action": action.type.value,
            },
        )
    ledger.record_plan(run.run_id, account.account_id, plan.actions)
    for notice in plan.notices:
        extra = _usage(users.get(notice.user_name), notice.key_id)
        ledger.record_notice(
            run.run_id,
            account.account_id,
            notice,
            dryRun=run.dry_run,
            accountName=account.name,
            **owner(notice.user_name),
            **extra,
            **uptake(notice.user_name, notice.kind in _ADOPTION_NOTICES),
        )
    rows = inventory_rows(account, run, report, users, by_user, records, plan, now, config)
    totals = key_inventory.totals(rows)
    if inventory_sink is not None:
        inventory_sink(account, rows, totals)
    return AuditResult(
        plan=plan,
        users_with_keys=sum(1 for row in report.users if row.keys),
        users_read=len(users),
        report_age_seconds=max(0, int(report.age(now).total_seconds())),
        owed=len(owed),
        inventory=totals,
    )


def _select(
    iam: Any,
    report: CredentialReport,
    records: Mapping[str, tuple[Delivery, triage.Quiet | None]],
    now: datetime,
    config: LifecycleConfig,
) -> tuple[list[triage.Selected], frozenset[str]]:
    """The users to read in full, and the exemption group's members (read only when someone is picked).

    An account with nothing due costs no GetGroup (issue 10: at most five calls, the inventory's fragment
    one of them). The group matters only to users read in full (their exemption) and to the choice itself
    (a member is read on every run, to be reported exempt): a member the report shows with nothing due,
    in an account where nobody else is picked, is left unread this run, which changes nothing of its keys
    (nothing of theirs is due) and is reported on the first run that reads the account's group.
    """
    selected = list(triage.select(report.users, records, frozenset(), now, config))
    if not selected or not config.exempt_group_name:
        return selected, frozenset()
    members = group_members(iam, config.exempt_group_name)
    return list(triage.select(report.users, records, members, now, config)), members


def inventory_rows(
    account: Account,
    run: Run,
    report: CredentialReport,
    users: Mapping[str, UserSnapshot],
    decisions: Mapping[str, Decision],
    records: Mapping[str, tuple[Delivery, triage.Quiet | None]],
    plan: policy.AccountPlan,
    now: datetime,
    config: LifecycleConfig,
) -> list[dict[str, Any]]:
    """Every key of the account, one row each (:mod:`keyrotation.key_inventory`), from what the audit holds.

    Users read in full come with their key ids, tags and groups (their keys' last use from the report
    when it shows them, for free); the others as the credential report shows them.
    """
    this_run = key_inventory.planned(plan.actions, plan.deferred)
    rows: list[dict[str, Any]] = []
    shown = {row.user_name: row for row in report.users}
    for name in sorted(set(shown) | set(users)):
        user = users.get(name)
        if user is not None:
            row = shown.get(name)
            keys = tuple(key if key.last_used else with_report_last_use(key, row) or key for key in user.keys)
            view = key_inventory.UserView(
                replace(user, keys=keys), True, records.get(name, (Delivery(), None))[0], decisions.get(name)
            )
        else:
            view = key_inventory.UserView(_with_report_use(shown[name]), False)
        rows += key_inventory.user_rows(view, account.account_id, account.name, now, config, this_run, run.dry_run)
    return rows


def _with_report_use(row: ReportUser) -> UserSnapshot:
    """The user as the report shows it, with its keys' last use."""
    snapshot = triage.report_snapshot(row)
    keys = tuple(
        replace(
            key,
            last_used=shown.last_used,
            last_used_service=shown.last_used_service,
            last_used_region=shown.last_used_region,
        )
        for key, shown in zip(snapshot.keys, row.keys, strict=True)
    )
    return replace(snapshot, keys=keys)


def _last_use(iam: Any, key: AccessKey, row: ReportUser | None) -> AccessKey:
    """The key with its last use: from the report when it shows the key, else from IAM (one call)."""
    return with_report_last_use(key, row) or with_last_use(iam, key)


def _remember_quiet(
    ledger: Ledger, account: Account, user: UserSnapshot, delivery: Delivery, now: datetime, config: LifecycleConfig
) -> None:
    """Mark the user quiet until the policy can next have something to do or say (see :mod:`triage`)."""
    until = triage.quiet_until(user, delivery, now, config)
    if until is None:
        return
    keys = triage.fingerprint((key.created, key.active) for key in user.keys)
    quiet = triage.Quiet(until, keys, triage.basis(config))
    ledger.record_quiet(account.account_id, user.user_name, user.user_id, quiet)


#: The notices whose digest entry says whether the user's new key is in use and the old one still used.
_ADOPTION_NOTICES = frozenset({NoticeKind.DISABLE_SOON, NoticeKind.REENABLED})


def _uptake(user: UserSnapshot, delivery: Delivery, now: datetime, with_adoption: bool) -> dict[str, Any]:
    """The ledger fields the owner digest reads (issue 11): ``hints`` off the user's long-lived keys, and
    ``adoption`` (:func:`keyrotation.adoption.uptake`) when ``with_adoption``. From the keys' last use the
    audit already read: no AWS call. At most two keys each, so an item stays small."""
    fields: dict[str, Any] = {}
    hints = adoption.key_hints(user.keys, delivery, now)
    if hints:
        fields["hints"] = [{"keyId": key_id, "hint": text} for key_id, text in hints]
    taken_up = adoption.uptake(user.keys, delivery) if with_adoption else None
    if taken_up:
        fields["adoption"] = taken_up
    return fields


def _usage(user: UserSnapshot | None, key_id: str | None) -> dict[str, Any]:
    """Last use of the key a notice is about, for the warning email."""
    key = next((key for key in user.keys if key.key_id == key_id), None) if user else None
    if key is None:
        return {}
    return {
        "lastUsed": key.last_used.isoformat() if key.last_used else None,
        "lastUsedService": key.last_used_service,
        "lastUsedRegion": key.last_used_region,
        "keyCreated": key.created.isoformat(),
    }
