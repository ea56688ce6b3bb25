"""The small JSON documents the state machine passes to the functions.

``run``:     ``{"runId", "dryRun", "startedAt", "maxConcurrency", "expiresAt"}``, and ``"replayOf"`` in a compact
replay (made by list_accounts)
``account``: ``{"id", "name", "email"}`` (one item of the run's account list)
``action``:  ``{"type", "userName", "keyId", "reason"}`` (planned by audit_keys)
``created``: ``{"newKeyId", "versionId", "userId", "secretArn", "status"}`` and ``"current"`` when known (returned
by create_key)
``execution``: ``{"name", "startTime", "stateMachineArn"}`` (the execution, given to list_accounts)
``accounts``: ``{"bucket", "key", "count"}`` (where list_accounts wrote the run's account list)
``report``: ``{"runId", "accounts", "keys", "failedAccounts", "notices"}`` (the run's summary, made by summarize),
sent with ``replayInput`` (the execution input that replays the failed accounts)
``report.failure``: ``{"state", "error", "cause"}`` (instead of the counts: the step that failed the run before or
after its accounts, ListAccounts or Summarize; the ASL's DescribeStartFailure and DescribeSummarizeFailure)

None of them ever holds a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyrotation.errors import InvalidInput
from keyrotation.ids import is_account_id
from keyrotation.model import Action


def _field(document: Any, name: str, where: str) -> Any:
    if not isinstance(document, dict) or name not in document:
        raise InvalidInput(f"{where} has no {name!r}")
    return document[name]


@dataclass(frozen=True)
class Run:
    """The run; ``replay_of``: the run whose failed accounts this one runs again (a ``{"replayOf"}`` input)."""

    run_id: str
    dry_run: bool
    replay_of: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Run:
        run = _field(event, "run", "event")
        replay_of = run.get("replayOf")
        return cls(
            run_id=str(_field(run, "runId", "run")),
            dry_run=bool(_field(run, "dryRun", "run")),
            replay_of=str(replay_of) if replay_of else None,
        )


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    email: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Account:
        account = _field(event, "account", "event")
        account_id = str(_field(account, "id", "account"))
        if not is_account_id(account_id):
            raise InvalidInput(f"account id {account_id!r} is not 12 digits")
        return cls(account_id=account_id, name=str(account.get("name", "")), email=str(account.get("email", "")))

    def to_json(self) -> dict[str, str]:
        return {"id": self.account_id, "name": self.name, "email": self.email}


def action_from_event(event: dict[str, Any]) -> Action:
    try:
        return Action.from_json(_field(event, "action", "event"))
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidInput(f"malformed action: {error}") from None


def execution_input(event: dict[str, Any]) -> Any:
    """The execution input handed to ListAccounts, as given: ``null`` stays ``None``, for the caller to refuse."""
    return _field(event, "input", "event")


@dataclass(frozen=True)
class Execution:
    name: str
    start_time: str
    state_machine_arn: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Execution:
        execution = _field(event, "execution", "event")
        return cls(
            name=str(_field(execution, "name", "execution")),
            start_time=str(_field(execution, "startTime", "execution")),
            state_machine_arn=str(_field(execution, "stateMachineArn", "execution")),
        )


@dataclass(frozen=True)
class Listing:
    bucket: str
    key: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Listing:
        listing = _field(event, "accounts", "event")
        return cls(bucket=str(_field(listing, "bucket", "accounts")), key=str(_field(listing, "key", "accounts")))


@dataclass(frozen=True)
class Created:
    """What CreateKey made, for the rotation's next steps: ids only.

    ``user_id`` and ``secret_arn`` are what CreateKey read and checked (the user's IAM unique id, the
    secret the product created for that user): the next steps use them instead of reading them again.
    They may be absent (an event from before they were added): verify_key and store_secret then refuse it,
    and the state machine discards the key.

    ``current``: where ``AWSCURRENT`` was when CreateKey wrote the new version: ``"new"`` (Secrets Manager made
    the secret's first version current), ``"old"`` (on the version of the key being rotated,
    :func:`keyrotation.secrets.version_for`), or None (elsewhere, or not known): store_secret then reads it.
    """

    new_key_id: str
    version_id: str
    user_id: str | None = None
    secret_arn: str | None = None
    current: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any], name: str = "created") -> Created:
        created = _field(event, name, "event")
        user_id, secret_arn, current = created.get("userId"), created.get("secretArn"), created.get("current")
        return cls(
            new_key_id=str(_field(created, "newKeyId", name)),
            version_id=str(_field(created, "versionId", name)),
            user_id=str(user_id) if user_id else None,
            secret_arn=str(secret_arn) if secret_arn else None,
            current=current if current in ("new", "old") else None,
        )


@dataclass(frozen=True)
class Report:
    """The run report's content: the run's summary, the input replaying its failed accounts, when the run began.

    >>> event = {"run": {"runId": "r", "dryRun": False, "startedAt": "2026-01-15T06:00:00Z"}, "report": {}}
    >>> Report.from_event(event).started_at
    '2026-01-15T06:00:00Z'
    >>> Report.from_event({"run": {"runId": "r", "dryRun": False}, "report": "everything failed"})
    Traceback (most recent call last):
    ...
    keyrotation.errors.InvalidInput: event's 'report' is not an object
    """

    summary: dict[str, Any]
    replay_input: Any
    started_at: str | None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Report:
        summary = _field(event, "report", "event")
        if not isinstance(summary, dict):
            raise InvalidInput("event's 'report' is not an object")
        run = _field(event, "run", "event")
        started_at = run.get("startedAt") if isinstance(run, dict) else None
        return cls(summary=summary, replay_input=event.get("replayInput"), started_at=started_at)


@dataclass(frozen=True)
class RunFailure:
    """A step that failed the run before or after its accounts (ListAccounts, Summarize), and its error.

    ``dry_run`` is the run's, when the run got far enough to have one (else None: ListAccounts failed).

    >>> failure = {"state": "ListAccounts", "error": "KeyRotation.InvalidInput", "cause": "null"}
    >>> event = {"run": {"runId": "r", "startedAt": "2026-01-15T06:00:00Z"}, "report": {"failure": failure}}
    >>> failure = RunFailure.from_event(event)
    >>> failure.state, failure.error, failure.run_id, failure.dry_run
    ('ListAccounts', 'KeyRotation.InvalidInput', 'r', None)
    """

    run_id: str
    dry_run: bool | None
    started_at: str | None
    state: str
    error: str
    cause: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> RunFailure:
        run, failure = _field(event, "run", "event"), _field(_field(event, "report", "event"), "failure", "report")
        dry_run = run.get("dryRun") if isinstance(run, dict) else None
        return cls(
            run_id=str(_field(run, "runId", "run")),
            dry_run=dry_run if isinstance(dry_run, bool) else None,
            started_at=run.get("startedAt"),
            state=str(_field(failure, "state", "failure")),
            error=str(_field(failure, "error", "failure")),
            cause=str(failure.get("cause") or ""),
        )
