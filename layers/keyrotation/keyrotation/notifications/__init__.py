"""The emails: one digest per person per account and run, one report per execution.

Four steps, each testable on its own, each in its own modules:

1. **Who and what** (pure): :func:`build_digests` (``digest_builder``) turns
   the ledger records of one account of a run (each read by ``digest_events``)
   into one :class:`Digest` (``digest``) per person, addressed as
   ``addresses`` allows.
   :func:`build_run_report` (``report_builder``) gathers the security team's
   :class:`RunReport` (``report``) from the summary and the whole run's
   ledger records (:mod:`keyrotation.ledger_records`).
2. **Rendering** (``rendering``): :class:`Renderer` renders
   ``<kind>.html.j2`` (autoescaped) and ``<kind>.txt.j2`` from the packaged
   ``templates/`` folder in a sandbox (``environment``), or from override
   objects in S3 (:class:`OverrideLoader`, ``overrides``), falling back to
   the packaged template and recording why (:class:`TemplateFallback`).
3. **Sending** (``sending``): :class:`Mailer` sends one MIME message with SES
   ``SendRawEmail``; :func:`classify` tells transient SES errors from
   permanent ones.
4. **Bookkeeping** (``notifier``, ``outcome``, ``status``):
   :meth:`Notifier.notify_account` records every digest in the ledger and
   never sends one twice; :meth:`Outcome.raise_if_retry_needed` leaves
   transient failures to the state machine's Retry once everyone else has
   been served.

:class:`NotifySettings` and :class:`Guide` (``settings``) are the function's
configuration. No email, ledger item or log line ever holds a secret access
key (notify never reads one) or a message body.

Example:
    >>> from keyrotation.events import Account, Run
    >>> from keyrotation.ledger_records import ActionRecord, ActionStatus
    >>> from keyrotation.model import ActionType
    >>> records = [ActionRecord("111122223333", "alice", "AKIAOLD", ActionType.DISABLE, ActionStatus.DONE,
    ...                         reason="Replaced 15 days ago.", owner_email="Alice@Example.com")]
    >>> plan = build_digests(records, Account("111122223333", "prod", "aws@example.com"), Run("run-1", False),
    ...                      Guide("us-east-1", "email", "key-rotation:exempt", "Exempt", None, 15, 25))
    >>> [(digest.recipient, [event.key_id for event in digest.disabled]) for digest in plan.digests]
    [('alice@example.com', ['AKIAOLD'])]
"""

from __future__ import annotations

from keyrotation.notifications.addresses import normalize_address
from keyrotation.notifications.digest import (
    SECTIONS,
    Blocked,
    Digest,
    DisableSoon,
    ExemptionExpiring,
    InvalidOwnerTag,
    KeyChange,
    Reenabled,
    Rotation,
)
from keyrotation.notifications.digest_builder import DigestPlan, Unreachable, build_digests
from keyrotation.notifications.digest_events import read_secret_command
from keyrotation.notifications.environment import format_day, format_moment
from keyrotation.notifications.notifier import Notifier
from keyrotation.notifications.outcome import Outcome
from keyrotation.notifications.overrides import OverrideLoader
from keyrotation.notifications.rendered import RenderedEmail, TemplateFallback
from keyrotation.notifications.rendering import DIGEST, FORMATS, RUN_REPORT, TEMPLATE_KINDS, Renderer
from keyrotation.notifications.report import (
    REPORT_LIST_LIMIT,
    Capped,
    EmailProblem,
    FailedAccount,
    FallbackCount,
    NoticeRow,
    RunReport,
)
from keyrotation.notifications.report_builder import build_run_report
from keyrotation.notifications.sending import Mailer, SendFailure, SendResult, classify, compose
from keyrotation.notifications.settings import PRODUCT, Guide, NotifySettings
from keyrotation.notifications.status import DELIVERED, EmailStatus
from keyrotation.notifications.subjects import digest_subject, run_report_subject

__all__ = [
    "DELIVERED",
    "DIGEST",
    "FORMATS",
    "PRODUCT",
    "REPORT_LIST_LIMIT",
    "RUN_REPORT",
    "SECTIONS",
    "TEMPLATE_KINDS",
    "Blocked",
    "Capped",
    "Digest",
    "DigestPlan",
    "DisableSoon",
    "EmailProblem",
    "EmailStatus",
    "ExemptionExpiring",
    "Reenabled",
    "FailedAccount",
    "FallbackCount",
    "Guide",
    "InvalidOwnerTag",
    "KeyChange",
    "Mailer",
    "NoticeRow",
    "Notifier",
    "NotifySettings",
    "Outcome",
    "OverrideLoader",
    "RenderedEmail",
    "Renderer",
    "Rotation",
    "RunReport",
    "SendFailure",
    "SendResult",
    "TemplateFallback",
    "Unreachable",
    "build_digests",
    "build_run_report",
    "classify",
    "compose",
    "digest_subject",
    "format_day",
    "format_moment",
    "normalize_address",
    "read_secret_command",
    "run_report_subject",
]
