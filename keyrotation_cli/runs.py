"""What the ledger says about runs: counts, failed accounts, planned actions, a user's keys over runs.

Counts are the product's own (:func:`keyrotation.summary.summarize`, as the Summarize function makes
them), over the accounts that have a result and those the run recorded as failed (its replay item),
so they read the same for a run that is still going, one that ended, and one that failed.

    >>> ledger = Ledger(target.ledger_table, target.client("dynamodb"))   # doctest: +SKIP
    >>> counts(ledger, "run-20261130T060000Z-1a2b3c")["accounts"]          # doctest: +SKIP
    {'total': 4, 'succeeded': 3, 'failed': 1}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from keyrotation.ledger import Ledger
from keyrotation.ledger_records import AccountResult, ActionRecord, NoticeRecord, RunRecord
from keyrotation.summary import summarize
from keyrotation_cli.stack import Target

Chosen = TypeVar("Chosen", ActionRecord, NoticeRecord)


@dataclass(frozen=True)
class Execution:
    """One execution of the state machine as ListExecutions gives it."""

    run_id: str
    arn: str
    status: str
    started: datetime
    stopped: datetime | None


def counts(
    ledger: Ledger, run_id: str, records: list[RunRecord] | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """The run's summary (accounts, keys, failedAccounts, notices) from its ledger records.

    ``keys`` are named as Summarize names them: ``wouldRotate``... in a dry run (read them with
    :func:`keyrotation.summary.key_counts`).
    """
    found = ledger.run_records(run_id) if records is None else records
    accounts = [record.account_id for record in found if isinstance(record, AccountResult)]
    accounts += [account for account in ledger.replay_accounts(run_id) or [] if account not in accounts]
    summary, _ = summarize(run_id, accounts, found, dry_run=dry_run)
    return summary


def of_kind(records: Iterable[RunRecord], kind: type[Chosen]) -> list[Chosen]:
    """The records of one kind (:class:`ActionRecord`, :class:`NoticeRecord`), by account, user and key."""
    chosen = [record for record in records if isinstance(record, kind)]
    return sorted(chosen, key=lambda record: (record.account_id, record.user_name, record.key_id or ""))


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
) -> Iterator[tuple[Execution, ActionRecord | NoticeRecord]]:
    """Each action and notice of the account (of ``user_name`` only, when given) in the last ``limit`` runs."""
    for execution in executions(target, limit):
        for record in ledger.run_records(execution.run_id, account_id):
            if isinstance(record, ActionRecord | NoticeRecord) and user_name in (None, record.user_name):
                yield execution, record
