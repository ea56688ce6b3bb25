"""Audit one account: read every user with keys, ask the policy, record the plan.

The plan's actions (at most ``MaxActionsPerAccount``) go back to the state
machine; everything a person should hear about (warnings, exemptions,
deferred actions, blocked rotations) goes to the ledger, where notify reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from keyrotation import policy
from keyrotation.config import LifecycleConfig
from keyrotation.events import Account, Run
from keyrotation.inventory import read_account, with_last_use
from keyrotation.ledger import Ledger
from keyrotation.model import Delivery, NoticeKind, UserSnapshot
from keyrotation.observability import logger


@dataclass(frozen=True)
class AuditResult:
    plan: policy.AccountPlan
    users_with_keys: int

    def to_json(self) -> dict[str, Any]:
        notices = [notice.kind.value for notice in self.plan.notices]
        return {
            "actions": [action.to_json() for action in self.plan.actions],
            "counts": {
                "usersWithKeys": self.users_with_keys,
                "actions": len(self.plan.actions),
                "deferred": len(self.plan.deferred),
                **{kind.value: notices.count(kind.value) for kind in NoticeKind},
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
) -> AuditResult:
    deliveries = ledger.deliveries(account.account_id)
    users: dict[str, UserSnapshot] = {}
    decisions = []
    for user in read_account(iam, config.exempt_group_name):
        delivery = deliveries.get(user.user_name, Delivery())
        decision = policy.decide(user, delivery, now, config)
        if decision.actions or decision.notices:
            # Only now is the keys' last use worth its API calls: it goes into reasons and warnings.
            user = replace(user, keys=tuple(with_last_use(iam, key) for key in user.keys))
            decision = policy.decide(user, delivery, now, config)
        if not run.dry_run and any(notice.kind is NoticeKind.REENABLED for notice in decision.notices):
            # Recorded before anything else of the run, so that its actions' functions decide on it too.
            ledger.record_reenabled(account.account_id, user.user_name, policy.unrecorded_reenables(user, delivery))
        users[user.user_name] = user
        decisions.append(decision)
    plan = policy.plan_account(decisions, config)

    def owner(user_name: str) -> dict[str, Any]:
        user = users.get(user_name)
        return {"ownerEmail": user.tags.get(owner_tag_key) if user else None}

    for action in plan.actions:
        ledger.record_action(
            run.run_id, account.account_id, action, status="planned", dryRun=run.dry_run, **owner(action.user_name)
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
    for notice in plan.notices:
        extra = _usage(users.get(notice.user_name), notice.key_id)
        ledger.record_notice(
            run.run_id, account.account_id, notice, dryRun=run.dry_run, **owner(notice.user_name), **extra
        )
    return AuditResult(plan=plan, users_with_keys=len(users))


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
