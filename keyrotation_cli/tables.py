"""The commands' tables (rich), one function per table; every value shown is one the ledger or Step Functions holds.

Ids (accounts, keys, runs) are never wrapped, so they can be copied from the terminal.

    >>> Console().print(failures_table(summary["failedAccounts"], "run-1"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.table import Table

from keyrotation.ledger_records import ActionRecord, ActionStatus, NoticeRecord
from keyrotation.model import Delivery
from keyrotation.summary import key_counts
from keyrotation_cli.runs import Execution


def _ids(table: Table, *names: str) -> None:
    for name in names:
        table.add_column(name, no_wrap=True)


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        return moment.replace("T", " ")[:19]
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def readable_cause(cause: Any) -> str:
    """A failure's cause: a Lambda error's message when the cause is the error JSON Step Functions records."""
    text = str(cause or "")
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("errorMessage", text))
        except (json.JSONDecodeError, AttributeError):
            return text
    return text


def summary_table(summary: dict[str, Any], title: str, dry_run: bool) -> Table:
    """One row of counts: accounts, and what was done to keys (or planned, in a dry run)."""
    accounts, keys, notices = summary["accounts"], key_counts(summary), summary["notices"]
    done = ("planned: rotate", "planned: disable", "planned: delete") if dry_run else ("rotated", "disabled", "deleted")
    table = Table(title=title)
    for name in ("accounts", "succeeded", "failed", *done, "warned"):
        table.add_column(name, justify="right")
    for name in ("exempt", "blocked", "deferred"):
        table.add_column(name, justify="right")
    table.add_row(
        *(str(value) for value in (accounts["total"], accounts["succeeded"], accounts["failed"])),
        *(str(keys[name]) for name in ("rotated", "disabled", "deleted", "warned")),
        *(str(notices[name]) for name in ("exempt", "blocked", "deferred")),
    )
    return table


def actions_table(records: Iterable[ActionRecord], title: str) -> Table:
    """Key actions as the ledger records them: account, user, key, action, status, reason (or error)."""
    table = Table(title=title)
    _ids(table, "account", "user", "key")
    for name in ("action", "status", "owner"):
        table.add_column(name)
    table.add_column("reason / error", overflow="fold")
    for record in records:
        table.add_row(
            record.account_id,
            record.user_name,
            record.key_id,
            record.type.value,
            record.status.value,
            record.owner_email,
            _reason(record),
        )
    return table


def _reason(record: ActionRecord) -> str:
    """An action's reason; a failed action's error and cause."""
    if record.status is ActionStatus.FAILED:
        return f"{record.error}: {readable_cause(record.cause)}"
    return record.reason


def notices_table(records: Iterable[NoticeRecord], title: str) -> Table:
    """Notices (warnings, exemptions, blocked or deferred rotations): what people are told, never a change."""
    table = Table(title=title)
    _ids(table, "account", "user", "key")
    table.add_column("notice")
    table.add_column("due", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for record in records:
        key = record.key_id or ""
        table.add_row(
            record.account_id,
            record.user_name,
            "" if key == "-" else key,
            record.type.value,
            _when(record.due),
            record.detail,
        )
    return table


def failures_table(failures: Iterable[dict[str, Any]], run_id: str) -> Table:
    """Failed accounts of a run: account, error name, cause."""
    table = Table(title=f"Failed accounts of {run_id}")
    _ids(table, "account", "error")
    table.add_column("cause", overflow="fold")
    for failure in failures:
        table.add_row(failure["accountId"], failure.get("error", ""), readable_cause(failure.get("cause")))
    return table


def runs_table(rows: Iterable[tuple[Execution, dict[str, Any] | None, bool | None, str]]) -> Table:
    """Recent runs: (execution, its ledger summary or None, dry run or None when unknown, its error)."""
    table = Table(title="Recent runs (newest first)")
    _ids(table, "run", "status")
    table.add_column("dry", justify="center")
    table.add_column("started", no_wrap=True)
    for name in ("accounts", "failed", "rotated", "disabled", "deleted", "warned"):
        table.add_column(name, justify="right")
    table.add_column("error", overflow="fold")
    for execution, summary, dry_run, error in rows:
        values = ["", "", "", "", "", ""]
        if summary is not None:
            accounts, keys = summary["accounts"], key_counts(summary)
            values = [str(accounts["total"]), str(accounts["failed"])]
            values += [str(keys[name]) for name in ("rotated", "disabled", "deleted", "warned")]
        dry = "" if dry_run is None else ("yes" if dry_run else "no")
        table.add_row(execution.run_id, execution.status, dry, _when(execution.started), *values, error)
    return table


def has_keys(delivery: Delivery) -> bool:
    """Whether a user's record says anything :func:`deliveries_table` shows (a record may hold only a quiet mark,
    :meth:`keyrotation.ledger.Ledger.record_quiet`, or the warnings sent)."""
    return bool(
        delivery.delivered_key_id
        or delivery.pending_key_id
        or delivery.disabled
        or delivery.reenabled
        or delivery.secret_arn
    )


def deliveries_table(account_id: str, deliveries: dict[str, Delivery]) -> Table:
    """What each user was given, as the ledger's delivery records say: key delivered, pending, disabled."""
    table = Table(title=f"Keys the product made for users of {account_id}")
    _ids(table, "user", "delivered key", "pending key")
    table.add_column("disabled by the product", overflow="fold")
    table.add_column("re-enabled by a person", overflow="fold")
    table.add_column("secret", overflow="fold")
    for user_name in sorted(deliveries):
        delivery = deliveries[user_name]
        table.add_row(
            user_name,
            delivery.delivered_key_id or "",
            delivery.pending_key_id or "",
            ", ".join(f"{key} on {_when(moment)}" for key, moment in sorted(delivery.disabled)),
            ", ".join(f"{key} on {_when(moment)}" for key, moment in sorted(delivery.reenabled)),
            delivery.secret_arn or "",
        )
    return table


def history_table(rows: Iterable[tuple[Execution, ActionRecord | NoticeRecord]], title: str) -> Table:
    """A user's keys over runs: when, run, user, key, what (action or notice), its status, reason or detail."""
    table = Table(title=title)
    table.add_column("when", no_wrap=True)
    _ids(table, "run", "user", "key")
    for name in ("what", "status"):
        table.add_column(name)
    table.add_column("reason / detail", overflow="fold")
    for execution, record in rows:
        key = record.key_id or ""
        if isinstance(record, ActionRecord):
            status, detail = record.status.value + (" (dry run)" if record.dry_run else ""), _reason(record)
        else:
            status, detail = "notice", record.detail
        table.add_row(
            _when(record.updated_at or execution.started),
            execution.run_id,
            record.user_name,
            "" if key == "-" else key,
            record.type.value,
            status,
            detail,
        )
    return table


def inventory_table(rows: Iterable[dict[str, Any]], title: str) -> Table:
    """Access keys as the run's inventory lists them: who, which key, age, last use, checks, next action."""
    table = Table(title=title)
    _ids(table, "account", "user", "key")
    table.add_column("status")
    table.add_column("age", justify="right")
    table.add_column("last used", no_wrap=True)
    for name in ("1.12", "1.13", "1.14", "IAM.3"):
        table.add_column(name, justify="center")
    table.add_column("next", no_wrap=True)
    table.add_column("on", no_wrap=True)
    table.add_column("exemption", overflow="fold")
    for row in rows:
        used = str(row.get("lastUsed") or "")[:10]
        where = " ".join(str(row.get(name) or "") for name in ("lastUsedService", "lastUsedRegion")).strip()
        table.add_row(
            f"{row.get('accountId', '')} {row.get('accountName', '')}".strip(),
            str(row.get("userName", "")),
            str(row.get("keyId", "")),
            str(row.get("status", "")),
            f"{row.get('ageDays', '')}d",
            f"{used} {where}".strip() or "never",
            *(str(row.get(name, "")) for name in ("cis112", "cis113", "cis114", "iam3")),
            str(row.get("nextAction", "")),
            str(row.get("nextActionDate", "")),
            str(row.get("exemption", "")),
        )
    return table
