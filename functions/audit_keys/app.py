"""AuditKeys: read one account's credential report and the users it points at, let the policy plan, record the plan.

Event: ``{"account": {...}, "run": {...}}``.
Returns ``{"actions": <how many>, "notify": <anything to tell anyone>, "counts": {...}}``. The actions
themselves (at most MaxActionsPerAccount, in the order they must run) are in the ledger, one item each:
the state machine fetches them one at a time, so its state does not grow with the plan.
Raises ``KeyRotation.ReportNotReady`` when the credential report is still being generated after a short
wait; the state machine retries later.

Every key of the account goes to the run's inventory (:mod:`keyrotation.key_inventory`), one fragment
per account: ``reports/<runId>/inventory/<accountId>.json`` in the run bucket (one PutObject), which
Summarize combines.
"""

from __future__ import annotations

from typing import Any

from keyrotation import clock, config, credential_report
from keyrotation.audit import audit_account
from keyrotation.aws import client, member_session
from keyrotation.config import LifecycleConfig
from keyrotation.events import Account, Run
from keyrotation.handlers import refuse_excluded
from keyrotation.ledger import Ledger
from keyrotation.observability import MetricUnit, handler, logger, metrics
from keyrotation.reports import fragment, fragment_key, write
from keyrotation.sessions import Purpose


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run, account = Run.from_event(event), Account.from_event(event)
    logger.append_keys(account_id=account.account_id, run_id=run.run_id)
    lifecycle = LifecycleConfig.from_env()
    refuse_excluded(account)
    session = member_session(account.account_id, run.run_id, Purpose.AUDIT, exemption_group=lifecycle.exempt_group_name)
    iam = client("iam", session)
    report = credential_report.fetch(iam, clock.now)
    s3 = client("s3")

    def write_inventory(audited: Account, rows: list[dict[str, Any]], totals: dict[str, int]) -> None:
        text = fragment(audited.account_id, audited.name, rows, totals)
        write(s3, config.run_bucket(), config.bucket_owner(), fragment_key(run.run_id, audited.account_id), text)

    result = audit_account(
        iam,
        Ledger(config.ledger_table()),
        account,
        run,
        lifecycle,
        clock.now(),
        config.owner_email_tag_key(),
        report,
        inventory_sink=write_inventory,
    )
    summary = result.to_json()
    logger.info(
        "audit done",
        extra={
            "counts": summary["counts"],
            "report_age_seconds": result.report_age_seconds,
            "inventory": result.inventory,
        },
    )
    metrics.add_metric(name="PlannedActions", unit=MetricUnit.Count, value=len(result.plan.actions))
    metrics.add_metric(name="DeferredActions", unit=MetricUnit.Count, value=len(result.plan.deferred))
    metrics.add_metric(name="UsersRead", unit=MetricUnit.Count, value=result.users_read)
    return summary
