"""Running the ``keyrotation`` command line in process against a stack of the in-memory AWS, output leak-checked."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result

from keyrotation_cli.context import Options
from keyrotation_cli.local import of_stack
from keyrotation_cli.main import cli
from localaws import Stack

# Wide enough that no table cell is folded: ids and reasons are found whole in the output.
WIDE = {"COLUMNS": "250"}


def keyrotation(stack: Stack, leak_check: Any, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """``keyrotation ARGS`` on ``stack``; fails the test, naming key ids only, if a secret is in its output."""
    result = CliRunner(env={**WIDE, **(env or {})}).invoke(cli, list(args), obj=Options(target=of_stack(stack)))
    leaks = leak_check.find_in(f"the output of keyrotation {' '.join(args)}", result.output)
    assert not leaks, "\n".join(str(leak) for leak in leaks)
    return result


def shown(result: Result) -> list[str]:
    """The command's own lines: without what the in-process functions logged meanwhile (JSON records, one a line),
    which goes to the same standard output here (and was leak-checked with it)."""
    return [line for line in result.output.splitlines() if not line.startswith("{")]


def executions(stack: Stack) -> list[dict[str, Any]]:
    """The state machine's executions, newest first."""
    sfn = stack.admin.client("stepfunctions")
    return [
        execution
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.state_machine_arn)
        for execution in page["executions"]
    ]


def execution_input(stack: Stack, execution: dict[str, Any]) -> Any:
    import json

    described = stack.admin.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    return json.loads(described["input"])
