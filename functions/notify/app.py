"""Notify: one digest per person per account and run.

Event: ``{"account": {"id", "name", "email"}, "run": {...}}`` (state ``Notify``, once per account after
its key actions): each person concerned gets one digest of their users' key events in that account.
The security team's run report is SendRunReport's (``functions/send_run_report``). In a dry run the
account's preview goes to the security team only, unless ``DryRunNotifyOwners`` is true; a preview
the same as the last one mailed to that person is not mailed again (recorded ``unchanged``).

In a real run, every key action of the account (rotated, disabled, deleted, blocked, warned) is then
published as an EventBridge event on the default bus of the stack's account (``EVENT_BUS_ARN``; see
:mod:`keyrotation.key_events`); a dry run publishes none. A retried invocation publishes them again,
with the same ``detail.eventId``.

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
from keyrotation.email_handlers import finish, notifier
from keyrotation.events import Account, Run
from keyrotation.notifications import NotifySettings
from keyrotation.observability import handler, logger

TEMPLATES = Path(__file__).parent / "templates"


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run, account = Run.from_event(event), Account.from_event(event)
    logger.append_keys(run_id=run.run_id, dry_run=run.dry_run, account_id=account.account_id)
    settings = NotifySettings.from_env()
    owners = config.dry_run_notify_owners()
    notify = notifier(settings, TEMPLATES, key_events=True)
    return finish(notify.notify_account(account, run, settings.guide, owners_in_dry_run=owners))
