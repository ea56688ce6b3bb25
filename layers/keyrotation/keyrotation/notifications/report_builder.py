"""The run report, gathered from the summarize function's output and every ledger item of the run.

Counts come from the summary; the lists (deferred actions, keys re-enabled
by a person, exempt users, invalid exemption tags, users blocked until a
person acts, digests not delivered, keys disabled before their owner could be
told, template fallbacks) from the ledger.
Pure: no AWS call.

Example:
    >>> from keyrotation.events import Run
    >>> from keyrotation.ledger_records import EmailRecord, EmailStatus
    >>> records = [EmailRecord("111122223333", "a@example.com", EmailStatus.FAILED, error="not verified",
    ...                        error_code="MessageRejected")]
    >>> report = build_run_report(Run("run-1", False), {"accounts": {"total": 1, "succeeded": 1}}, None, records)
    >>> report.accounts, report.emails["failed"], report.notification_problems.shown[0].error
    ({'total': 1, 'succeeded': 1, 'failed': 0}, 1, 'MessageRejected: not verified')
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keyrotation.errors import InvalidInput
from keyrotation.events import Run, RunFailure
from keyrotation.ledger_records import ActionRecord, ActionStatus, EmailRecord, NoticeRecord, RunRecord
from keyrotation.model import ActionType, NoticeKind
from keyrotation.notifications.report import (
    REPORT_LIST_LIMIT,
    ActionRow,
    Capped,
    EmailProblem,
    FailedAccount,
    FallbackCount,
    NoticeRow,
    ReportFiles,
    RunReport,
    StepFailure,
)
from keyrotation.notifications.status import DELIVERED, EmailStatus
from keyrotation.notifications.values import as_day, as_moment, as_text, clip
from keyrotation.reports import BLOCKED, action_rows
from keyrotation.summary import key_counts

_MAX_CAUSE = 2000
_MAX_REPLAY_INPUT = 200_000
_WAITING = "blocked until a person acts"


def build_run_report(
    run: Run,
    summary: Mapping[str, Any],
    replay_input: Any,
    records: Iterable[RunRecord],
    *,
    started_at: str | None = None,
    limit: int = REPORT_LIST_LIMIT,
    failure: RunFailure | None = None,
) -> RunReport:
    """The security team's report: the summary's counts, plus what the run's ledger items tell.

    ``summary`` is the summarize function's output (``accounts``, ``keys``,
    ``failedAccounts``, ``notices``); ``records`` are every ledger record of the run.
    Each list keeps at most ``limit`` rows and counts the rest. ``failure``: the step that failed the
    run before or after its accounts (``summary`` is then empty, or what there was).
    """
    if not isinstance(summary, Mapping):
        raise InvalidInput("the run report's 'report' is not an object")
    notices: dict[str, list[NoticeRow]] = {
        "deferred": [],
        "reenabled": [],
        "exempt": [],
        "invalid-tag": [],
        _WAITING: [],
    }
    records = list(records)
    problems: list[EmailProblem] = []
    untold: list[NoticeRow] = []
    emails: Counter[str] = Counter()
    fallbacks: Counter[tuple[str, str]] = Counter()
    for record in records:
        if isinstance(record, NoticeRecord) and record.type.value in notices:
            notices[record.type.value].append(_notice_row(record))
        elif isinstance(record, NoticeRecord) and record.type is NoticeKind.BLOCKED and not record.due:
            notices[_WAITING].append(_notice_row(record))  # no date: it does not clear by itself
        elif isinstance(record, ActionRecord) and record.owner_not_told and _disabled(record):
            untold.append(_untold_row(record))
        elif isinstance(record, EmailRecord):
            emails[record.status.value] += 1
            if record.status not in DELIVERED:
                problems.append(_email_problem(record))
            for template, reason in record.template_fallbacks:
                fallbacks[(template, reason)] += 1
    rows = [ActionRow(**_action_row_fields(row)) for row in action_rows(records, {})]
    replay_text = json.dumps(replay_input, indent=2, sort_keys=True, default=str) if replay_input else ""
    listed = {kind: Capped.of(sorted(rows, key=_row_order), limit) for kind, rows in notices.items()}
    return RunReport(
        run_id=run.run_id,
        preview=run.dry_run,
        started_at=as_moment(started_at),
        accounts=_counts(summary, "accounts", ("total", "succeeded", "failed")),
        keys={name: _count(count) for name, count in key_counts(dict(summary)).items()},
        notices={str(kind): _count(count) for kind, count in sorted((summary.get("notices") or {}).items())},
        emails={status.value: emails.get(status.value, 0) for status in EmailStatus},
        failed_accounts=Capped.of((_failed_account(row) for row in summary.get("failedAccounts") or ()), limit),
        replay_input=replay_text if len(replay_text) <= _MAX_REPLAY_INPUT else None,
        replay_input_chars=len(replay_text),
        deferred=listed["deferred"],
        reenabled=listed["reenabled"],
        exempt=listed["exempt"],
        invalid_tags=listed["invalid-tag"],
        waiting_for_a_person=listed[_WAITING],
        notification_problems=Capped.of(sorted(problems, key=lambda row: (row.account_id, row.recipient)), limit),
        template_fallbacks=tuple(
            FallbackCount(template, reason, count) for (template, reason), count in sorted(fallbacks.items())
        ),
        untold=Capped.of(sorted(untold, key=_row_order), limit),
        replay_of=run.replay_of or (clip(as_text(summary.get("replayOf")), 200) or None),
        failure=_step_failure(failure) if failure else None,
        actions=Capped.of((row for row in rows if row.action != BLOCKED), limit),
        blocked=Capped.of((row for row in rows if row.action == BLOCKED), limit),
        files=_files(summary.get("reports")),
    )


def _action_row_fields(row: Mapping[str, str]) -> dict[str, str]:
    return {
        "account_id": row["accountId"],
        "account_name": clip(row["accountName"], 200),
        "user_name": row["userName"],
        "key_id": row["keyId"],
        "action": row["action"],
        "result": row["result"],
        "reason": clip(row["reason"], 300),
        "error": clip(row["error"], 200),
    }


def _files(reports: Any) -> ReportFiles | None:
    """The summary's ``reports`` (bucket, prefix, keys), or None when it has none."""
    if not isinstance(reports, Mapping) or not reports.get("bucket") or not reports.get("prefix"):
        return None
    return ReportFiles(
        bucket=clip(as_text(reports["bucket"]), 200),
        prefix=clip(as_text(reports["prefix"]), 300),
        keys=tuple(clip(as_text(key), 300) for key in reports.get("keys") or ())[:20],
    )


def _disabled(record: ActionRecord) -> bool:
    return record.type is ActionType.DISABLE and record.status is ActionStatus.DONE


def _untold_row(record: ActionRecord) -> NoticeRow:
    """A key disabled while earlier runs' emails to its owner were still owed."""
    owner = record.owner_email or "the account's email"
    return NoticeRow(
        account_id=record.account_id,
        user_name=record.user_name,
        key_id=record.key_id or None,
        detail=clip(f"owner {owner}; not delivered: the email of run {', '.join(record.owner_not_told)}", 1000),
        due=None,
    )


def _step_failure(failure: RunFailure) -> StepFailure:
    return StepFailure(
        state=failure.state,
        error=clip(failure.error, _MAX_CAUSE),
        cause=clip(_readable_cause(failure.cause), _MAX_CAUSE),
    )


def _counts(summary: Mapping[str, Any], section: str, names: Sequence[str]) -> dict[str, int]:
    """The counts ``names`` of the summary's ``section``; an absent one is 0."""
    counts = summary.get(section) or {}
    return {name: _count(counts.get(name)) for name in names}


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise InvalidInput(f"report count {value!r} is not a number") from None


def _notice_row(record: NoticeRecord) -> NoticeRow:
    return NoticeRow(
        account_id=record.account_id,
        user_name=record.user_name,
        key_id=record.key_id or None,
        detail=record.detail,
        due=as_day(record.due),
    )


def _row_order(row: NoticeRow) -> tuple[str, str, str]:
    return row.account_id, row.user_name, row.key_id or ""


def _email_problem(record: EmailRecord) -> EmailProblem:
    error = f"{record.error_code}: {record.error}" if record.error_code else record.error
    return EmailProblem(
        account_id=record.account_id,
        recipient=record.recipient,
        status=record.status.value,
        error=clip(error, _MAX_CAUSE),
        users=record.users,
    )


def _failed_account(row: Any) -> FailedAccount:
    if not isinstance(row, Mapping):
        raise InvalidInput(f"a failed account of the report is not an object: {row!r}")
    return FailedAccount(
        account_id=as_text(row.get("accountId")),
        error=clip(as_text(row.get("error")), _MAX_CAUSE),
        cause=clip(_readable_cause(as_text(row.get("cause"))), _MAX_CAUSE),
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
