"""Every key action, published as an EventBridge event on the default bus of the stack's account.

Teams wire their own pickup to these events (a rule on the default bus whose
target updates a CI system's stored credential, restarts a service, or tells
a chat channel). The Notify function publishes them, once per account and run,
from the run's ledger records of that account (those it reads for the
digests), in a real run only: a dry run changes no key, and publishes nothing.

Every event has ``source`` :data:`SOURCE` and one of the detail-types of
:data:`DETAIL_TYPES`; its ``detail`` holds the account (id and name), the user,
the key ids, the secret's ARN and name, dates and the run id, never a secret
(a ledger item never holds one). ``detail.eventId`` is the same each time the
same action of the same run is published: a retried Notify publishes the
account's events again, and a consumer drops one it has seen.

Example:
    >>> from keyrotation.events import Account, Run
    >>> from keyrotation.ledger_records import run_records
    >>> items = run_records([{"kind": "action", "type": "disable", "status": "done", "userName": "alice",
    ...     "keyId": "AKIAOLD", "reason": "Replaced 15 days ago.", "updatedAt": "2026-01-15T06:00:09Z"}])
    >>> (event,) = key_events(items, Account("111122223333", "prod", "aws@example.com"), Run("run-1", False))
    >>> event.detail_type, event.detail["keyId"], event.detail["account"]
    ('Access Key Disabled', 'AKIAOLD', {'id': '111122223333', 'name': 'prod'})
    >>> key_events(items, Account("111122223333", "prod", ""), Run("run-1", True))  # a dry run: nothing
    []
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keyrotation.aws import THROTTLING_CODES, TRANSIENT_CODES, translate_errors
from keyrotation.errors import EventsNotPublished, Throttled, TransientAwsError
from keyrotation.events import Account, Run
from keyrotation.ledger_records import ActionRecord, ActionStatus, NoticeRecord, RunRecord
from keyrotation.model import ActionType, NoticeKind
from keyrotation.observability import logger

#: The ``source`` of every event this product publishes.
SOURCE = "iam-key-rotation"

#: The ``detail-type`` of each kind of event, by what happened.
DETAIL_TYPES = {
    "rotated": "Access Key Rotated",
    "disabled": "Access Key Disabled",
    "deleted": "Access Key Deleted",
    "blocked": "Key Rotation Blocked",
    "warning": "Access Key Rotation Warning",
}

#: PutEvents takes at most 10 entries, and at most 256 KiB in all, per call.
MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 256 * 1024
#: A text field (a reason, a notice's detail) is cut to this many characters: an event stays small.
MAX_TEXT = 2000
#: Entries PutEvents did not take are sent again this many times in the invocation, then the state machine's
#: Retry takes over (for throttling or an internal failure) or the account's notify error is recorded.
ATTEMPTS = 3

_ACTIONS = {
    ActionType.ROTATE: "rotated",
    ActionType.DISABLE: "disabled",
    ActionType.DELETE: "deleted",
}
_WARNINGS = (NoticeKind.DISABLE_SOON, NoticeKind.EXEMPTION_EXPIRING)
_TRANSIENT_ENTRY_CODES = TRANSIENT_CODES | THROTTLING_CODES | {"InternalException"}


@dataclass(frozen=True)
class KeyEvent:
    """One event: its detail-type and its detail (JSON-able, no secret)."""

    detail_type: str
    detail: dict[str, Any]

    def entry(self, bus_arn: str) -> dict[str, Any]:
        """The PutEvents entry for the bus ``bus_arn``; its resource is the user's secret, when it has one."""
        entry: dict[str, Any] = {
            "Source": SOURCE,
            "DetailType": self.detail_type,
            "Detail": json.dumps(self.detail, sort_keys=True, separators=(",", ":")),
            "EventBusName": bus_arn,
        }
        if self.detail.get("secretArn"):
            entry["Resources"] = [self.detail["secretArn"]]
        return entry


def key_events(records: Iterable[RunRecord], account: Account, run: Run) -> list[KeyEvent]:
    """The events of one account's ledger records of a run: what was done, blocked or warned. None in a dry run."""
    if run.dry_run:
        return []
    found = []
    for record in records:
        if not isinstance(record, ActionRecord | NoticeRecord):
            continue
        what = _what(record)
        if what is not None:
            found.append(KeyEvent(DETAIL_TYPES[what], _detail(what, record, account, run)))
    return sorted(found, key=lambda event: str(event.detail["eventId"]))


def _what(record: ActionRecord | NoticeRecord) -> str | None:
    if record.dry_run:
        return None
    if isinstance(record, ActionRecord):
        return _ACTIONS.get(record.type) if record.status is ActionStatus.DONE else None
    if record.type is NoticeKind.BLOCKED:
        return "blocked"
    if record.type in _WARNINGS:
        return "warning"
    return None


def event_id(run_id: str, account_id: str, kind: str, user_name: str, key_id: str) -> str:
    """The same for the same action (or notice) of the same run, whoever publishes it and how often.

    >>> event_id("run-1", "111122223333", "disable", "alice", "AKIAOLD") == event_id(
    ...     "run-1", "111122223333", "disable", "alice", "AKIAOLD")
    True
    """
    text = "\n".join((run_id, account_id, kind, user_name, key_id))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _detail(what: str, record: ActionRecord | NoticeRecord, account: Account, run: Run) -> dict[str, Any]:
    kind, user_name, key_id = record.type.value, record.user_name, _text(record.key_id)
    detail: dict[str, Any] = {
        "eventId": event_id(run.run_id, account.account_id, kind, user_name, key_id),
        "runId": run.run_id,
        "account": {"id": account.account_id, "name": account.name},
        "userName": user_name,
        "keyId": key_id or None,
        "time": record.updated_at,
    }
    if isinstance(record, ActionRecord):
        if what == "rotated":
            detail.update(
                newKeyId=record.new_key_id,
                secretArn=record.secret_arn,
                secretName=record.secret_name,
                oldKeyDisableOn=record.disable_on,
                oldKeyDeleteOn=record.delete_on,
            )
        detail["reason"] = _clip(record.reason)
        return detail
    detail["detail"] = _clip(record.detail)
    if what == "blocked":
        detail["retryOn"] = record.due  # null: nothing changes until a person acts
    if what == "warning":
        detail["warning"] = kind
        detail["disableOn" if record.type is NoticeKind.DISABLE_SOON else "exemptUntil"] = record.due
    return detail


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _clip(value: Any) -> str:
    text = _text(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class Publisher:
    """PutEvents to the default bus of the stack's account (``bus_arn``), batched and checked.

    Example (as the notify function wires it):
        >>> Publisher(client("events"), config.event_bus_arn()).publish(events)  # doctest: +SKIP
        3
    """

    events_client: Any
    bus_arn: str
    pause_seconds: float = 0.2

    def publish(self, events: Sequence[KeyEvent]) -> int:
        """Publish ``events``; returns how many. Raises when some are still not taken after :data:`ATTEMPTS`.

        Entries PutEvents did not take (``FailedEntryCount``) are sent again; what is left then raises
        ``KeyRotation.Throttled`` or ``KeyRotation.TransientAwsError`` (the state machine retries Notify,
        which skips the digests already sent and publishes the account's events again, with the same
        ``eventId``), or ``KeyRotation.EventsNotPublished`` for an error that a retry would not cure.
        """
        for batch in _batches([event.entry(self.bus_arn) for event in events]):
            self._put(batch)
        if events:
            logger.info("key events published", extra={"events": len(events), "bus": self.bus_arn})
        return len(events)

    def _put(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        codes: set[str] = set()
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(self.pause_seconds * attempt)
            with translate_errors():
                response = self.events_client.put_events(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            results = response.get("Entries") or []
            failed = [
                (entry, result) for entry, result in zip(pending, results, strict=False) if result.get("ErrorCode")
            ]
            codes = {str(result.get("ErrorCode")) for _, result in failed}
            pending = [entry for entry, _ in failed]
            logger.warning("PutEvents did not take some events", extra={"failed": len(pending), "codes": sorted(codes)})
            if not pending or not codes <= _TRANSIENT_ENTRY_CODES:
                break
        if not pending:
            return
        message = f"{len(pending)} key events not published to {self.bus_arn} ({', '.join(sorted(codes))})"
        if codes <= THROTTLING_CODES:
            raise Throttled(message)
        if codes <= _TRANSIENT_ENTRY_CODES:
            raise TransientAwsError(message)
        raise EventsNotPublished(message)


def _batches(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """At most :data:`MAX_ENTRIES_PER_CALL` entries and :data:`MAX_BYTES_PER_CALL` bytes per call."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = _size(entry)
        if batch and (len(batch) == MAX_ENTRIES_PER_CALL or size + entry_size > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch


def _size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it (its fields' UTF-8 bytes, and 14 for the time), rounded up."""
    counted = [entry["Source"], entry["DetailType"], entry["Detail"], *entry.get("Resources", [])]
    return 14 + sum(len(str(text).encode("utf-8")) for text in counted)
