"""The operator CLI (issue 9.7) against the in-memory AWS, through the real state machine.

Every command's output is searched for every secret access key moto made (``leak_check.find_in``); the
folder's leak check then searches everything else the runs wrote.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from keyrotation_cli.context import Options
from keyrotation_cli.main import cli
from keyrotation_cli.stack import StackNotFound, resolve
from localaws import REGION, KeySeed, LocalAws, Organization, Stack
from tests.statemachine.cli import WIDE, execution_input, executions, keyrotation, shown
from tests.statemachine.invariants import ledger_items

pytestmark = pytest.mark.statemachine


def keys(org: Organization, account_id: str, user: str) -> dict[str, str]:
    iam = org.client("iam", account_id)
    return {key["AccessKeyId"]: key["Status"] for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


@pytest.fixture
def due(org: Organization) -> dict[str, Any]:
    """A user in alpha whose key is due for rotation, one in beta whose old key is due for disabling."""
    alpha, beta = org.account("alpha"), org.account("beta")
    (old,) = org.create_user(alpha, "app", [KeySeed(80, used_days_ago=1)], tags={"email": "app@example.com"})
    retired, current = org.create_user(beta, "etl", [KeySeed(95, used_days_ago=9), KeySeed(20, used_days_ago=1)])
    return {"alpha": alpha, "beta": beta, "old": old, "retired": retired, "current": current}


def test_plan_starts_a_dry_run_and_shows_the_planned_actions_changing_nothing(
    stack: Stack, org: Organization, due: dict[str, Any], leak_check: Any
) -> None:
    before = keys(org, due["alpha"], "app"), keys(org, due["beta"], "etl")
    result = keyrotation(stack, leak_check, "plan", "--account", due["alpha"], "--account", due["beta"])
    assert result.exit_code == 0, result.output
    (execution,) = executions(stack)
    assert execution_input(stack, execution) == {"accounts": [due["alpha"], due["beta"]], "dryRun": True}
    assert "Planned actions" in result.output and "dry run: nothing was changed" in result.output
    lines = shown(result)
    assert any(due["old"] in line and "rotate" in line and "planned" in line for line in lines), result.output
    assert any(due["retired"] in line and "disable" in line and "planned" in line for line in lines), result.output
    assert any("app@example.com" in line for line in lines)
    assert (keys(org, due["alpha"], "app"), keys(org, due["beta"], "etl")) == before  # a dry run changes nothing


def test_plan_refuses_a_bad_account_id_before_starting_anything(stack: Stack, leak_check: Any) -> None:
    result = keyrotation(stack, leak_check, "plan", "--account", "12345")
    assert result.exit_code == 2
    assert "malformed account id(s) in input: '12345'" in result.output
    assert executions(stack) == []


def test_run_follows_the_execution_over_its_accounts_and_reports_its_counts(
    stack: Stack, org: Organization, due: dict[str, Any], leak_check: Any
) -> None:
    result = keyrotation(stack, leak_check, "run", "--account", due["alpha"], "--account", due["beta"])
    assert result.exit_code == 0, result.output
    (execution,) = executions(stack)
    assert execution["status"] == "SUCCEEDED" and execution_input(stack, execution) == {
        "accounts": [due["alpha"], due["beta"]]
    }
    text = "\n".join(shown(result))
    assert f"{execution['name']}: accounts" in text and "2/2" in text  # the progress bar, at its end
    assert f"{execution['name']}: SUCCEEDED" in text
    header, row = [line for line in shown(result) if "rotated" in line or "│        2 │" in line][:2]
    assert "rotated" in header and "disabled" in header
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:6] == ["2", "2", "0", "1", "1", "0"]
    assert len(keys(org, due["alpha"], "app")) == 2 and keys(org, due["beta"], "etl")[due["retired"]] == "Inactive"


def test_a_run_with_a_failed_account_exits_1_and_says_how_to_replay_it(
    stack: Stack, org: Organization, due: dict[str, Any], leak_check: Any
) -> None:
    result = keyrotation(stack, leak_check, "run")
    assert result.exit_code == 1, result.output
    (execution,) = executions(stack)
    norole = org.account("norole")
    failed = [line for line in shown(result) if line.startswith(f"│ {norole}")]
    assert failed and "KeyRotation.MemberRoleUnavailable" in failed[0], result.output
    assert f"keyrotation replay {execution['name']}" in result.output


def test_status_shows_recent_runs_their_counts_and_failed_accounts(
    stack: Stack, org: Organization, due: dict[str, Any], leak_check: Any
) -> None:
    assert keyrotation(stack, leak_check, "plan", "--account", due["alpha"]).exit_code == 0
    assert keyrotation(stack, leak_check, "run").exit_code == 1
    bad = stack.start({"accounts": None})  # fails at once, before any account: its own error is shown
    stack.wait(bad)
    result = keyrotation(stack, leak_check, "status", "--limit", "3")
    assert result.exit_code == 0, result.output
    newest, failed, planned = (execution["name"] for execution in executions(stack))
    rows = {line.split("│")[1].strip(): line for line in shown(result) if line.startswith("│ ")}
    assert "KeyRotation.InvalidInput" in rows[newest] and "null" in rows[newest]
    assert [cell.strip() for cell in rows[failed].split("│")[1:4]] == [failed, "FAILED", "no"]
    assert [cell.strip() for cell in rows[failed].split("│")[5:10]] == [
        "5",
        "1",
        "1",
        "1",
        "0",
    ]  # 4 members and the management account
    assert [cell.strip() for cell in rows[planned].split("│")[1:4]] == [planned, "SUCCEEDED", "yes"]
    assert f"Failed accounts of {failed}" in result.output
    assert "KeyRotation.MemberRoleUnavailable" in rows[org.account("norole")]
    limited = keyrotation(stack, leak_check, "status", "--limit", "1")
    assert newest in limited.output and failed not in limited.output


def test_status_of_a_stack_that_never_ran(stack: Stack, leak_check: Any) -> None:
    result = keyrotation(stack, leak_check, "status")
    assert result.exit_code == 0 and "No run of iam-key-rotation yet" in result.output


def test_replay_runs_the_failed_accounts_of_a_run_once_they_are_fixed(
    stack: Stack, org: Organization, due: dict[str, Any], leak_check: Any
) -> None:
    norole = org.account("norole")
    org.create_user(norole, "batch", [KeySeed(80)])
    assert keyrotation(stack, leak_check, "run").exit_code == 1
    (failed_run,) = executions(stack)
    org.deploy_member_role(norole)
    result = keyrotation(stack, leak_check, "replay", failed_run["name"])
    assert result.exit_code == 0, result.output
    replayed, _ = executions(stack)
    assert execution_input(stack, replayed) == {"replayOf": failed_run["name"]}
    assert f"1 failed account(s) of {failed_run['name']}: {norole}" in result.output
    assert replayed["status"] == "SUCCEEDED" and len(keys(org, norole, "batch")) == 2


def test_replay_of_a_run_without_failed_accounts_starts_nothing(
    stack: Stack, due: dict[str, Any], leak_check: Any
) -> None:
    assert keyrotation(stack, leak_check, "run", "--account", due["alpha"]).exit_code == 0
    (succeeded,) = executions(stack)
    for run_id in (succeeded["name"], "no-such-run", "bad run id"):
        result = keyrotation(stack, leak_check, "replay", run_id)
        assert result.exit_code != 0 and len(executions(stack)) == 1, result.output
    assert "records no failed account" in keyrotation(stack, leak_check, "replay", "no-such-run").output


def test_history_shows_what_the_ledger_recorded_for_a_user_s_keys(
    stack: Stack, org: Organization, due: dict[str, Any], leak_check: Any
) -> None:
    assert keyrotation(stack, leak_check, "run", "--account", due["alpha"]).exit_code == 0
    (run,) = executions(stack)
    new = next(key for key in keys(org, due["alpha"], "app") if key != due["old"])
    result = keyrotation(stack, leak_check, "history", due["alpha"], "app")
    assert result.exit_code == 0, result.output
    lines = shown(result)
    assert any(line.startswith("│ app ") and new in line and "secret:" in line for line in lines), result.output
    assert any(run["name"] in line and due["old"] in line and "rotate" in line and "done" in line for line in lines)
    assert any("disable-soon" not in line for line in lines)
    other = keyrotation(stack, leak_check, "history", due["alpha"], "nobody")
    assert "The product has made no key for nobody" in other.output and "No key action or notice" in other.output


@pytest.mark.parametrize(("args", "says"), [(["1234"], "not an AWS account id"), (["111122223333", "a b"], "user")])
def test_history_refuses_a_bad_account_or_user(stack: Stack, leak_check: Any, args: list[str], says: str) -> None:
    result = keyrotation(stack, leak_check, "history", *args)
    assert result.exit_code == 2 and says in result.output


class _Session:
    """A boto3 session whose CloudFormation answers DescribeStacks as a deployed stack would (moto's CloudFormation
    needs packages this project does not install); every other client is the in-memory AWS's."""

    region_name = REGION

    def __init__(self, stacks: dict[str, dict[str, str]]) -> None:
        self.stacks = stacks

    def client(self, service: str, **kwargs: Any) -> Any:
        client = boto3.Session(region_name=REGION).client(service, **kwargs)
        if service != "cloudformation":
            return client
        stubber = Stubber(client)
        for name, outputs in self.stacks.items():
            described = {
                "StackName": name,
                "CreationTime": datetime.now(UTC),
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
            }
            stubber.add_response("describe_stacks", {"Stacks": [described]}, {"StackName": name})
        stubber.add_client_error("describe_stacks", "ValidationError", "Stack with id missing does not exist")
        stubber.activate()
        return client


def test_a_deployed_stack_is_found_by_its_name_through_its_cloudformation_outputs(stack: Stack) -> None:
    target = resolve(_Session({"rotation-prod": stack.outputs}), "rotation-prod")
    assert target.state_machine_arn == stack.state_machine_arn
    assert target.ledger_table == stack.outputs["LedgerTableName"]
    with pytest.raises(StackNotFound, match="no stack named 'missing' in region us-east-1"):
        resolve(_Session({}), "missing")
    with pytest.raises(StackNotFound, match="has no output StateMachineArn, LedgerTableName"):
        resolve(_Session({"other": {"Queue": "q"}}), "other")


def test_the_commands_act_on_the_stack_named_by_stack(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, leak_check: Any
) -> None:
    monkeypatch.setattr(Options, "session", lambda self: _Session({"rotation-prod": stack.outputs}))
    result = CliRunner(env=WIDE).invoke(cli, ["--stack", "rotation-prod", "status"])
    assert result.exit_code == 0 and "No run of rotation-prod yet" in result.output, result.output
    monkeypatch.setattr(Options, "session", lambda self: _Session({}))
    missing = CliRunner(env=WIDE).invoke(cli, ["--stack", "missing", "status"])
    assert missing.exit_code == 1 and "no stack named 'missing'" in missing.output, missing.output


def test_the_ledger_is_read_as_the_product_writes_it(stack: Stack, due: dict[str, Any], leak_check: Any) -> None:
    """The planned actions the CLI shows are the ledger's action items of the run, each of them."""
    result = keyrotation(stack, leak_check, "plan", "--account", due["alpha"], "--account", due["beta"])
    (execution,) = executions(stack)
    actions = [item for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{execution['name']}")]
    planned = [item for item in actions if item.get("kind") == "action"]
    assert len(planned) == 2
    for item in planned:
        assert any(item["keyId"] in line and item["type"] in line for line in shown(result))


def test_following_a_run_survives_a_progress_read_that_aws_refuses(
    aws: LocalAws, stack: Stack, due: dict[str, Any], leak_check: Any
) -> None:
    """The command's own ledger reads (on the main thread; the functions run on others) are throttled once."""
    fault = aws.faults.add(
        "dynamodb", "Query", "ThrottlingException", when=lambda _: threading.current_thread() is threading.main_thread()
    )
    result = keyrotation(stack, leak_check, "run", "--account", due["alpha"])
    assert result.exit_code == 0 and fault.hits == 1, result.output
    assert executions(stack)[0]["status"] == "SUCCEEDED"


def test_an_aws_error_is_one_line_naming_it(aws: LocalAws, stack: Stack, due: dict[str, Any], leak_check: Any) -> None:
    assert keyrotation(stack, leak_check, "run", "--account", due["alpha"]).exit_code == 0
    aws.faults.add("dynamodb", "Query", "ThrottlingException", times=1)
    throttled = keyrotation(stack, leak_check, "status")
    assert throttled.exit_code == 1 and "Error: KeyRotation.Throttled: Query was throttled" in throttled.output
    aws.faults.add("stepfunctions", "ListExecutions", "AccessDeniedException", times=1)
    denied = keyrotation(stack, leak_check, "status")
    assert denied.exit_code == 1 and "Error: ListExecutions failed: AccessDeniedException" in denied.output


def test_status_counts_a_dry_run_under_the_names_summarize_gives_them(
    stack: Stack, due: dict[str, Any], leak_check: Any
) -> None:
    from keyrotation.ledger import Ledger
    from keyrotation_cli.local import of_stack
    from keyrotation_cli.runs import counts

    assert keyrotation(stack, leak_check, "plan", "--account", due["alpha"]).exit_code == 0
    (planned,) = (execution["name"] for execution in executions(stack))
    ledger = Ledger(of_stack(stack).ledger_table, stack.admin.client("dynamodb"))
    assert counts(ledger, planned, dry_run=True)["keys"] == {
        "wouldRotate": 1, "wouldDisable": 0, "wouldDelete": 0, "wouldWarn": 0, "overdue": 0
    }
    result = keyrotation(stack, leak_check, "status")
    row = next(line for line in shown(result) if line.startswith("│ ") and planned in line)
    assert [cell.strip() for cell in row.split("│")[1:4]] == [planned, "SUCCEEDED", "yes"]
    assert [cell.strip() for cell in row.split("│")[5:8]] == ["1", "0", "1"]  # accounts, failed, rotate planned


def test_inventory_lists_every_key_of_the_latest_run_filtered_as_asked(
    stack: Stack, org: Organization, due: dict[str, Any], leak_check: Any
) -> None:
    org.create_user(due["alpha"], "=evil", [KeySeed(10, used_days_ago=1)])  # a name a spreadsheet would run
    assert keyrotation(stack, leak_check, "plan", "--account", due["alpha"], "--account", due["beta"]).exit_code == 0

    result = keyrotation(stack, leak_check, "inventory")
    assert result.exit_code == 0, result.output
    (run,) = (execution["name"] for execution in executions(stack))
    text = "\n".join(shown(result))
    assert f"Access keys of run {run} (4 of 4)" in text
    lines = shown(result)
    assert any(due["old"] in line and "would rotate" in line for line in lines), text
    assert any(due["retired"] in line and "would disable" in line and "FAIL" in line for line in lines), text

    only = keyrotation(stack, leak_check, "inventory", "--account", due["beta"], "--status", "overdue")
    assert "(1 of 4)" in only.output and due["retired"] in only.output and due["current"] not in only.output
    assert "(1 of 4)" in keyrotation(stack, leak_check, "inventory", "--user", "app").output

    exported = keyrotation(stack, leak_check, "inventory", "--csv", "--account", "alpha")
    assert exported.exit_code == 0, exported.output
    rows = [line for line in exported.output.splitlines() if not line.startswith("{")]
    assert rows[0].startswith("accountId,accountName,userName,keyId,status,created,ageDays,lastUsed")
    assert len(rows) == 3 and any(",'=evil," in row for row in rows)  # never a formula


def test_inventory_before_any_run_says_how_to_get_one(stack: Stack, leak_check: Any) -> None:
    result = keyrotation(stack, leak_check, "inventory")
    assert result.exit_code == 1 and "no inventory for the last 20 runs" in result.output
