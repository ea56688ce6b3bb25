"""Notify: one digest per person per account and run, and one report per execution.

Two events, both from the state machine:

- ``{"account": {"id", "name", "email"}, "run": {...}}`` (state ``Notify``, once per account after its
  key actions): each person concerned gets one digest of their users' key events in that account.
- ``{"run": {...}, "report": <summary>, "replayInput": {...}}`` (state ``SendRunReport``, once per
  execution): the security team gets the run report.

Returns ``{"sent", "failed", "skipped", "invalid"}`` (counts of emails). A permanent SES error is
recorded in the ledger and counted, never raised: a notification never fails a key action. When a
transient SES error is left after everyone else has been served, ``KeyRotation.Throttled`` or
``KeyRotation.TransientAwsError`` is raised for the state machine's Retry; people already sent their
digest for this run are skipped on the retry.

The templates are packaged beside this file (``templates/``, a link to the repository's
``templates/`` folder that ``sam build`` copies); ``TemplateBucket``/``TemplatePrefix`` can override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keyrotation import config
from keyrotation.aws import client
from keyrotation.errors import InvalidInput
from keyrotation.events import Account, Run
from keyrotation.ledger import Ledger
from keyrotation.notifications import Mailer, Notifier, NotifySettings, Outcome, OverrideLoader, Renderer
from keyrotation.observability import MetricUnit, handler, logger, metrics

TEMPLATES = Path(__file__).parent / "templates"


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = Run.from_event(event)
    logger.append_keys(run_id=run.run_id, dry_run=run.dry_run)
    settings = NotifySettings.from_env()
    ledger = Ledger(config.ledger_table())
    renderer = _renderer(settings)
    mailer = Mailer(client("ses"), settings.sender, reply_to=settings.security_team) if settings.sender else None
    notifier = Notifier(ledger, renderer, mailer)
    if "report" in event:
        outcome = notifier.send_run_report(
            run,
            event["report"],
            event.get("replayInput"),
            recipient=settings.security_team,
            started_at=event["run"].get("startedAt"),
        )
    elif "account" in event:
        account = Account.from_event(event)
        logger.append_keys(account_id=account.account_id)
        outcome = notifier.notify_account(account, run, settings.guide)
    else:
        raise InvalidInput("event has neither 'account' (send digests) nor 'report' (send the run report)")
    _publish(outcome)
    logger.info("notifications done", extra={"outcome": outcome.to_json()})
    outcome.raise_if_retry_needed()
    return outcome.to_json()


def _renderer(settings: NotifySettings) -> Renderer:
    overrides = None
    if settings.template_bucket:
        overrides = OverrideLoader(client("s3"), settings.template_bucket, settings.template_prefix)
    return Renderer(TEMPLATES, overrides)


def _publish(outcome: Outcome) -> None:
    metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=outcome.sent)
    metrics.add_metric(name="EmailsFailed", unit=MetricUnit.Count, value=outcome.failed)
    metrics.add_metric(name="EmailsSkipped", unit=MetricUnit.Count, value=outcome.skipped)
    metrics.add_metric(name="InvalidEmailAddresses", unit=MetricUnit.Count, value=outcome.invalid)
    metrics.add_metric(name="TemplateFallbacks", unit=MetricUnit.Count, value=outcome.fallbacks)
