"""The real statemachine/rotation.asl.json, run by moto's interpreter, with the real handlers in process."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from localaws import REGION, FunctionSpec, KeySeed, LocalAws, Organization, Stack

pytestmark = pytest.mark.statemachine


def key_ids(org: Organization, account_id: str, user: str) -> dict[str, str]:
    keys = org.client("iam", account_id).list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def run_accounts(stack: Stack) -> list[dict[str, Any]]:
    """The account list the run wrote to S3 for its Distributed Map."""
    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack.outputs["RunBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="runs/").get("Contents", [])  # not the runs' reports
    keys = [obj["Key"] for obj in listed]
    latest = max(keys, key=lambda key: s3.head_object(Bucket=bucket, Key=key)["LastModified"])
    return json.loads(s3.get_object(Bucket=bucket, Key=latest)["Body"].read())


def test_a_failed_account_does_not_stop_the_others_and_replay_runs_only_it(stack: Stack, org: Organization) -> None:
    alpha, beta, norole = org.account("alpha"), org.account("beta"), org.account("norole")
    org.create_user(alpha, "alice", [KeySeed(80)])
    org.create_user(beta, "bob", [KeySeed(80)])
    org.create_user(norole, "nora", [KeySeed(80)])

    execution = stack.run({})

    assert execution.status == "FAILED"
    assert execution.error == "KeyRotation.AccountsFailed"
    cause = execution.cause_json
    assert [failure["accountId"] for failure in cause["failedAccounts"]] == [norole]
    assert cause["failedAccounts"][0]["error"] == "KeyRotation.MemberRoleUnavailable"
    assert "IAMKeyRotationMemberRole" in cause["failedAccounts"][0]["cause"]
    assert norole in cause["failedAccounts"][0]["cause"]
    assert cause["replayInput"] == {"accounts": [norole]}
    # The other accounts went on: each of their users got a second (new) key.
    assert len(key_ids(org, alpha, "alice")) == 2 and len(key_ids(org, beta, "bob")) == 2
    assert len(key_ids(org, norole, "nora")) == 1

    org.deploy_member_role(norole)  # the operator fixes the role...
    replay = stack.run(cause["replayInput"])  # ...and pastes the replay input into "Start execution"

    assert replay.status == "SUCCEEDED", replay.cause
    assert [account["id"] for account in run_accounts(stack)] == [norole]
    assert replay.output["accounts"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert replay.output["keys"]["rotated"] == 1
    assert len(key_ids(org, norole, "nora")) == 2
    assert len(key_ids(org, alpha, "alice")) == 2  # untouched by the replay


def test_summary_counts_come_from_the_ledger(aws: LocalAws, stack: Stack, org: Organization) -> None:
    alpha = org.account("alpha")
    org.create_user(alpha, "due", [KeySeed(80)])
    org.create_user(alpha, "replaced", [KeySeed(95), KeySeed(20)])
    org.create_user(alpha, "fresh", [KeySeed(10)])

    execution = stack.run({"accounts": [alpha]})

    assert execution.status == "SUCCEEDED", execution.cause
    summary = execution.output
    assert summary["runId"] == execution.name
    assert summary["accounts"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert summary["keys"]["rotated"] == 1
    assert summary["keys"]["disabled"] == 1
    assert summary["failedAccounts"] == []
    ledger = [item for item in stack.ledger_items() if item["pk"] == f"RUN#{execution.name}"]
    statuses = {(item.get("type"), item.get("status")) for item in ledger if item.get("kind") == "action"}
    assert statuses == {("rotate", "done"), ("disable", "done")}
    # The summary went to the run report's own function, which took it (its Catch did not hide a refusal).
    (report,) = [call for call in aws.lambdas.invocations if call.logical_id == "SendRunReportFunction"]
    assert report.error is None and report.event["report"] == summary, report.error
    assert report.result == {"sent": 0, "failed": 0, "skipped": 1, "invalid": 0}  # SenderEmail is empty
    assert [call.event["account"]["id"] for call in aws.lambdas.invocations if call.logical_id == "NotifyFunction"] == [
        alpha
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"accounts": ["12345"]}, "'12345'"),
        ({"accounts": ["999999999999"]}, "999999999999"),
        ({"accounts": "123456789012"}, "non-empty list"),
        ({"dryRun": "yes"}, "dryRun"),
        ({"acounts": []}, "acounts"),
        ([], "JSON object"),
    ],
)
def test_bad_input_fails_at_once_naming_it_and_changes_nothing(
    aws: LocalAws, stack: Stack, org: Organization, document: Any, message: str
) -> None:
    alpha = org.account("alpha")
    org.create_user(alpha, "alice", [KeySeed(80)])

    execution = stack.run(document)

    assert execution.status == "FAILED"
    assert execution.error == "KeyRotation.InvalidInput"
    assert message in execution.cause
    # ListAccounts refused it; then only the run report (issue 9), which says so and changes nothing.
    invoked = [call.logical_id for call in aws.lambdas.invocations]
    assert invoked == ["ListAccountsFunction", "SendRunReportFunction"]
    assert aws.lambdas.invocations[-1].event["report"]["failure"]["error"] == "KeyRotation.InvalidInput"
    assert stack.ledger_items() == []
    assert len(key_ids(org, alpha, "alice")) == 1


def test_an_excluded_account_cannot_be_requested(aws: LocalAws, org: Organization) -> None:
    beta = org.account("beta")
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": beta})

    execution = stack.run({"accounts": [beta]})

    assert execution.error == "KeyRotation.InvalidInput"
    assert beta in execution.cause


def test_listing_pages_like_aws_and_keeps_only_active_accounts_in_scope(aws: LocalAws) -> None:
    aws.paging.accounts = 3
    org = aws.organization(
        [f"acct{n:02d}" for n in range(11)], ous={"Prod": ["acct01", "acct02"], "Prod/Web": ["acct03"]}
    )
    boto3.client("organizations", region_name=REGION).close_account(AccountId=org.account("acct04"))
    excluded = org.account("acct05")

    everything = aws.deploy({"ExcludeAccounts": excluded}).run({"dryRun": True})
    listed = {account["id"] for account in run_accounts_of(everything)}
    expected = {org.management_account, *org.accounts.values()} - {org.account("acct04"), excluded}
    assert listed == expected

    by_ou = aws.deploy({"IncludeOUs": org.ous["Prod"]}, stack_name="scoped").run({"dryRun": True})
    assert {account["id"] for account in run_accounts_of(by_ou)} == {
        org.account("acct01"),
        org.account("acct02"),
        org.account("acct03"),
    }


def run_accounts_of(execution: Any) -> list[dict[str, Any]]:
    started = [event for event in execution.history if event["type"] == "TaskSucceeded"][0]
    listing = json.loads(started["taskSucceededEventDetails"]["output"])["Payload"]["accounts"]
    s3 = boto3.client("s3", region_name=REGION)
    return json.loads(s3.get_object(Bucket=listing["bucket"], Key=listing["key"])["Body"].read())


def test_an_account_with_more_than_100_users_is_audited_whole(aws: LocalAws) -> None:
    org = aws.organization(["big"])
    big = org.account("big")
    for n in range(130):
        org.create_user(big, f"user{n:03d}", [KeySeed(10)])
    org.create_user(big, "zz-last-user", [KeySeed(80)])  # sorts last: only found if every page is read
    stack = aws.deploy({"DryRun": "false"})

    execution = stack.run_account(big)

    assert execution.status == "SUCCEEDED", execution.cause
    audit = next(call for call in aws.lambdas.invocations if call.logical_id == "AuditKeysFunction")
    assert audit.result["counts"]["usersWithKeys"] == 131  # the credential report holds every user
    assert audit.result["actions"] == 1
    planned = [item for item in stack.ledger_items() if item.get("kind") == "action"]
    assert [item["userName"] for item in planned] == ["zz-last-user"]
    assert len(key_ids(org, big, "zz-last-user")) == 2


def test_a_throttled_call_is_retried_by_the_state_machine_then_succeeds(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    alpha = org.account("alpha")
    org.create_user(alpha, "alice", [KeySeed(80)])
    aws.faults.add("iam", "CreateAccessKey", "Throttling", times=2)

    execution = stack.run_account(alpha)

    assert execution.status == "SUCCEEDED", execution.cause
    failures = [event["taskFailedEventDetails"]["error"] for event in execution.events("TaskFailed")]
    assert failures == ["KeyRotation.Throttled", "KeyRotation.Throttled"]
    created = [call for call in aws.lambdas.invocations if call.logical_id == "CreateKeyFunction"]
    assert [call.error[0] if call.error else "ok" for call in created] == [
        "KeyRotation.Throttled",
        "KeyRotation.Throttled",
        "ok",
    ]
    assert len(key_ids(org, alpha, "alice")) == 2


def test_a_caught_failure_is_recorded_and_leaves_no_orphan_key(aws: LocalAws, stack: Stack, org: Organization) -> None:
    alpha = org.account("alpha")
    org.create_user(alpha, "alice", [KeySeed(80)])
    org.create_user(alpha, "bob", [KeySeed(95), KeySeed(20)])
    aws.faults.add("secretsmanager", "PutSecretValue", "AccessDeniedException", times=1)

    execution = stack.run_account(alpha, run_id="run-fault")

    assert execution.status == "FAILED"
    assert execution.error == "KeyRotation.ActionsFailed"
    caught = [e for e in execution.events("TaskFailed") if "DeliveryFailed" in e["taskFailedEventDetails"]["error"]]
    assert caught, "the delivery failure reached the Catch"
    items = {item["sk"]: item for item in stack.ledger_items() if item["pk"] == "RUN#run-fault"}
    rotate = next(item for sk, item in items.items() if sk.endswith("#rotate"))
    assert rotate["status"] == "failed"
    assert rotate["error"] == "KeyRotation.DeliveryFailed"
    assert items[f"ACCOUNT#{alpha}"]["status"] == "FAILED"
    # The key that could not be delivered was taken back; bob's disable still happened.
    assert list(key_ids(org, alpha, "alice").values()) == ["Active"]
    assert sorted(key_ids(org, alpha, "bob").values()) == ["Active", "Inactive"]


def test_an_action_that_failed_before_writing_its_item_is_recorded_as_an_action(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    """CreateKey fails before it writes the action's item: the state machine's record of the failure is the
    item, and it must read as a key action (kind, account, user, key, type), not as an account's result."""
    alpha = org.account("alpha")
    org.create_user(alpha, "alice", [KeySeed(80)])
    aws.faults.add("secretsmanager", "PutSecretValue", "AccessDeniedException", times=1)

    execution = stack.run({"accounts": [alpha]})

    assert execution.status == "FAILED"
    assert execution.error == "KeyRotation.AccountsFailed", execution.cause  # not a failed Summarize
    cause = execution.cause_json
    assert [failure["accountId"] for failure in cause["failedAccounts"]] == [alpha], cause["failedAccounts"]
    items = [item for item in stack.ledger_items() if item.get("status") == "failed" and "#ACTION#" in item["sk"]]
    assert len(items) == 1, items
    (failed,) = items
    assert failed["kind"] == "action"
    assert (failed["accountId"], failed["userName"], failed["type"]) == (alpha, "alice", "rotate")
    assert failed["keyId"] in key_ids(org, alpha, "alice")
    assert "expiresAt" in failed
    results = [item for item in stack.ledger_items() if item["sk"] == f"ACCOUNT#{alpha}" and item["pk"] == failed["pk"]]
    assert [item["kind"] for item in results] == ["account"]


def test_a_second_execution_fails_at_once_while_one_is_running(aws: LocalAws, stack: Stack, org: Organization) -> None:
    alpha = org.account("alpha")
    org.create_user(alpha, "alice", [KeySeed(80)])
    release = threading.Event()

    def hold_audit(spec: FunctionSpec, event: dict[str, Any]) -> None:
        if spec.logical_id == "AuditKeysFunction":
            release.wait(timeout=60)

    aws.lambdas.before_invoke.append(hold_audit)
    first = stack.start({"accounts": [alpha]}, name="first")
    try:
        second = stack.run({"accounts": [alpha]}, name="second", timeout=60)
    finally:
        release.set()
    first_done = stack.wait(first)

    assert second.status == "FAILED"
    assert second.error == "KeyRotation.AlreadyRunning"
    assert "first" in second.cause
    assert first_done.status == "SUCCEEDED", first_done.cause
    assert all(item["pk"] != "RUN#second" for item in stack.ledger_items())
    assert len(key_ids(org, alpha, "alice")) == 2  # rotated once, by the first


def test_state_payloads_stay_small_whatever_the_organization(aws: LocalAws) -> None:
    org = aws.organization([f"acct{n:02d}" for n in range(30)])
    stack = aws.deploy({})

    execution = stack.run({})

    sizes = [len(json.dumps(event, default=str)) for event in execution.history]
    assert max(sizes) < 4096
    assert not any(org.account("acct29") in json.dumps(event, default=str) for event in execution.history)
    assert execution.output["accounts"]["total"] == 31


def test_the_schedule_and_logging_come_from_the_template(aws: LocalAws, org: Organization) -> None:
    stack = aws.deploy({"ScheduleExpression": "rate(12 hours)"})
    events = boto3.client("events", region_name=REGION)
    every_rule = events.list_rules()["Rules"]
    rules = [rule for rule in every_rule if "ScheduleExpression" in rule]
    assert [rule["ScheduleExpression"] for rule in rules] == ["rate(12 hours)"]
    # The only other rule is the failed-run alert's (issue 9), which matches events, on no schedule.
    assert [rule["Name"] for rule in every_rule if rule not in rules] == [stack.resources["RunFailedRule"]]
    targets = events.list_targets_by_rule(Rule=rules[0]["Name"])["Targets"]
    assert targets[0]["Arn"] == stack.state_machine_arn
