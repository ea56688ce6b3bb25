"""The emails: one digest per person per account and run, one report per execution.

Four steps, each testable on its own:

1. **Who and what** (pure): :func:`build_digests` turns the ledger items of one
   account of a run into one :class:`Digest` per person. The person of an IAM
   user is the address in the user's owner tag (``OwnerEmailTagKey``) when it
   is a valid address, else the account's email from Organizations. A tag that
   holds something else is reported (a ledger ``email`` item with status
   ``invalid-address`` and a line in the digest and the run report) and never
   sent to; the user's events then go to the account's email, so nobody's key
   changes unannounced. :func:`build_run_report` gathers the security
   team's report from the summary and the whole run's ledger items.
2. **Rendering**: :class:`Renderer` renders ``<kind>.html.j2`` (autoescaped)
   and ``<kind>.txt.j2`` from the packaged ``templates/`` folder, or from
   override objects in S3 (:class:`OverrideLoader`). An override that is
   missing, unreadable or broken (syntax error, unknown variable, any error
   while rendering) is replaced by the packaged template, and the fallback is
   recorded so the run report can list it.
3. **Sending**: :class:`Mailer` sends one MIME message (plain text and HTML
   alternatives) with SES ``SendRawEmail``. :func:`classify` tells transient
   SES errors (throttling, 5xx, network) from permanent ones (``MessageRejected``
   in the sandbox, an unverified sender, a daily quota).
4. **Bookkeeping**: :meth:`Notifier.notify_account` records every digest in
   the ledger (``sent``, ``preview`` for a dry run's digest, ``failed``,
   ``invalid-address``, ``not-configured``) and skips people already sent a
   digest for this account and run, so a retried or replayed invocation never
   sends twice. Transient failures are left for the state machine's Retry:
   :meth:`Outcome.raise_if_retry_needed` raises ``Throttled`` or
   ``TransientAwsError`` once everyone else has been served.

No email, ledger item or log line ever holds a secret access key (notify never
reads one) or a message body.

Example:
    >>> from keyrotation.events import Account, Run
    >>> items = [{"kind": "action", "type": "disable", "userName": "alice", "keyId": "AKIAOLD",
    ...           "reason": "Replaced 15 days ago.", "status": "done", "ownerEmail": "Alice@Example.com"}]
    >>> plan = build_digests(items, Account("111122223333", "prod", "aws@example.com"), Run("run-1", False),
    ...                      Guide(region="us-east-1"))
    >>> [(digest.recipient, [event.key_id for event in digest.disabled]) for digest in plan.digests]
    [('alice@example.com', ['AKIAOLD'])]
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from keyrotation import clock, naming
from keyrotation.aws import THROTTLING_CODES, TRANSIENT_CODES, error_code
from keyrotation.config import LifecycleConfig, owner_email_tag_key
from keyrotation.errors import InvalidConfiguration, InvalidInput, Throttled, TransientAwsError
from keyrotation.events import Account, Run
from keyrotation.ledger import Ledger
from keyrotation.model import ActionType, NoticeKind
from keyrotation.observability import logger

PRODUCT = "IAM access key rotation"

#: At most this many rows of each list in the run report; the rest are counted.
REPORT_LIST_LIMIT = 200

DIGEST = "digest"
RUN_REPORT = "run_report"
TEMPLATE_KINDS = (DIGEST, RUN_REPORT)
FORMATS = ("html", "txt")


class EmailStatus(str, Enum):
    """The ``status`` of a ledger ``email`` item."""

    SENT = "sent"  # SES accepted the digest
    PREVIEW = "preview"  # SES accepted the digest of a dry run
    FAILED = "failed"  # SES refused it (``transient`` says whether a retry may help)
    INVALID_ADDRESS = "invalid-address"  # the address is not one we send to; nothing was sent
    NOT_CONFIGURED = "not-configured"  # SenderEmail is empty: what would have been sent


#: A person with an email item in one of these states has had this run's digest.
DELIVERED = frozenset({EmailStatus.SENT.value, EmailStatus.PREVIEW.value})


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------

# Used with fullmatch: ``$`` alone would accept a line break before the end.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def normalize_address(value: object) -> str | None:
    """The address to send to, lower-cased, or None when ``value`` is not one plain address.

    Only a bare ``local@domain`` is accepted: no display name, no list, no
    whitespace or line break inside (so nothing can be smuggled into a header).
    The local part must be ASCII (SES refuses anything else); a Unicode domain
    is sent as Punycode. Addresses are lower-cased, so ``Alice@Example.com``
    and ``alice@example.com`` are one person and get one digest.

    >>> normalize_address(" Alice@Example.COM ")
    'alice@example.com'
    >>> normalize_address("bob@bücher.example")
    'bob@xn--bcher-kva.example'
    >>> [normalize_address(bad) for bad in ("", "alice", "a@b", "a b@c.com", "x@y.com\\nBcc: z@w.com", None)]
    [None, None, None, None, None, None]
    """
    if not isinstance(value, str):
        return None
    local, at, domain = value.strip().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit() or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return None
    address = f"{local.lower()}@{ascii_domain}"
    return address if len(address) <= 254 else None


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Guide:
    """What an email tells people about the product's settings (what to do, whom to ask).

    ``region`` is where the users' secrets are (the region the functions run in).
    """

    region: str
    owner_tag_key: str = "email"
    exempt_tag_key: str = "key-rotation:exempt"
    exempt_group_name: str = "IAMKeyRotationExemptionGroup"
    security_team: str | None = None
    disable_grace_days: int = 15
    delete_grace_days: int = 25


@dataclass(frozen=True)
class NotifySettings:
    """The notify function's configuration, from the environment the template gives it.

    ``sender`` None means SenderEmail is empty: nothing is sent, every digest is
    recorded ``not-configured``.

    >>> env = {"SENDER_EMAIL": "keys@example.com", "AWS_REGION": "eu-west-1"}
    >>> settings = NotifySettings.from_env(env)
    >>> settings.sender, settings.security_team, settings.template_bucket, settings.guide.region
    ('keys@example.com', None, None, 'eu-west-1')
    """

    sender: str | None
    security_team: str | None
    template_bucket: str | None
    template_prefix: str
    guide: Guide

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifySettings:
        env = os.environ if env is None else env
        lifecycle = LifecycleConfig.from_env(env)
        security_team = _configured_address(env, "SECURITY_TEAM_EMAIL")
        region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
        if not region:
            raise InvalidConfiguration("AWS_REGION is not set")
        guide = Guide(
            region=region,
            owner_tag_key=owner_email_tag_key(env),
            exempt_tag_key=lifecycle.exempt_tag_key,
            exempt_group_name=lifecycle.exempt_group_name,
            security_team=security_team,
            disable_grace_days=lifecycle.disable_grace_days,
            delete_grace_days=lifecycle.delete_grace_days,
        )
        return cls(
            sender=_configured_address(env, "SENDER_EMAIL"),
            security_team=security_team,
            template_bucket=env.get("TEMPLATE_BUCKET", "").strip() or None,
            template_prefix=env.get("TEMPLATE_PREFIX", "").strip(),
            guide=guide,
        )


def _configured_address(env: Mapping[str, str], name: str) -> str | None:
    """The address as configured, checked but not rewritten: the IAM policy matches SenderEmail exactly."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if normalize_address(raw) is None:
        raise InvalidConfiguration(f"{name} must be a single email address, got {raw!r}")
    return raw


# --------------------------------------------------------------------------
# Digests: what each person is told
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """A key rotated (or, in a preview, that would be rotated).

    In a preview ``new_key_id`` and ``secret_arn`` are None, ``read_command``
    names the secret by name, and the dates are the earliest possible ones.
    """

    user_name: str
    old_key_id: str
    new_key_id: str | None
    secret_name: str
    secret_arn: str | None
    read_command: str
    disable_on: date | None
    delete_on: date | None
    reason: str

    @property
    def key_id(self) -> str:
        """The key the event is about: the old one."""
        return self.old_key_id


@dataclass(frozen=True)
class KeyChange:
    """An old key disabled or deleted (or, in a preview, that would be)."""

    user_name: str
    key_id: str
    reason: str


@dataclass(frozen=True)
class DisableSoon:
    """An old key that will be disabled soon, with its last use so the person can find what still uses it."""

    user_name: str
    key_id: str
    disable_on: date | None
    detail: str
    last_used: datetime | None
    last_used_service: str | None
    last_used_region: str | None
    key_created: date | None
    secret_name: str
    read_command: str


@dataclass(frozen=True)
class Blocked:
    """A due rotation that cannot happen; ``why`` says why and what would unblock it."""

    user_name: str
    key_id: str | None
    why: str
    retry_on: date | None


@dataclass(frozen=True)
class ExemptionExpiring:
    user_name: str
    ends_on: date | None
    detail: str

    @property
    def key_id(self) -> None:
        """An exemption is the user's, not a key's."""
        return None


#: The digest's sections (fields of :class:`Digest`), in the order the emails show them.
SECTIONS = ("rotated", "disable_soon", "disabled", "deleted", "blocked", "exemption_expiring")


@dataclass(frozen=True)
class InvalidOwnerTag:
    """The owner tag of ``user_name`` holds ``value``, which is not an address: reported, never sent to."""

    user_name: str
    value: str


@dataclass(frozen=True)
class Digest:
    """Everything one person is told about one account in one run."""

    recipient: str
    account: Account
    run_id: str
    preview: bool
    rotated: tuple[Rotation, ...] = ()
    disable_soon: tuple[DisableSoon, ...] = ()
    disabled: tuple[KeyChange, ...] = ()
    deleted: tuple[KeyChange, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    exemption_expiring: tuple[ExemptionExpiring, ...] = ()
    invalid_owner_tags: tuple[InvalidOwnerTag, ...] = ()

    def events(self) -> Iterator[Any]:
        for section in SECTIONS:
            yield from getattr(self, section)

    @property
    def counts(self) -> dict[str, int]:
        """How many events of each section (camelCase, as in the ledger), for the ledger and the logs.

        >>> Digest("a@example.com", Account("111122223333", "", ""), "run-1", False).counts["disableSoon"]
        0
        """
        return {_camel(section): len(getattr(self, section)) for section in SECTIONS}

    @property
    def user_names(self) -> list[str]:
        return sorted({event.user_name for event in self.events()})

    @property
    def key_ids(self) -> list[str]:
        return sorted({event.key_id for event in self.events() if event.key_id})

    def warned_marks(self) -> dict[str, list[tuple[str, str]]]:
        """The (key id, notice kind) pairs this digest warns each user about (for ``Ledger.record_warned``)."""
        marks: dict[str, list[tuple[str, str]]] = {}
        for soon in self.disable_soon:
            marks.setdefault(soon.user_name, []).append((soon.key_id, NoticeKind.DISABLE_SOON.value))
        for ending in self.exemption_expiring:
            marks.setdefault(ending.user_name, []).append(("", NoticeKind.EXEMPTION_EXPIRING.value))
        return marks


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


@dataclass(frozen=True)
class Unreachable:
    """An address found where a recipient should be that is not one (recorded ``invalid-address``)."""

    address: str
    users: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class DigestPlan:
    digests: tuple[Digest, ...]
    unreachable: tuple[Unreachable, ...]


def read_secret_command(secret_id: str, region: str) -> str:
    """The AWS CLI command that prints the user's new key (run with the user's own credentials).

    >>> print(read_secret_command("Account_1_User_a_AccessKey", "eu-west-1"))  # doctest: +ELLIPSIS
    aws secretsmanager get-secret-value --secret-id Account_1_User_a_AccessKey --region eu-west-1 --query ...
    """
    return (
        f"aws secretsmanager get-secret-value --secret-id {shlex.quote(secret_id)} "
        f"--region {shlex.quote(region)} --query SecretString --output text"
    )


def _region_of(arn: str | None, default: str) -> str:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[3] else default


def _moment(value: Any) -> datetime | None:
    """An ISO timestamp from the ledger, or None when absent or unreadable (shown as "unknown")."""
    if not value:
        return None
    try:
        return clock.from_iso(str(value))
    except ValueError:
        logger.warning("unreadable timestamp in the ledger", extra={"value": str(value)[:64]})
        return None


def _day(value: Any) -> date | None:
    moment = _moment(value)
    return moment.date() if moment else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class _Collecting:
    """One person's digest while the items are read: section name -> events."""

    events: dict[str, list[Any]] = field(default_factory=dict)
    invalid_owner_tags: set[InvalidOwnerTag] = field(default_factory=set)

    def freeze(self, recipient: str, account: Account, run: Run) -> Digest:
        sections = {
            section: tuple(
                sorted(self.events.get(section, ()), key=lambda event: (event.user_name, event.key_id or ""))
            )
            for section in SECTIONS
        }
        tags = tuple(sorted(self.invalid_owner_tags, key=lambda tag: (tag.user_name, tag.value)))
        return Digest(recipient, account, run.run_id, run.dry_run, invalid_owner_tags=tags, **sections)


def build_digests(
    items: Iterable[Mapping[str, Any]],
    account: Account,
    run: Run,
    guide: Guide,
    today: date | None = None,
) -> DigestPlan:
    """One digest per person from the ledger items of one account of a run.

    In a real run the digest tells what was done (actions ``done``) and what is
    coming (``disable-soon``, ``blocked``, ``exemption-expiring`` notices).
    In a dry run actions stay ``planned``: they are shown as what would happen.
    Exempt users, deferred actions and invalid exemption tags are the security
    team's business: they are in the run report, not in digests.
    """
    today = today or clock.now().date()
    people: dict[str, _Collecting] = {}
    unreachable: dict[str, set[str]] = {}
    account_address = normalize_address(account.email)
    for item in items:
        found = _digest_event(item, account, run, guide, today)
        if found is None:
            continue
        section, event = found
        owner = _text(item.get("ownerEmail")).strip()
        owner_address = normalize_address(owner) if owner else None
        if owner and owner_address is None:
            unreachable.setdefault(owner, set()).add(event.user_name)
        recipient = owner_address or account_address
        if recipient is None:
            unreachable.setdefault(account.email, set()).add(event.user_name)
            continue
        person = people.setdefault(recipient, _Collecting())
        person.events.setdefault(section, []).append(event)
        if owner and owner_address is None:
            person.invalid_owner_tags.add(InvalidOwnerTag(event.user_name, owner))
    digests = tuple(people[recipient].freeze(recipient, account, run) for recipient in sorted(people))
    return DigestPlan(digests=digests, unreachable=_unreachable(unreachable, account, guide))


def _unreachable(found: Mapping[str, set[str]], account: Account, guide: Guide) -> tuple[Unreachable, ...]:
    problems = []
    for address, users in sorted(found.items()):
        if address == account.email:
            reason = f"the account's email {address!r} is not a valid address: these users' events were not sent"
        else:
            reason = (
                f"tag {guide.owner_tag_key!r} holds {address!r}, which is not a valid email address; "
                "the events went to the account's email instead"
            )
        problems.append(Unreachable(address=address, users=tuple(sorted(users)), reason=reason))
    return tuple(problems)


def _digest_event(
    item: Mapping[str, Any], account: Account, run: Run, guide: Guide, today: date
) -> tuple[str, Any] | None:
    """The digest section and event an item stands for, or None when it is nobody's news."""
    if item.get("kind") == "action":
        shown = "planned" if run.dry_run else "done"
        if item.get("status") != shown:
            return None
        kind = item.get("type")
        if kind == ActionType.ROTATE.value:
            return "rotated", _rotation(item, account, guide, today, preview=run.dry_run)
        change = KeyChange(_text(item.get("userName")), _text(item.get("keyId")), _text(item.get("reason")))
        if kind == ActionType.DISABLE.value:
            return "disabled", change
        if kind == ActionType.DELETE.value:
            return "deleted", change
        return None
    if item.get("kind") == "notice":
        return _notice_event(item, account, guide)
    return None


def _rotation(item: Mapping[str, Any], account: Account, guide: Guide, today: date, preview: bool) -> Rotation:
    user_name = _text(item.get("userName"))
    secret_name = _text(item.get("secretName")) or naming.secret_name(account.account_id, user_name)
    secret_arn = None if preview else (_text(item.get("secretArn")) or None)
    if preview:
        disable_on: date | None = today + timedelta(days=guide.disable_grace_days)
        delete_on: date | None = today + timedelta(days=guide.delete_grace_days)
    else:
        disable_on, delete_on = _day(item.get("disableOn")), _day(item.get("deleteOn"))
    return Rotation(
        user_name=user_name,
        old_key_id=_text(item.get("keyId")),
        new_key_id=None if preview else (_text(item.get("newKeyId")) or None),
        secret_name=secret_name,
        secret_arn=secret_arn,
        read_command=read_secret_command(secret_arn or secret_name, _region_of(secret_arn, guide.region)),
        disable_on=disable_on,
        delete_on=delete_on,
        reason=_text(item.get("reason")),
    )


def _notice_event(item: Mapping[str, Any], account: Account, guide: Guide) -> tuple[str, Any] | None:
    kind, user_name = item.get("type"), _text(item.get("userName"))
    if kind == NoticeKind.DISABLE_SOON.value:
        secret_name = naming.secret_name(account.account_id, user_name)
        return "disable_soon", DisableSoon(
            user_name=user_name,
            key_id=_text(item.get("keyId")),
            disable_on=_day(item.get("due")),
            detail=_text(item.get("detail")),
            last_used=_moment(item.get("lastUsed")),
            last_used_service=_recorded(item.get("lastUsedService")),
            last_used_region=_recorded(item.get("lastUsedRegion")),
            key_created=_day(item.get("keyCreated")),
            secret_name=secret_name,
            read_command=read_secret_command(secret_name, guide.region),
        )
    if kind == NoticeKind.BLOCKED.value:
        blocked = Blocked(user_name, _text(item.get("keyId")) or None, _text(item.get("detail")), _day(item.get("due")))
        return "blocked", blocked
    if kind == NoticeKind.EXEMPTION_EXPIRING.value:
        return "exemption_expiring", ExemptionExpiring(user_name, _day(item.get("due")), _text(item.get("detail")))
    return None


def _recorded(value: Any) -> str | None:
    """IAM writes "N/A" where it recorded no service or region."""
    text = _text(value).strip()
    return None if text in ("", "N/A") else text


# --------------------------------------------------------------------------
# The run report: what the security team is told
# --------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Capped(Generic[T]):
    """The first rows of a list that may be long, and how many were left out.

    >>> rows = Capped.of(range(5), limit=3)
    >>> rows.shown, rows.more, rows.total
    ((0, 1, 2), 2, 5)
    """

    shown: tuple[T, ...]
    more: int = 0

    @property
    def total(self) -> int:
        return len(self.shown) + self.more

    def __bool__(self) -> bool:
        return self.total > 0

    @classmethod
    def of(cls, rows: Iterable[T], limit: int = REPORT_LIST_LIMIT) -> Capped[T]:
        listed = list(rows)
        return cls(shown=tuple(listed[:limit]), more=max(0, len(listed) - limit))


@dataclass(frozen=True)
class FailedAccount:
    account_id: str
    error: str
    cause: str


@dataclass(frozen=True)
class NoticeRow:
    """One deferred action, exempt user or invalid exemption tag."""

    account_id: str
    user_name: str
    key_id: str | None
    detail: str
    due: date | None


@dataclass(frozen=True)
class EmailProblem:
    """A digest that was not delivered: failed, invalid address, or no sender configured."""

    account_id: str
    recipient: str
    status: str
    error: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class TemplateFallback:
    """A packaged template used instead of an S3 override, and why."""

    template: str
    reason: str


@dataclass(frozen=True)
class FallbackCount:
    template: str
    reason: str
    emails: int


@dataclass(frozen=True)
class RunReport:
    run_id: str
    preview: bool
    started_at: datetime | None
    accounts: dict[str, int]
    keys: dict[str, int]
    notices: dict[str, int]
    emails: dict[str, int]
    failed_accounts: Capped[FailedAccount]
    replay_input: str | None  # pretty JSON; None when there is none or it is too long for an email
    replay_input_chars: int  # its length, so the report can say it was left out
    deferred: Capped[NoticeRow]
    exempt: Capped[NoticeRow]
    invalid_tags: Capped[NoticeRow]
    notification_problems: Capped[EmailProblem]
    template_fallbacks: tuple[FallbackCount, ...]

    def with_fallbacks(self, fallbacks: Iterable[TemplateFallback]) -> RunReport:
        """This report, also listing the fallbacks that happened while rendering it."""
        counted = {(row.template, row.reason): row.emails for row in self.template_fallbacks}
        for fallback in fallbacks:
            key = (fallback.template, fallback.reason)
            counted[key] = counted.get(key, 0) + 1
        rows = tuple(FallbackCount(template, reason, emails) for (template, reason), emails in sorted(counted.items()))
        return replace(self, template_fallbacks=rows)


_MAX_CAUSE = 2000
_MAX_REPLAY_INPUT = 200_000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise InvalidInput(f"report count {value!r} is not a number") from None


def build_run_report(
    run: Run,
    summary: Mapping[str, Any],
    replay_input: Any,
    items: Iterable[Mapping[str, Any]],
    *,
    started_at: str | None = None,
    limit: int = REPORT_LIST_LIMIT,
) -> RunReport:
    """The security team's report: the summary's counts, plus what the run's ledger items tell.

    ``summary`` is the summarize function's output (``accounts``, ``keys``,
    ``failedAccounts``, ``notices``); ``items`` are every ledger item of the run.
    Each list keeps at most ``limit`` rows and counts the rest.
    """
    if not isinstance(summary, Mapping):
        raise InvalidInput("the run report's 'report' is not an object")
    notices: dict[str, list[NoticeRow]] = {"deferred": [], "exempt": [], "invalid-tag": []}
    problems: list[EmailProblem] = []
    emails: Counter[str] = Counter()
    fallbacks: Counter[tuple[str, str]] = Counter()
    for item in items:
        if item.get("kind") == "notice" and item.get("type") in notices:
            notices[str(item["type"])].append(_notice_row(item))
        elif item.get("kind") == "email":
            status = _text(item.get("status"))
            emails[status] += 1
            if status not in DELIVERED:
                problems.append(_email_problem(item))
            for fallback in item.get("templateFallbacks") or ():
                fallbacks[(_text(fallback.get("template")), _text(fallback.get("reason")))] += 1
    replay_text = json.dumps(replay_input, indent=2, sort_keys=True, default=str) if replay_input else ""
    return RunReport(
        run_id=run.run_id,
        preview=run.dry_run,
        started_at=_moment(started_at),
        accounts={name: _count((summary.get("accounts") or {}).get(name)) for name in ("total", "succeeded", "failed")},
        keys={
            name: _count((summary.get("keys") or {}).get(name)) for name in ("rotated", "disabled", "deleted", "warned")
        },
        notices={str(kind): _count(count) for kind, count in sorted((summary.get("notices") or {}).items())},
        emails={status.value: emails.get(status.value, 0) for status in EmailStatus},
        failed_accounts=Capped.of((_failed_account(row) for row in summary.get("failedAccounts") or ()), limit),
        replay_input=replay_text if len(replay_text) <= _MAX_REPLAY_INPUT else None,
        replay_input_chars=len(replay_text),
        deferred=Capped.of(sorted(notices["deferred"], key=_row_order), limit),
        exempt=Capped.of(sorted(notices["exempt"], key=_row_order), limit),
        invalid_tags=Capped.of(sorted(notices["invalid-tag"], key=_row_order), limit),
        notification_problems=Capped.of(sorted(problems, key=lambda row: (row.account_id, row.recipient)), limit),
        template_fallbacks=tuple(
            FallbackCount(template, reason, count) for (template, reason), count in sorted(fallbacks.items())
        ),
    )


def _notice_row(item: Mapping[str, Any]) -> NoticeRow:
    return NoticeRow(
        account_id=_text(item.get("accountId")),
        user_name=_text(item.get("userName")),
        key_id=_text(item.get("keyId")) or None,
        detail=_text(item.get("detail")),
        due=_day(item.get("due")),
    )


def _email_problem(item: Mapping[str, Any]) -> EmailProblem:
    error = _text(item.get("error"))
    if item.get("errorCode"):
        error = f"{item['errorCode']}: {error}"
    return EmailProblem(
        account_id=_text(item.get("accountId")),
        recipient=_text(item.get("recipient")),
        status=_text(item.get("status")),
        error=_clip(error, _MAX_CAUSE),
        users=tuple(_text(user) for user in item.get("users") or ()),
    )


def _failed_account(row: Any) -> FailedAccount:
    if not isinstance(row, Mapping):
        raise InvalidInput(f"a failed account of the report is not an object: {row!r}")
    return FailedAccount(
        account_id=_text(row.get("accountId")),
        error=_clip(_text(row.get("error")), _MAX_CAUSE),
        cause=_clip(_readable_cause(_text(row.get("cause"))), _MAX_CAUSE),
    )


def _readable_cause(cause: str) -> str:
    """The message of a Lambda error envelope (the cause Step Functions records), else the cause as it is.

    >>> _readable_cause('{"errorType": "KeyRotation.MemberRoleUnavailable", "errorMessage": "cannot assume role"}')
    'cannot assume role'
    >>> _readable_cause("key actions failed in account 111122223333")
    'key actions failed in account 111122223333'
    """
    if not cause.startswith("{"):
        return cause
    try:
        envelope = json.loads(cause)
    except ValueError:
        return cause
    message = envelope.get("errorMessage") if isinstance(envelope, dict) else None
    return message if isinstance(message, str) and message else cause


def _row_order(row: NoticeRow) -> tuple[str, str, str]:
    return row.account_id, row.user_name, row.key_id or ""


# --------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------


def format_day(value: date | datetime | None) -> str:
    """A calendar day as people read it.

    >>> format_day(date(2026, 2, 7))
    '2026-02-07 (Saturday)'
    >>> format_day(None)
    'unknown'
    """
    if value is None:
        return "unknown"
    day = value.date() if isinstance(value, datetime) else value
    return f"{day.isoformat()} ({day.strftime('%A')})"


def format_moment(value: datetime | None) -> str:
    """A moment in UTC, to the minute.

    >>> from datetime import UTC
    >>> format_moment(datetime(2026, 1, 2, 10, 5, 59, tzinfo=UTC))
    '2026-01-02 10:05 UTC'
    """
    if value is None:
        return "unknown"
    return clock.to_iso(value)[:16].replace("T", " ") + " UTC"


class OverrideLoader(BaseLoader):
    """Templates from ``s3://<bucket>/<prefix><name>``; each object is read at most once.

    An object that cannot be used raises ``TemplateNotFound`` (so a
    ``ChoiceLoader`` falls back to the packaged template) and is remembered in
    :attr:`unavailable` with the reason.
    """

    MAX_BYTES = 256 * 1024

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self._sources: dict[str, str | None] = {}
        self.unavailable: dict[str, str] = {}

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        if template not in self._sources:
            source, problem = self._fetch(template)
            self._sources[template] = source
            if problem is not None:
                self.unavailable[template] = f"{self.location(template)}: {problem}"
        source = self._sources[template]
        if source is None:
            raise TemplateNotFound(template)
        return source, self.location(template), lambda: True

    def _fetch(self, name: str) -> tuple[str | None, str | None]:
        """(the template's text, None), or (None, why the object cannot be used)."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=f"{self.prefix}{name}")
            if int(response.get("ContentLength") or 0) > self.MAX_BYTES:
                return None, f"larger than {self.MAX_BYTES // 1024} KiB"
            data = response["Body"].read()
        except ClientError as error:
            return None, _s3_problem(error)
        except (ConnectionError, HTTPClientError) as error:
            return None, f"S3 could not be reached ({type(error).__name__})"
        try:
            return str(data.decode("utf-8")), None
        except UnicodeDecodeError:
            return None, "not UTF-8 text"


def _s3_problem(error: ClientError) -> str:
    code = error_code(error)
    if code in ("NoSuchKey", "404", "NotFound"):
        return "no such object"
    if code in ("AccessDenied", "403"):
        return "access denied (a missing object reads as AccessDenied without s3:ListBucket)"
    return f"S3 error {code or 'unknown'}"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    fallbacks: tuple[TemplateFallback, ...] = ()


def _environment(loader: BaseLoader) -> Environment:
    """A sandboxed environment: overrides are code from a bucket, and get no access to Python internals."""
    environment = ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["day"] = format_day
    environment.filters["moment"] = format_moment
    return environment


class Renderer:
    """Renders the HTML and text versions of an email, S3 override first, packaged template as fallback.

    >>> from pathlib import Path
    >>> renderer = Renderer(Path("templates"))           # doctest: +SKIP
    >>> renderer.render_digest(digest, guide).subject      # doctest: +SKIP
    'IAM access key changes in AWS account prod (111122223333)'
    """

    def __init__(self, packaged: Path, overrides: OverrideLoader | None = None) -> None:
        self.packaged_dir = packaged
        self._packaged = _environment(FileSystemLoader(str(packaged)))
        self._overrides = overrides
        self._with_overrides = (
            _environment(ChoiceLoader([overrides, FileSystemLoader(str(packaged))])) if overrides else None
        )

    def render(self, kind: str, subject: str, context: Mapping[str, Any]) -> RenderedEmail:
        if kind not in TEMPLATE_KINDS:
            raise ValueError(f"no template kind {kind!r}")
        context = {"product": PRODUCT, **context}
        parts: dict[str, str] = {}
        fallbacks: list[TemplateFallback] = []
        for fmt in FORMATS:
            name = f"{kind}.{fmt}.j2"
            parts[fmt], failure = self._render_one(name, context)
            if failure:
                fallbacks.append(failure)
        if self._overrides:
            fallbacks += [
                TemplateFallback(name, reason) for name, reason in sorted(self._overrides.unavailable.items())
            ]
        return RenderedEmail(subject=subject, html=parts["html"], text=parts["txt"], fallbacks=tuple(fallbacks))

    def _render_one(self, name: str, context: Mapping[str, Any]) -> tuple[str, TemplateFallback | None]:
        if self._with_overrides is None:
            return self._packaged.get_template(name).render(context), None
        try:
            return self._with_overrides.get_template(name).render(context), None
        except Exception as error:  # noqa: BLE001 - an override is foreign code: any failure means "use ours"
            failure = TemplateFallback(name, _describe_template_error(error))
            logger.warning(
                "template override failed; packaged template used", extra={"template": name, "reason": failure.reason}
            )
            return self._packaged.get_template(name).render(context), failure

    def render_digest(self, digest: Digest, guide: Guide) -> RenderedEmail:
        context = {"digest": digest, "guide": guide, "preview": digest.preview, "run_id": digest.run_id}
        return self.render(DIGEST, digest_subject(digest), context)

    def render_run_report(self, report: RunReport) -> RenderedEmail:
        """The report lists its own template fallbacks too: it is rendered again when there were some."""
        context = {"report": report, "preview": report.preview, "run_id": report.run_id}
        rendered = self.render(RUN_REPORT, run_report_subject(report), context)
        if not rendered.fallbacks:
            return rendered
        report = report.with_fallbacks(rendered.fallbacks)
        return self.render(RUN_REPORT, run_report_subject(report), {**context, "report": report})


def _describe_template_error(error: Exception) -> str:
    if isinstance(error, TemplateSyntaxError):
        where = error.filename or error.name or "template"
        return _clip(f"syntax error in {where}, line {error.lineno}: {error.message}", 300)
    if isinstance(error, TemplateNotFound):
        return _clip(f"template {error.name} not found", 300)
    return _clip(f"{type(error).__name__}: {error}", 300)


def _header(text: str) -> str:
    """One line, no control characters, at most 200 characters: safe for a Subject."""
    return _clip(" ".join(text.split()), 200)


def _account_label(account: Account) -> str:
    return f"{account.name} ({account.account_id})" if account.name else account.account_id


def digest_subject(digest: Digest) -> str:
    """
    >>> account = Account("111122223333", "prod", "aws@example.com")
    >>> digest_subject(Digest("a@example.com", account, "run-1", preview=True))
    '[PREVIEW] IAM access key changes that would be made in AWS account prod (111122223333)'
    """
    if digest.preview:
        return _header(
            f"[PREVIEW] IAM access key changes that would be made in AWS account {_account_label(digest.account)}"
        )
    return _header(f"IAM access key changes in AWS account {_account_label(digest.account)}")


def run_report_subject(report: RunReport) -> str:
    """
    >>> report = build_run_report(Run("run-1", False), {"accounts": {"total": 3, "failed": 1}}, None, [])
    >>> run_report_subject(report)
    '1 of 3 accounts failed in IAM access key rotation run run-1'
    """
    prefix = "[PREVIEW] " if report.preview else ""
    total, failed = report.accounts["total"], report.accounts["failed"]
    outcome = f"{failed} of {total} accounts failed" if failed else f"All {total} accounts succeeded"
    return _header(f"{prefix}{outcome} in IAM access key rotation run {report.run_id}")


# --------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SendFailure:
    """Why SES did not take a message. ``transient``: a later attempt may succeed."""

    code: str
    message: str
    transient: bool
    throttled: bool = False


def classify(error: ClientError) -> SendFailure:
    """Transient (throttling, 5xx) or permanent (everything else: rejected, unverified sender, quota).

    >>> rejected = ClientError({"Error": {"Code": "MessageRejected", "Message": "Email address is not verified."}},
    ...                        "SendRawEmail")
    >>> classify(rejected).transient
    False
    >>> throttled = ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
    ...                         "SendRawEmail")
    >>> classify(throttled).transient, classify(throttled).throttled
    (True, True)
    """
    code = error_code(error)
    message = _clip(str(error.response.get("Error", {}).get("Message", "")), 500)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in THROTTLING_CODES:
        # A spent daily quota does not come back within the state machine's retries.
        daily = "daily" in message.lower()
        return SendFailure(code, message, transient=not daily, throttled=not daily)
    if code in TRANSIENT_CODES or status >= 500:
        return SendFailure(code or str(status), message, transient=True)
    return SendFailure(code or str(status), message, transient=False)


def compose(sender: str, recipient: str, email: RenderedEmail, reply_to: str | None = None) -> bytes:
    """One MIME message: plain text, with the HTML as its alternative, both UTF-8."""
    message = EmailMessage()
    message["Subject"] = _header(email.subject)
    message["From"] = formataddr((PRODUCT, sender))
    message["To"] = recipient
    if reply_to:
        message["Reply-To"] = reply_to
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(email.text, charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message.as_bytes(policy=SMTP)


@dataclass(frozen=True)
class SendResult:
    message_id: str | None = None
    failure: SendFailure | None = None


class Mailer:
    """Sends through SES ``SendRawEmail`` from the verified ``sender``, one recipient per message."""

    def __init__(self, ses: Any, sender: str, reply_to: str | None = None) -> None:
        self._ses = ses
        self.sender = sender
        self.reply_to = reply_to

    def send(self, recipient: str, email: RenderedEmail) -> SendResult:
        raw = compose(self.sender, recipient, email, self.reply_to)
        try:
            response = self._ses.send_raw_email(Source=self.sender, RawMessage={"Data": raw})
        except ClientError as error:
            return SendResult(failure=classify(error))
        except (ConnectionError, HTTPClientError) as error:
            return SendResult(failure=SendFailure(type(error).__name__, "SES could not be reached", transient=True))
        return SendResult(message_id=str(response["MessageId"]))


# --------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one invocation did. ``retry``: transient failures the state machine should retry."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0
    fallbacks: int = 0
    retry: list[SendFailure] = field(default_factory=list)

    def to_json(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "skipped": self.skipped, "invalid": self.invalid}

    def count_failure(self, failure: SendFailure) -> None:
        self.failed += 1
        if failure.transient:
            self.retry.append(failure)

    def raise_if_retry_needed(self) -> None:
        """Raise the error the state machine retries on, when a transient failure is left."""
        if not self.retry:
            return
        codes = ", ".join(sorted({failure.code for failure in self.retry}))
        message = f"{len(self.retry)} email(s) not sent yet ({codes}); the others were sent or recorded"
        if any(failure.throttled for failure in self.retry):
            raise Throttled(message)
        raise TransientAwsError(message)


@dataclass(frozen=True)
class Notifier:
    """Renders, sends and records the emails. ``mailer`` None: SenderEmail is empty, nothing is sent."""

    ledger: Ledger
    renderer: Renderer
    mailer: Mailer | None

    def notify_account(self, account: Account, run: Run, guide: Guide) -> Outcome:
        """Send each person of ``account`` their digest for ``run``, at most once, and record it.

        People whose digest the ledger already records as sent for this run are
        skipped (a retried or replayed invocation). Without a mailer every digest
        is still rendered, and recorded ``not-configured``. Once a digest that
        warns (disable soon, exemption expiring) is sent in a real run, the
        warning is marked in the user's delivery record so the policy does not
        repeat it.
        """
        items = self.ledger.run_items(run.run_id, account.account_id)
        delivered = {
            _text(item.get("recipient"))
            for item in items
            if item.get("kind") == "email" and item.get("status") in DELIVERED
        }
        plan = build_digests(items, account, run, guide)
        outcome = Outcome()
        for problem in plan.unreachable:
            self._record(
                run.run_id,
                account.account_id,
                problem.address or "-",
                EmailStatus.INVALID_ADDRESS,
                users=list(problem.users),
                error=problem.reason,
            )
            logger.warning(
                "not an email address", extra={"account_id": account.account_id, "users": list(problem.users)}
            )
            outcome.invalid += 1
        for digest in plan.digests:
            if digest.recipient in delivered:
                self._remember_warnings(digest)
                logger.info("digest already sent in this run", extra=_log_fields(digest))
                outcome.skipped += 1
            else:
                self._send_digest(digest, guide, outcome)
        return outcome

    def send_run_report(
        self,
        run: Run,
        summary: Mapping[str, Any],
        replay_input: Any,
        *,
        recipient: str | None,
        started_at: str | None = None,
    ) -> Outcome:
        """Send the security team the run's report: one per invocation, as each execution has its own."""
        if recipient is None or self.mailer is None:
            logger.info("run report not sent: SecurityTeamEmail or SenderEmail is empty")
            return Outcome(skipped=1)
        report = build_run_report(run, summary, replay_input, self.ledger.run_items(run.run_id), started_at=started_at)
        email = self.renderer.render_run_report(report)
        result = self.mailer.send(recipient, email)
        outcome = Outcome(fallbacks=len(email.fallbacks))
        if result.failure is None:
            logger.info("run report sent", extra={"recipient": recipient, "message_id": result.message_id})
            outcome.sent = 1
            return outcome
        failure = result.failure
        logger.error(
            "run report not sent",
            extra={
                "recipient": recipient,
                "error_code": failure.code,
                "error": failure.message,
                "transient": failure.transient,
            },
        )
        outcome.count_failure(failure)
        return outcome

    def _send_digest(self, digest: Digest, guide: Guide, outcome: Outcome) -> None:
        email = self.renderer.render_digest(digest, guide)
        outcome.fallbacks += len(email.fallbacks)
        details: dict[str, Any] = {
            "users": digest.user_names,
            "events": digest.counts,
            "dryRun": digest.preview,
            "templateFallbacks": [{"template": f.template, "reason": f.reason} for f in email.fallbacks] or None,
        }
        run_id, account_id = digest.run_id, digest.account.account_id
        if self.mailer is None:
            self._record(run_id, account_id, digest.recipient, EmailStatus.NOT_CONFIGURED, **details)
            logger.info("digest not sent: SenderEmail is empty", extra=_log_fields(digest))
            outcome.skipped += 1
            return
        result = self.mailer.send(digest.recipient, email)
        if result.failure is not None:
            failure = result.failure
            self._record(
                run_id,
                account_id,
                digest.recipient,
                EmailStatus.FAILED,
                errorCode=failure.code,
                error=failure.message,
                transient=failure.transient,
                **details,
            )
            logger.warning(
                "digest not sent",
                extra={**_log_fields(digest), "error_code": failure.code, "transient": failure.transient},
            )
            outcome.count_failure(failure)
            return
        status = EmailStatus.PREVIEW if digest.preview else EmailStatus.SENT
        self._record(
            run_id,
            account_id,
            digest.recipient,
            status,
            messageId=result.message_id,
            sentAt=clock.to_iso(clock.now()),
            **details,
        )
        self._remember_warnings(digest)
        logger.info("digest sent", extra={**_log_fields(digest), "message_id": result.message_id})
        outcome.sent += 1

    def _remember_warnings(self, digest: Digest) -> None:
        if digest.preview:
            return
        for user_name, marks in digest.warned_marks().items():
            self.ledger.record_warned(digest.account.account_id, user_name, marks)

    def _record(self, run_id: str, account_id: str, recipient: str, status: EmailStatus, **fields: Any) -> None:
        self.ledger.record_email(run_id, account_id, recipient, status=status.value, **fields)


def _log_fields(digest: Digest) -> dict[str, Any]:
    """What a log line says about a digest: who and which users and keys, never its text."""
    return {
        "account_id": digest.account.account_id,
        "recipient": digest.recipient,
        "users": digest.user_names,
        "key_ids": digest.key_ids,
        "events": digest.counts,
    }


__all__ = [
    "Blocked",
    "Capped",
    "Digest",
    "DigestPlan",
    "DisableSoon",
    "EmailStatus",
    "ExemptionExpiring",
    "Guide",
    "KeyChange",
    "Mailer",
    "Notifier",
    "NotifySettings",
    "Outcome",
    "OverrideLoader",
    "RenderedEmail",
    "Renderer",
    "Rotation",
    "RunReport",
    "SendFailure",
    "TemplateFallback",
    "build_digests",
    "build_run_report",
    "classify",
    "compose",
    "normalize_address",
    "read_secret_command",
]
