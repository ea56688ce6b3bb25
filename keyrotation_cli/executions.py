"""Starting executions of the state machine, and following one to its end with a progress bar over accounts.

An execution's name is its run id (the ledger's ``RUN#<runId>``). The input is checked with the
product's own :func:`keyrotation.organization.parse_request` before anything starts, so a bad input
gets the product's error here, with nothing touched.

    >>> arn = start(target, {"dryRun": True}, new_run_id("plan"))    # doctest: +SKIP
    >>> finished = follow(target, arn, console)                      # doctest: +SKIP
    >>> finished.status                                              # doctest: +SKIP
    'SUCCEEDED'
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from keyrotation.aws import error_code
from keyrotation.errors import InvalidInput, Throttled, TransientAwsError
from keyrotation.ledger import Ledger
from keyrotation.ledger_records import AccountResult, AccountStatus
from keyrotation.organization import parse_request
from keyrotation_cli.stack import Target

#: The state that lists the accounts; its output says how many accounts the run covers and whether it is dry.
LIST_ACCOUNTS_STATE = "ListAccounts"


@dataclass(frozen=True)
class Finished:
    """An execution that ended: its status, and its output or its error and cause."""

    run_id: str
    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def cause_json(self) -> Any:
        """The cause as JSON when it is JSON (``KeyRotation.AccountsFailed``'s is), else None."""
        try:
            return json.loads(self.cause) if self.cause else None
        except json.JSONDecodeError:
            return None


def new_run_id(kind: str, now: datetime | None = None) -> str:
    """An execution name (the run id) that says what started it and when.

    >>> new_run_id("plan", datetime(2026, 11, 30, 6, tzinfo=UTC))[:22]
    'plan-20261130T060000Z-'
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{kind}-{moment.strftime('%Y%m%dT%H%M%SZ')}-{os.urandom(3).hex()}"


def checked_input(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` if the state machine accepts it; else the product's own error, as a usage error."""
    try:
        parse_request(document)
    except InvalidInput as error:
        raise click.UsageError(str(error)) from None
    return document


def execution_arn(target: Target, run_id: str) -> str:
    """The ARN of the execution named ``run_id`` of the stack's state machine."""
    return f"{target.state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{run_id}"


def ensure_idle(target: Target) -> None:
    """Refuse, before starting anything, while an execution is running (the product runs one at a time)."""
    sfn = target.client("stepfunctions")
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=target.state_machine_arn, statusFilter="RUNNING"
    ):
        for running in page["executions"]:
            raise click.ClickException(
                f"execution {running['name']} is running; the state machine runs one execution at a time "
                "(KeyRotation.AlreadyRunning). Follow it with `keyrotation status`, or wait for it to end."
            )


def start(target: Target, document: dict[str, Any], run_id: str) -> str:
    """Start an execution named ``run_id`` with ``document`` (checked first); return its ARN."""
    checked_input(document)
    ensure_idle(target)
    started = target.client("stepfunctions").start_execution(
        stateMachineArn=target.state_machine_arn, name=run_id, input=json.dumps(document)
    )
    return str(started["executionArn"])


def run_document(sfn: Any, arn: str) -> dict[str, Any] | None:
    """The ``run`` document ListAccounts made (``runId``, ``dryRun``...) and the account count, once it has run."""
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            exited = event.get("stateExitedEventDetails")
            if exited and exited.get("name") == LIST_ACCOUNTS_STATE:
                output = json.loads(exited.get("output") or "{}")
                run = dict(output.get("run", {}))
                run["accountCount"] = output.get("accounts", {}).get("count")
                return run
    return None


def account_results(ledger: Ledger, run_id: str) -> tuple[int, int]:
    """How many accounts of the run have a result in the ledger, and how many of them failed."""
    results = [record for record in ledger.run_records(run_id) if isinstance(record, AccountResult)]
    return len(results), sum(1 for result in results if result.status is not AccountStatus.SUCCEEDED)


def follow(target: Target, arn: str, console: Console) -> Finished:
    """Poll the execution until it ends, with a progress bar over its accounts; return how it ended."""
    sfn = target.client("stepfunctions")
    ledger = Ledger(target.ledger_table, target.client("dynamodb"))
    run_id = arn.rsplit(":", 1)[-1]
    total: int | None = None
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task(f"{run_id}: listing accounts", total=None)
            while True:
                described = sfn.describe_execution(executionArn=arn)
                try:
                    if total is None:
                        run = run_document(sfn, arn)
                        total = run["accountCount"] if run else None
                    done, failed = account_results(ledger, run_id)
                except (ClientError, Throttled, TransientAwsError) as error:  # the bar says so, and looks again
                    reason = error_code(error) if isinstance(error, ClientError) else str(error)
                    progress.update(task, description=f"{run_id}: accounts (not read now: {reason})")
                else:
                    label = f"{run_id}: accounts" + (f", {failed} failed" if failed else "")
                    progress.update(task, total=total, completed=done, description=label)
                if described["status"] != "RUNNING":
                    break
                time.sleep(target.poll_seconds)
    except KeyboardInterrupt:
        raise click.ClickException(
            f"stopped following {run_id}; the execution goes on: see it with `keyrotation status`"
        ) from None
    output = described.get("output")
    return Finished(
        run_id=run_id,
        arn=arn,
        status=str(described["status"]),
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
    )
