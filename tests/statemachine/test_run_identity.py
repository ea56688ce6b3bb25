"""A run's identity is unique for ever, though Step Functions lets an execution name be used again.

Step Functions forgets an execution 90 days after it closes, and then accepts its name for a new one;
the ledger keeps a run's items for 400 days. A run named like an earlier one must not read that run's
items as its own: the owner is told (no "already sent in this run"), the summary counts this run only,
and the earlier run stays what it was, replayable by its own id.

moto never forgets an execution (it refuses a used name for ever), so :func:`forget` does what Step
Functions does 90 days after an execution closes: it drops the execution.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from moto.core import DEFAULT_ACCOUNT_ID
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from localaws import REGION, Execution, KeySeed, LocalAws, Stack
from tests.statemachine.invariants import Watch, ledger_items

pytestmark = pytest.mark.statemachine

START = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
EMAIL = {"SenderEmail": "key-rotation@example.com", "SecurityTeamEmail": "security@example.com"}


def forget(stack: Stack, execution: Execution) -> None:
    """What Step Functions does 90 days after an execution closed: it no longer knows it (nor its name)."""
    machine = stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][REGION].describe_state_machine(stack.state_machine_arn)
    machine.executions[:] = [known for known in machine.executions if known.execution_arn != execution.arn]


def run_on(stack: Stack, watch: Watch, day: int, document: Any = None, name: str | None = None) -> Execution:
    with time_machine.travel(START + timedelta(days=day), tick=True):
        execution = stack.run({} if document is None else document, name=name)
        watch.check(execution.output["runId"] if execution.output else None, when=f"on day {day}")
    return execution


def emails(stack: Stack, run_id: str) -> dict[str, str]:
    """Recipient -> status of the run's digests, from the ledger."""
    return {
        item["recipient"]: item["status"]
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{run_id}")
        if item.get("kind") == "email"
    }


@pytest.fixture
def reused(aws: LocalAws) -> dict[str, Any]:
    with time_machine.travel(START - timedelta(hours=1), tick=True):
        org = aws.organization(["alpha"])
        aws.verify_sender(EMAIL["SenderEmail"])
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, **EMAIL})
        alpha = org.account("alpha")
        org.create_user(alpha, "alice", [KeySeed(80, used_days_ago=1)], tags={"email": "alice@example.com"})
        watch = Watch(stack, [alpha])
        watch.start()
    return {"stack": stack, "watch": watch, "alpha": alpha}


def test_a_reused_execution_name_is_a_new_run_and_the_earlier_one_stays_whole(reused: dict[str, Any]) -> None:
    stack, watch = reused["stack"], reused["watch"]

    first = run_on(stack, watch, 0, name="nightly")
    assert first.status == "SUCCEEDED", first.cause
    assert first.output["runId"] == "nightly", "a name used once is the run's id, as the console shows it"
    assert first.output["keys"]["rotated"] == 1
    assert emails(stack, "nightly") == {"alice@example.com": "sent"}
    earlier = ledger_items(stack.outputs["LedgerTableName"], "RUN#nightly")

    for day in (15, 25):  # the old key disabled, then deleted
        assert run_on(stack, watch, day).status == "SUCCEEDED"
    forget(stack, first)

    # 100 days later the new key is due, and Step Functions takes the name again.
    second = run_on(stack, watch, 100, name="nightly")

    assert second.status == "SUCCEEDED", second.cause
    run_id = second.output["runId"]
    assert run_id != "nightly" and run_id.startswith("nightly@"), run_id
    # The key rotated is 100 days old and stays Active until its disable: one overdue key is left.
    assert second.output["keys"] == {"rotated": 1, "disabled": 0, "deleted": 0, "warned": 0, "overdue": 1}, (
        "this run only"
    )
    assert emails(stack, run_id) == {"alice@example.com": "sent"}, "the owner is told of the second rotation"
    later = ledger_items(stack.outputs["LedgerTableName"], "RUN#nightly")
    assert {item["sk"] for item in later} == {item["sk"] for item in earlier}, "the earlier run is not written over"
    assert [item for item in later if item.get("kind") == "action"] == [
        item for item in earlier if item.get("kind") == "action"
    ]
    assert first.output["runId"] != run_id


def test_a_retried_list_accounts_keeps_the_run_id_it_took(aws: LocalAws, reused: dict[str, Any]) -> None:
    """The claim is the execution's: the same execution asking again gets the same id, another gets another."""
    stack = reused["stack"]
    event = {"input": {}, "execution": {"name": "n1", "startTime": "2025-03-03T06:00:00.000Z"}}
    event["execution"]["stateMachineArn"] = stack.state_machine_arn
    with time_machine.travel(START, tick=True):
        once = stack.invoke("ListAccountsFunction", event)["run"]["runId"]
        again = stack.invoke("ListAccountsFunction", event)["run"]["runId"]
        event["execution"]["startTime"] = "2025-06-03T06:00:00.000Z"
        other = stack.invoke("ListAccountsFunction", event)["run"]["runId"]
    assert once == again == "n1"
    assert other == "n1@2025-06-03T06:00:00.000Z"


def test_replay_of_either_run_of_a_reused_name_runs_that_runs_failed_accounts(aws: LocalAws) -> None:
    with time_machine.travel(START - timedelta(hours=1), tick=True):
        org = aws.organization(["alpha", "norole", "gone"], without_role=["norole", "gone"])
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})
        norole, gone = org.account("norole"), org.account("gone")
    with time_machine.travel(START, tick=True):
        first = stack.run({"accounts": [norole]}, name="nightly")
    forget(stack, first)
    with time_machine.travel(START + timedelta(days=100), tick=True):
        second = stack.run({"accounts": [gone]}, name="nightly")
        run_id = _run_id(second)
        of_first = stack.run({"replayOf": "nightly"})
        of_second = stack.run({"replayOf": run_id})
    assert first.status == second.status == "FAILED"
    assert run_id.startswith("nightly@"), run_id
    assert [failure["accountId"] for failure in of_first.cause_json["failedAccounts"]] == [norole], (
        "replayOf the name runs the failed accounts of the run that had it first"
    )
    assert of_first.cause_json["replayOf"] == "nightly"
    assert [failure["accountId"] for failure in of_second.cause_json["failedAccounts"]] == [gone]
    assert of_second.cause_json["replayOf"] == run_id, "the id with its start time is a run id like any other"


def _run_id(execution: Execution) -> str:
    """The run id ListAccounts gave the execution (a failed run has no output to read it from)."""
    (listed,) = [
        event
        for event in execution.events("TaskStateExited")
        if event["stateExitedEventDetails"]["name"] == "ListAccounts"
    ]
    return str(json.loads(listed["stateExitedEventDetails"]["output"])["run"]["runId"])
