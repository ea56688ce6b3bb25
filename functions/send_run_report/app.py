"""SendRunReport: the security team's report of the run, once per execution.

Event: ``{"run": {...}, "report": <summary>, "replayInput": {...}}`` (state ``SendRunReport``, after
Summarize): what every account did, which failed and why, and the input that replays them. When the
run failed before its accounts (ListAccounts) or after them (Summarize), the report is
``{"runId", "failure": {"state", "error", "cause"}}`` and says so, with what the ledger holds; a run
that failed in ListAccounts has no ``dryRun`` yet, so the stack's ``DryRun`` is shown.

Returns ``{"sent", "failed", "skipped", "invalid"}`` (counts of emails). A permanent SES error is
counted, never raised: the report never changes the run's outcome. A transient one raises
``KeyRotation.Throttled`` or ``KeyRotation.TransientAwsError`` for the state machine's Retry. With
``SecurityTeamEmail`` or ``SenderEmail`` empty, nothing is sent (``skipped``).

The templates are packaged beside this file (``templates/``, a link to the repository's
``templates/`` folder that ``sam build`` copies); ``TemplateBucket``/``TemplatePrefix`` can override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keyrotation import config
from keyrotation.email_handlers import finish, notifier
from keyrotation.events import Report, Run, RunFailure
from keyrotation.notifications import NotifySettings
from keyrotation.observability import handler, logger

TEMPLATES = Path(__file__).parent / "templates"


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = NotifySettings.from_env()
    report = Report.from_event(event)
    failure = RunFailure.from_event(event) if "failure" in report.summary else None
    if failure is None:
        run = Run.from_event(event)
    else:
        run = Run(failure.run_id, config.dry_run() if failure.dry_run is None else failure.dry_run)
    logger.append_keys(run_id=run.run_id, dry_run=run.dry_run, failed_state=failure.state if failure else None)
    outcome = notifier(settings, TEMPLATES).send_run_report(
        run,
        report.summary,
        report.replay_input,
        recipient=settings.security_team,
        started_at=report.started_at,
        run_failure=failure,
    )
    return finish(outcome)
