"""What the ledger says about runs: counts, failed accounts, planned actions, a user's keys over runs.

Counts are the product's own (:func:`keyrotation.summary.summarize`, as the Summarize function makes
them), over the accounts that have a result and those the run recorded as failed (its replay item),
so they read the same for a run that is still going, one that ended, and one that failed.

    >>> ledger = Ledger(target.ledger_table, target.client("dynamodb"))   # doctest: +SKIP
    >>> counts(ledger, "run-20261130T060000Z-1a2b3c")["accounts"]          # doctest: +SKIP
    {'total': 4, 'succeeded': 3, 'failed': 1}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyrotation.ledger import Ledger, RecordKind
from keyrotation.summary import summarize
from keyrotation_cli.stack import Target

ACTION, NOTICE = RecordKind.ACTION.value, RecordKind.NOTICE.value


@dataclass(frozen=True)
class Execution:
    """One execution of the state machine as ListExecutions gives it."""

    run_id: str
    arn: str
    status: str
    started: datetime
    stopped: datetime | None


def is_account_result(item: dict[str, Any]) -> bool:
    """An account's result item (``ACCOUNT#<id>``), which the state machine writes."""
    return item.get("kind") == RecordKind.ACCOUNT


def counts(
    ledger: Ledger, run_id: str, items: list[dict[str, Any]] | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """The run's summary (accounts, keys, failedAccounts, notices) from its ledger items.

    ``keys`` are named as Summarize names them: ``wouldRotate``... in a dry run (read them with
    :func:`keyrotation.summary.key_counts`).
    """
    found = ledger.run_items(run_id) if items is None else items
    accounts = [item["accountId"] for item in found if is_account_result(item)]
    accounts += [account for account in ledger.replay_accounts(run_id) or [] if account not in accounts]
    summary, _ = summarize(run_id, accounts, found, dry_run=dry_run)
    return summary


def of_kind(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The items of one kind (``action``, ``notice``), by account, user and key."""
    chosen = [item for item in items if item.get("kind") == kind]
    return sorted(chosen, key=lambda item: (item["accountId"], item.get("userName", ""), item.get("keyId") or ""))


def executions(target: Target, limit: int | None = None) -> Iterator[Execution]:
    """The state machine's executions, newest first (every page, up to ``limit``)."""
    sfn = target.client("stepfunctions")
    given = 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=target.state_machine_arn):
        for execution in page["executions"]:
            if limit is not None and given >= limit:
                return
            given += 1
            yield Execution(
                run_id=str(execution["name"]),
                arn=str(execution["executionArn"]),
                status=str(execution["status"]),
                started=execution["startDate"],
                stopped=execution.get("stopDate"),
            )


def key_history(
    target: Target, ledger: Ledger, account_id: str, user_name: str | None, limit: int | None
) -> Iterator[tuple[Execution, dict[str, Any]]]:
    """Each action and notice of the account (of ``user_name`` only, when given) in the last ``limit`` runs."""
    for execution in executions(target, limit):
        for item in ledger.run_items(execution.run_id, account_id):
            if item.get("kind") in (ACTION, NOTICE) and user_name in (None, item.get("userName")):
                yield execution, item
