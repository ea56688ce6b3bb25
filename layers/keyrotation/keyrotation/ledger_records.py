"""What a run's ledger items say, as typed records: the item kinds, their statuses, one frozen class per kind.

Every reader of a run (the summary, the reports, the emails, the key events, the CLI) takes these
records, never the stored dicts: :func:`run_record` is the one place an item's fields are picked out
and its ``type`` and ``status`` become enums. :meth:`keyrotation.ledger.Ledger.run_records` reads a
run's items through it. The stored layout is :mod:`keyrotation.ledger`'s (which writes the items);
timestamps stay the ISO 8601 text they are stored as.

    >>> record = run_record({"kind": "action", "accountId": "111122223333", "userName": "alice",
    ...                      "keyId": "AKIAOLD", "type": "disable", "status": "done"})
    >>> record.type, record.status is ActionStatus.DONE, record.dry_run
    (<ActionType.DISABLE: 'disable'>, True, False)
    >>> run_record({"kind": "replay", "accounts": ["111122223333"]}) is None  # not an account's record
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from keyrotation import naming
from keyrotation.model import ActionType, NoticeKind


class RecordKind(str, Enum):
    """The ``kind`` of a ledger item: what it records. Readers compare with these, never with a literal."""

    ACTION = "action"  # one key action of a run
    NOTICE = "notice"  # a warning, exemption, deferral... of a run
    EMAIL = "email"  # one digest of a run: sent, previewed, failed, unchanged...
    REPLAY = "replay"  # a run's failed accounts
    OVERDUE = "overdue"  # an account's Active keys older than 90 days when the run audited it
    PLAN = "plan"  # one action of an account's plan in a run, which the state machine fetches by its number
    #: A user's delivery record: the key it was given, the rotation under way, the disables and re-enables
    #: recorded, the warnings told and the quiet mark (``USER_FACTS`` and the sets beside them).
    DELIVERY = "delivery"
    PREVIEW = "preview"  # what the last dry-run preview mailed to a person about an account said (a fingerprint)
    OWED = "owed"  # in a run: the earlier runs whose notices to a user's person were not delivered
    RUN = "run"  # a run id's identity: the execution (name, start time) that holds it (never expires)
    ACCOUNT = "account"  # an account's result in a run, written by the state machine (Record*Success/Failure)


class ActionStatus(str, Enum):
    """The ``status`` of an action item: how far the run got with that action. Compare with these, never a literal.

    >>> ActionStatus.DONE == "done", ActionStatus("skipped").name
    (True, 'SKIPPED')
    """

    PLANNED = "planned"  # the audit planned it (in a dry run, all that happens)
    APPLYING = "applying"  # the IAM change (disable, delete) is being made
    CREATED = "created"  # the new key exists and its secret holds it as a pending version
    DONE = "done"  # the change was made (a rotation: the new key delivered)
    SKIPPED = "skipped"  # the action's own re-check found nothing to do
    DISCARDED = "discarded"  # a new key its user could not receive was taken back
    FAILED = "failed"  # the action failed (written by the state machine's RecordActionFailure, or a refused delete)


class AccountStatus(str, Enum):
    """The ``status`` of an account's result item, written by the state machine (RecordAccountSuccess/Failure)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class EmailStatus(str, Enum):
    """The ``status`` of a ledger ``email`` item."""

    SENT = "sent"  # SES accepted the digest
    PREVIEW = "preview"  # SES accepted the digest of a dry run
    FAILED = "failed"  # SES refused it (``transient`` says whether a retry may help)
    INVALID_ADDRESS = "invalid-address"  # the address is not one we send to; nothing was sent
    NOT_CONFIGURED = "not-configured"  # SenderEmail is empty: what would have been sent
    UNCHANGED = "unchanged"  # a dry run's preview the same as the last one mailed to this person: not sent again


#: The attribute of a disable action item naming the runs whose notices had not reached the owner when it was planned.
OWNER_NOT_TOLD = "ownerNotTold"


@dataclass(frozen=True)
class ActionRecord:
    """One key action of a run (``ACTION#``), as the audit planned it and the actions (or the ASL) recorded it.

    ``resent_from``: never stored; the run whose record this is, when the notifier carries it into a later digest.
    """

    account_id: str
    user_name: str
    key_id: str
    type: ActionType
    status: ActionStatus
    dry_run: bool = False
    account_name: str = ""
    owner_email: str = ""
    reason: str = ""
    error: str = ""  # a failed action's error name
    cause: str = ""  # and its cause
    new_key_id: str | None = None  # a rotation's new key
    secret_arn: str | None = None
    secret_name: str | None = None
    disable_on: str | None = None  # a rotation's dates for the old key
    delete_on: str | None = None
    owner_not_told: tuple[str, ...] = ()  # the runs whose emails to the owner were owed when a disable was planned
    updated_at: str | None = None
    resent_from: str | None = None
    hints: tuple[tuple[str, str], ...] = ()  # (key id, a way off that long-lived key) of the user's keys
    adoption: Mapping[str, Any] | None = None  # a disable: the user's new key in use? (keyrotation.adoption.uptake)


@dataclass(frozen=True)
class NoticeRecord:
    """Something a run told a person about (``NOTICE#``): a warning, an exemption, a blocked rotation...

    ``resent_from``: never stored; as for :class:`ActionRecord`.
    """

    account_id: str
    user_name: str
    key_id: str | None  # None for a user-level notice
    type: NoticeKind
    detail: str = ""
    due: str | None = None
    dry_run: bool = False
    account_name: str = ""
    owner_email: str = ""
    last_used: str | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None
    key_created: str | None = None
    updated_at: str | None = None
    resent_from: str | None = None
    hints: tuple[tuple[str, str], ...] = ()  # as for ActionRecord
    adoption: Mapping[str, Any] | None = None  # a warning or re-enable: as for ActionRecord


@dataclass(frozen=True)
class EmailRecord:
    """One digest of a run to one person (``EMAIL#``), as the notifier recorded it."""

    account_id: str
    recipient: str
    status: EmailStatus
    error: str = ""
    error_code: str = ""
    users: tuple[str, ...] = ()
    template_fallbacks: tuple[tuple[str, str], ...] = ()  # (template, reason) of each fallback used


@dataclass(frozen=True)
class OverdueRecord:
    """An account's Active keys older than 90 days as the run's audit found them (``OVERDUE``)."""

    account_id: str
    key_ids: tuple[str, ...] = ()
    unread: int = 0  # more of them in users the audit did not read (the credential report has no key ids)


@dataclass(frozen=True)
class OwedRecord:
    """The earlier runs whose notices to a user's person are still owed, as the run's audit copied them (``OWED#``)."""

    account_id: str
    user_name: str
    runs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccountResult:
    """An account's result in a run (``ACCOUNT#<id>``), written by the state machine alone.

    ``status`` is None while only a notify failure is recorded; ``error``/``cause`` None: the item has none.
    """

    account_id: str
    status: AccountStatus | None = None
    error: str | None = None
    cause: str | None = None
    notify_error: str | None = None
    notify_cause: str | None = None


#: A record of one account in a run.
RunRecord = ActionRecord | NoticeRecord | EmailRecord | OverdueRecord | OwedRecord | AccountResult


def run_record(item: Mapping[str, Any]) -> RunRecord | None:
    """The record a run's item holds (deserialized), or None for the run's own items (``RUN``, ``REPLAY``)."""
    kind = item.get("kind")
    if kind == RecordKind.ACTION:
        return _action(item)
    if kind == RecordKind.NOTICE:
        return _notice(item)
    if kind == RecordKind.EMAIL:
        return EmailRecord(
            account_id=_text(item.get("accountId")),
            recipient=_text(item.get("recipient")),
            status=EmailStatus(item["status"]),
            error=_text(item.get("error")),
            error_code=_text(item.get("errorCode")),
            users=tuple(_text(user) for user in item.get("users") or ()),
            template_fallbacks=tuple(
                (_text(fallback.get("template")), _text(fallback.get("reason")))
                for fallback in item.get("templateFallbacks") or ()
            ),
        )
    if kind == RecordKind.OVERDUE:
        return OverdueRecord(
            account_id=_text(item.get("accountId")),
            key_ids=tuple(_text(key_id) for key_id in item.get("keyIds") or ()),
            unread=int(item.get("unread") or 0),
        )
    if kind == RecordKind.OWED:
        return OwedRecord(
            account_id=_text(item.get("accountId")),
            user_name=_text(item.get("userName")),
            runs=frozenset(_text(run) for run in item.get("runs") or ()),
        )
    if kind == RecordKind.ACCOUNT:
        return AccountResult(
            account_id=_text(item.get("accountId")) or _text(item.get("sk")).removeprefix(naming.account_sk("")),
            status=AccountStatus(item["status"]) if item.get("status") else None,
            error=_optional(item.get("error")),
            cause=_optional(item.get("cause")),
            notify_error=_optional(item.get("notifyError")),
            notify_cause=_optional(item.get("notifyCause")),
        )
    return None


def run_records(items: Iterable[Mapping[str, Any]]) -> list[RunRecord]:
    """The records of a run's items, in their order (the run's own items left out)."""
    return [record for record in map(run_record, items) if record is not None]


def _action(item: Mapping[str, Any]) -> ActionRecord:
    return ActionRecord(
        account_id=_text(item.get("accountId")),
        user_name=_text(item.get("userName")),
        key_id=_text(item.get("keyId")),
        type=ActionType(item["type"]),
        status=ActionStatus(item["status"]),
        dry_run=bool(item.get("dryRun")),
        account_name=_text(item.get("accountName")),
        owner_email=_text(item.get("ownerEmail")),
        reason=_text(item.get("reason")),
        error=_text(item.get("error")),
        cause=_text(item.get("cause")),
        new_key_id=_optional(item.get("newKeyId")),
        secret_arn=_optional(item.get("secretArn")),
        secret_name=_optional(item.get("secretName")),
        disable_on=_optional(item.get("disableOn")),
        delete_on=_optional(item.get("deleteOn")),
        owner_not_told=tuple(_text(run) for run in item.get(OWNER_NOT_TOLD) or ()),
        updated_at=_optional(item.get("updatedAt")),
        hints=_hints(item.get("hints")),
        adoption=_mapping(item.get("adoption")),
    )


def _notice(item: Mapping[str, Any]) -> NoticeRecord:
    return NoticeRecord(
        account_id=_text(item.get("accountId")),
        user_name=_text(item.get("userName")),
        key_id=_optional(item.get("keyId")),
        type=NoticeKind(item["type"]),
        detail=_text(item.get("detail")),
        due=_optional(item.get("due")),
        dry_run=bool(item.get("dryRun")),
        account_name=_text(item.get("accountName")),
        owner_email=_text(item.get("ownerEmail")),
        last_used=_optional(item.get("lastUsed")),
        last_used_service=_optional(item.get("lastUsedService")),
        last_used_region=_optional(item.get("lastUsedRegion")),
        key_created=_optional(item.get("keyCreated")),
        updated_at=_optional(item.get("updatedAt")),
        hints=_hints(item.get("hints")),
        adoption=_mapping(item.get("adoption")),
    )


def _hints(value: Any) -> tuple[tuple[str, str], ...]:
    """An item's ``hints`` (``[{"keyId", "hint"}]``, at most a user's two keys); unreadable entries are left out."""
    entries = value if isinstance(value, list) else ()
    return tuple(
        (_text(one["keyId"]), _text(one["hint"]))
        for one in entries
        if isinstance(one, Mapping) and one.get("keyId") and one.get("hint")
    )


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)
