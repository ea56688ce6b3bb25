"""AuditKeys: read one account's users and keys, let the policy plan, record the plan.

Event: ``{"account": {...}, "run": {...}}``.
Returns ``{"actions": [{"type", "userName", "keyId", "reason"}, ...], "counts": {...}}``:
at most MaxActionsPerAccount actions, in the order they must run.
"""

from __future__ import annotations

from typing import Any

from keyrotation import clock, config
from keyrotation.audit import audit_account
from keyrotation.aws import client, member_session
from keyrotation.config import LifecycleConfig
from keyrotation.events import Account, Run
from keyrotation.handlers import refuse_excluded
from keyrotation.ledger import Ledger
from keyrotation.observability import MetricUnit, handler, logger, metrics
from keyrotation.sessions import Purpose


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run, account = Run.from_event(event), Account.from_event(event)
    logger.append_keys(account_id=account.account_id, run_id=run.run_id)
    lifecycle = LifecycleConfig.from_env()
    refuse_excluded(account)
    session = member_session(account.account_id, run.run_id, Purpose.AUDIT, exemption_group=lifecycle.exempt_group_name)
    iam = client("iam", session)
    result = audit_account(
        iam, Ledger(config.ledger_table()), account, run, lifecycle, clock.now(), config.owner_email_tag_key()
    )
    summary = result.to_json()
    logger.info("audit done", extra={"counts": summary["counts"]})
    metrics.add_metric(name="PlannedActions", unit=MetricUnit.Count, value=len(result.plan.actions))
    metrics.add_metric(name="DeferredActions", unit=MetricUnit.Count, value=len(result.plan.deferred))
    return summary
