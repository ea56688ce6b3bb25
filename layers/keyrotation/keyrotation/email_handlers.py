"""What the two email handlers share: Notify (digests) and SendRunReport (the run report).

Both render the templates packaged beside their ``app.py`` (``TemplateBucket`` can override them),
send through SES from ``SenderEmail``, publish the same metrics and leave a transient SES error
to the state machine's Retry. A handler is three lines::

    settings = NotifySettings.from_env()
    outcome = notifier(settings, TEMPLATES).notify_account(account, run, settings.guide)
    return finish(outcome)  # {"sent": 1, "failed": 0, "skipped": 0, "invalid": 0}, or KeyRotation.Throttled
"""

from __future__ import annotations

from pathlib import Path

from keyrotation import config
from keyrotation.aws import client
from keyrotation.key_events import Publisher
from keyrotation.ledger import Ledger
from keyrotation.notifications import Mailer, Notifier, NotifySettings, Outcome, OverrideLoader, Renderer
from keyrotation.observability import MetricUnit, logger, metrics


def notifier(settings: NotifySettings, templates: Path, key_events: bool = False) -> Notifier:
    """The ledger, the templates in ``templates`` (with the S3 overrides, if any) and SES (None: no sender).

    ``key_events``: also publish the account's key events to the bus of ``EVENT_BUS_ARN`` (Notify's).
    """
    overrides = None
    if settings.template_bucket and settings.template_bucket_owner:
        overrides = OverrideLoader(
            client("s3"), settings.template_bucket, settings.template_prefix, owner=settings.template_bucket_owner
        )
    mailer = Mailer(client("ses"), settings.sender, reply_to=settings.security_team) if settings.sender else None
    events = Publisher(client("events"), config.event_bus_arn()) if key_events else None
    return Notifier(Ledger(config.ledger_table()), Renderer(templates, overrides), mailer, events)


def finish(outcome: Outcome) -> dict[str, int]:
    """Publish and log the counts; raise for the state machine's Retry if a transient failure is left."""
    metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=outcome.sent)
    metrics.add_metric(name="EmailsFailed", unit=MetricUnit.Count, value=outcome.failed)
    metrics.add_metric(name="EmailsSkipped", unit=MetricUnit.Count, value=outcome.skipped)
    metrics.add_metric(name="InvalidEmailAddresses", unit=MetricUnit.Count, value=outcome.invalid)
    metrics.add_metric(name="TemplateFallbacks", unit=MetricUnit.Count, value=outcome.fallbacks)
    logger.info("notifications done", extra={"outcome": outcome.to_json()})
    outcome.raise_if_retry_needed()
    return outcome.to_json()
