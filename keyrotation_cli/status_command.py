"""``status``: the recent runs, their counts, and the failed accounts with their errors.

$ keyrotation status --limit 5
"""

from __future__ import annotations

from typing import Any

import click

from keyrotation.ledger import Ledger
from keyrotation_cli import tables
from keyrotation_cli.context import console, target_of
from keyrotation_cli.executions import run_document
from keyrotation_cli.runs import Execution, counts, executions
from keyrotation_cli.stack import Target

ACCOUNTS_FAILED = "KeyRotation.AccountsFailed"


@click.command()
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="How many runs to show.")
@click.pass_context
def status(ctx: click.Context, limit: int) -> None:
    """Show the recent runs, their counts, and each failed account with its error."""
    target = target_of(ctx)
    ledger = Ledger(target.ledger_table, target.client("dynamodb"))
    rows = [_row(target, ledger, execution) for execution in executions(target, limit)]
    out = console()
    if not rows:
        out.print(f"No run of {target.stack_name} yet: start one with `keyrotation plan` or `keyrotation run`.")
        return
    out.print(tables.runs_table(rows))
    for execution, summary, _, _ in rows:
        if summary is not None and summary["failedAccounts"]:
            out.print(tables.failures_table(summary["failedAccounts"], execution.run_id))


def _row(
    target: Target, ledger: Ledger, execution: Execution
) -> tuple[Execution, dict[str, Any] | None, bool | None, str]:
    """A run's counts (None when it stopped before listing its accounts), whether it is dry, its own error."""
    sfn = target.client("stepfunctions")
    run = run_document(sfn, execution.arn)
    summary = counts(ledger, execution.run_id, dry_run=bool(run.get("dryRun"))) if run is not None else None
    error = ""
    if execution.status not in ("RUNNING", "SUCCEEDED"):
        described = sfn.describe_execution(executionArn=execution.arn)
        if described.get("error") != ACCOUNTS_FAILED:  # the accounts' own errors are in the failures tables
            error = f"{described.get('error', '')}: {tables.readable_cause(described.get('cause'))}"
    return execution, summary, (bool(run.get("dryRun")) if run is not None else None), error
