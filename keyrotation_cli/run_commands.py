"""``plan``, ``run`` and ``replay``: start an execution of the state machine, follow it, say how it went.

$ keyrotation plan --account 111122223333       # a dry run, then the planned actions
$ keyrotation run                               # every account in scope, with a progress bar
$ keyrotation replay run-20261130T060000Z-1a2b3c   # the accounts that failed in that run
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

from keyrotation.ledger import Ledger
from keyrotation.ledger_records import ActionRecord, NoticeRecord, RunRecord
from keyrotation_cli import tables
from keyrotation_cli.context import console, target_of
from keyrotation_cli.executions import (
    Finished,
    checked_input,
    execution_arn,
    follow,
    new_run_id,
    run_document,
    start,
)
from keyrotation_cli.runs import counts, of_kind
from keyrotation_cli.stack import Target

ACCOUNTS_FAILED = "KeyRotation.AccountsFailed"

_account_option = click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="ID",
    help="An account to run (repeat for more); default: every account in the stack's scope.",
)


def _document(accounts: tuple[str, ...], dry_run: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {"accounts": list(accounts)} if accounts else {}
    if dry_run:
        document["dryRun"] = True
    return checked_input(document)  # a bad account id stops here, before the stack is even looked up


def _ledger(target: Target) -> Ledger:
    return Ledger(target.ledger_table, target.client("dynamodb"))


def _start_and_follow(ctx: click.Context, document: dict[str, Any], kind: str, out: Console) -> Finished:
    target = target_of(ctx)
    run_id = new_run_id(kind)
    out.print(f"Starting {run_id} on {target.stack_name} with input {json.dumps(document)}")
    return follow(target, start(target, document, run_id), out)


def _report(ctx: click.Context, finished: Finished, out: Console, records: list[RunRecord] | None = None) -> None:
    """The run's counts and failed accounts from the ledger; exit code 1 unless the execution succeeded."""
    target = target_of(ctx)
    ledger = _ledger(target)
    found = ledger.run_records(finished.run_id) if records is None else records
    run = run_document(target.client("stepfunctions"), finished.arn)
    dry_run = bool(run and run.get("dryRun"))
    if run is not None:
        summary = counts(ledger, finished.run_id, found, dry_run=dry_run)
        title = f"{finished.run_id}: {finished.status}" + (" (dry run: nothing was changed)" if dry_run else "")
        out.print(tables.summary_table(summary, title, dry_run))
        if summary["failedAccounts"]:
            out.print(tables.failures_table(summary["failedAccounts"], finished.run_id))
    if finished.succeeded:
        return
    if finished.error == ACCOUNTS_FAILED:
        replay = (finished.cause_json or {}).get("replayInput")
        out.print(
            f"Replay the failed accounts with: keyrotation replay {finished.run_id}  (input {json.dumps(replay)})"
        )
    else:
        out.print(
            f"{finished.run_id} ended {finished.status}: {finished.error}: {tables.readable_cause(finished.cause)}"
        )
    ctx.exit(1)


@click.command()
@_account_option
@click.pass_context
def plan(ctx: click.Context, accounts: tuple[str, ...]) -> None:
    """Start a dry run for the accounts, follow it, and show what it would do to each key.

    A dry run reads everything, records its plan in the ledger and changes no key or secret.
    """
    document = _document(accounts, dry_run=True)
    out = console()
    finished = _start_and_follow(ctx, document, "plan", out)
    records = _ledger(target_of(ctx)).run_records(finished.run_id)
    actions, notices = of_kind(records, ActionRecord), of_kind(records, NoticeRecord)
    if actions:
        out.print(tables.actions_table(actions, f"Planned actions of {finished.run_id} (dry run: nothing was changed)"))
    else:
        out.print(f"{finished.run_id} plans no key action.")
    if notices:
        out.print(tables.notices_table(notices, f"Notices of {finished.run_id}"))
    _report(ctx, finished, out, records)


@click.command()
@_account_option
@click.pass_context
def run(ctx: click.Context, accounts: tuple[str, ...]) -> None:
    """Start an execution for the accounts and follow it with a progress bar over accounts."""
    document = _document(accounts)
    out = console()
    _report(ctx, _start_and_follow(ctx, document, "run", out), out)


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--dry-run", is_flag=True, help="Replay as a dry run (a replay of a dry run is always dry).")
@click.pass_context
def replay(ctx: click.Context, run_id: str, dry_run: bool) -> None:
    """Start an execution for the accounts that failed in RUN, as the ledger recorded them."""
    document = checked_input({"replayOf": run_id, **({"dryRun": True} if dry_run else {})})
    target = target_of(ctx)
    failed = _ledger(target).replay_accounts(run_id)
    if not failed:
        raise click.ClickException(
            f"the ledger records no failed account of run {run_id!r}: a wrong run id, a run that did not fail, "
            "or one older than the ledger keeps runs (see `keyrotation status`)"
        )
    if _was_dry(target, run_id):
        document["dryRun"] = True
    out = console()
    out.print(f"{len(failed)} failed account(s) of {run_id}: {', '.join(failed)}")
    _report(ctx, _start_and_follow(ctx, document, "replay", out), out)


def _was_dry(target: Target, run_id: str) -> bool:
    """Whether the run was a dry run (its ListAccounts said so), when Step Functions still has its history."""
    sfn = target.client("stepfunctions")
    try:
        run = run_document(sfn, execution_arn(target, run_id))
    except sfn.exceptions.ExecutionDoesNotExist:
        return False  # the ledger keeps runs longer than Step Functions keeps executions
    return bool(run and run.get("dryRun"))
