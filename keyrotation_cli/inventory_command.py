"""``inventory``: every access key in scope as the latest run found it, with its compliance and next action.

The inventory is the run's ``reports/<runId>/inventory.json`` in the run bucket (written by Summarize);
the latest run that has one is shown, or the run given with ``--run``. As a table, or as CSV
(``--csv``, the same columns as ``inventory.csv``, safe to open in a spreadsheet).

    $ keyrotation inventory --account 111122223333 --status overdue
    $ keyrotation inventory --csv > keys.csv
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click
from botocore.exceptions import ClientError

from keyrotation.aws import error_code
from keyrotation.key_inventory import COLUMNS, FAIL, PASS
from keyrotation.reports import csv_text, prefix
from keyrotation_cli import tables
from keyrotation_cli.context import console, target_of
from keyrotation_cli.runs import executions
from keyrotation_cli.stack import Target

#: How many recent runs are looked at for an inventory (a run that failed before Summarize has none).
RUNS_LOOKED_AT = 20
_CHECKS = ("cis112", "cis113", "cis114", "iam3")


def _in_state(row: dict[str, Any], state: str) -> bool:
    """Whether the inventory row is in ``state`` (one of :data:`STATUSES`)."""
    tests = {
        "active": row.get("status") == "Active",
        "inactive": row.get("status") == "Inactive",
        "compliant": all(row.get(check) == PASS for check in _CHECKS),
        "noncompliant": any(row.get(check) == FAIL for check in _CHECKS),
        "overdue": row.get("cis114") == FAIL,
        "exempt": row.get("nextAction") == "exempt",
        "blocked": row.get("nextAction") == "blocked",
    }
    return tests[state]


#: What ``--status`` selects.
STATUSES = ("active", "inactive", "compliant", "noncompliant", "overdue", "exempt", "blocked")


@click.command()
@click.option("--run", "run_id", help="The run whose inventory to show (default: the latest that has one).")
@click.option("--account", "accounts", multiple=True, help="Only this account (id or name); repeatable.")
@click.option("--user", "users", multiple=True, help="Only this IAM user; repeatable.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only keys in this state; repeatable (a key in any of them is shown).",
)
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output instead of a table.")
@click.pass_context
def inventory(
    ctx: click.Context,
    run_id: str | None,
    accounts: tuple[str, ...],
    users: tuple[str, ...],
    statuses: tuple[str, ...],
    as_csv: bool,
) -> None:
    """Show every access key in scope as the latest run found it: age, last use, CIS status, next action."""
    target = target_of(ctx)
    found = _latest(target, run_id)
    if found is None:
        which = f"run {run_id}" if run_id else f"the last {RUNS_LOOKED_AT} runs"
        raise click.ClickException(f"no inventory for {which} of {target.stack_name}: start a run (or a plan) first")
    run, rows = found
    chosen = [row for row in rows if _wanted(row, accounts, users, statuses)]
    if as_csv:
        click.echo(csv_text(chosen, COLUMNS), nl=False)
        return
    out = console()
    out.print(tables.inventory_table(chosen, f"Access keys of run {run} ({len(chosen)} of {len(rows)})"))


def _latest(target: Target, run_id: str | None) -> tuple[str, list[dict[str, Any]]] | None:
    """The run and its inventory rows: ``run_id``'s, or the latest run's that has one."""
    s3 = target.client("s3")
    runs: Iterable[str] = [run_id] if run_id else (execution.run_id for execution in executions(target, RUNS_LOOKED_AT))
    for run in runs:
        try:
            body = s3.get_object(Bucket=target.run_bucket, Key=prefix(run) + "inventory.json")["Body"].read()
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                continue
            raise
        rows = json.loads(body)
        if not isinstance(rows, list):
            raise click.ClickException(f"the inventory of run {run} is not a list of keys")
        return run, [row for row in rows if isinstance(row, dict)]
    return None


def _wanted(row: dict[str, Any], accounts: tuple[str, ...], users: tuple[str, ...], statuses: tuple[str, ...]) -> bool:
    if accounts and row.get("accountId") not in accounts and row.get("accountName") not in accounts:
        return False
    if users and row.get("userName") not in users:
        return False
    return not statuses or any(_in_state(row, status.lower()) for status in statuses)
