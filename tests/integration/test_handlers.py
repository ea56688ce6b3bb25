"""Every rotation function except the email ones (notify, send_run_report), called in process as Lambda would.

Each test deploys template.yaml into moto (the ``stack`` fixture), seeds an
organization's IAM users with keys of chosen ages, and calls one handler
through :meth:`Stack.invoke` with the event the state machine sends (see
each ``functions/<name>/app.py``). The proof is what AWS holds afterwards:
IAM keys, Secrets Manager versions and policies, the S3 account list, and
the ledger's items.

Whatever a test does, the leak check of tests/leaks.py (autouse, from this
folder's conftest.py) makes sure at its end that no secret access key moto
generated appears in a function's event, result or error, in the ledger, in the
logs, or anywhere else it looks.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from moto.iam import models as moto_iam
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from keyrotation import secret_policy
from keyrotation.ledger import RecordKind
from localaws import REGION, FunctionError, FunctionSpec, KeySeed, LocalAws, Organization, Stack
from localaws.defaults import parameter_defaults
from tests import earlier
from tests.leaks import LeakCheck

pytestmark = pytest.mark.integration

ROLE = "IAMKeyRotationMemberRole"
RUN_ID = "run-1"
KEY_ID = re.compile(r"^AKIA[A-Z0-9]{16}$")
VERSION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCOUNT_HANDLERS = (
    "AuditKeysFunction",
    "CreateKeyFunction",
    "VerifyKeyFunction",
    "StoreSecretFunction",
    "DisableKeyFunction",
    "DeleteKeyFunction",
    "DiscardNewKeyFunction",
)
# What the product may call in a member account or the ledger without changing anything.
READ_ONLY = {
    ("sts", "AssumeRole"),
    ("sts", "GetCallerIdentity"),
    ("iam", "GetUser"),
    ("iam", "ListUsers"),
    ("iam", "ListAccessKeys"),
    ("iam", "GetAccessKeyLastUsed"),
    ("iam", "ListUserTags"),
    ("iam", "ListGroupsForUser"),
    ("iam", "GetGroup"),
    ("iam", "GenerateCredentialReport"),  # makes a report, changes nothing IAM holds
    ("iam", "GetCredentialReport"),
    ("secretsmanager", "DescribeSecret"),
    ("secretsmanager", "GetSecretValue"),
    ("dynamodb", "GetItem"),
    ("dynamodb", "Query"),
}


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def unvalidated_state_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy without moto parsing the whole ASL again (a third of each test's time). Here the state
    machine only needs to exist; tests/statemachine/ validates and runs the real definition."""
    monkeypatch.setattr(StepFunctionsParserBackend, "_validate_definition", staticmethod(lambda definition: None))


def run_doc(run_id: str = RUN_ID, dry_run: bool = False) -> dict[str, Any]:
    return {
        "runId": run_id,
        "dryRun": dry_run,
        "startedAt": "2026-11-24T06:00:00Z",
        "maxConcurrency": 10,
        "expiresAt": "4102444800",
    }


def account_doc(org: Organization, name: str) -> dict[str, str]:
    return {"id": org.account(name), "name": name, "email": f"{name}@example.com"}


def invoke_error(stack: Stack, logical_id: str, event: Any) -> FunctionError:
    with pytest.raises(FunctionError) as raised:
        stack.invoke(logical_id, event)
    return raised.value


def audit(stack: Stack, account: dict[str, str], run: dict[str, Any] | None = None) -> dict[str, Any]:
    """What audit_keys returns, and under ``plan`` the actions it wrote to the ledger, in plan order."""
    run = run or run_doc()
    result = stack.invoke("AuditKeysFunction", {"account": account, "run": run})
    return {**result, "plan": plan_of(stack, run["runId"], account["id"], result["actions"])}


def plan_of(stack: Stack, run_id: str, account_id: str, count: int) -> list[dict[str, str]]:
    """The plan's first ``count`` items, as the state machine's NextAction reads them one at a time."""
    items = [item for item in stack.ledger_items() if item["pk"] == f"PLAN#{run_id}#{account_id}"]
    ordered = sorted(items, key=lambda item: int(item["sk"].removeprefix("ACTION#")))[:count]
    assert [int(item["next"]) for item in ordered] == list(range(1, count + 1))
    return [{name: item[name] for name in ("type", "userName", "keyId", "reason")} for item in ordered]


def planned(stack: Stack, account: dict[str, str], user: str, run: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The user's actions in the plan audit_keys makes for the account."""
    return [action for action in audit(stack, account, run)["plan"] if action["userName"] == user]


def act(stack: Stack, logical_id: str, action: dict[str, str], account: dict[str, str],
        run: dict[str, Any] | None = None, **extra: Any) -> Any:
    return stack.invoke(logical_id, {"action": action, "account": account, "run": run or run_doc(), **extra})


def keys_of(org: Organization, account_id: str, user: str) -> dict[str, str]:
    metadata = org.client("iam", account_id).list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in metadata}


def secret_of(account_id: str, key_id: str) -> str:
    return str(moto_iam.iam_backends[account_id]["aws"].access_keys[key_id].secret_access_key)


def user_arn(org: Organization, account_id: str, user: str) -> str:
    return str(org.client("iam", account_id).get_user(UserName=user)["User"]["Arn"])


def secrets_client(org: Organization, account_id: str) -> Any:
    return org.client("secretsmanager", account_id)


def stages(org: Organization, account_id: str, name: str) -> dict[str, list[str]]:
    return dict(secrets_client(org, account_id).describe_secret(SecretId=name).get("VersionIdsToStages", {}))


def secret_names(org: Organization, account_id: str) -> list[str]:
    return sorted(secret["Name"] for secret in secrets_client(org, account_id).list_secrets()["SecretList"])


def items(stack: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    return {(item["pk"], item["sk"]): item for item in stack.ledger_items()}


def action_item(stack: Stack, account_id: str, action: dict[str, str], run_id: str = RUN_ID) -> dict[str, Any]:
    sk = f"ACCOUNT#{account_id}#ACTION#{action['userName']}#{action['keyId']}#{action['type']}"
    return items(stack)[(f"RUN#{run_id}", sk)]


def action_items(stack: Stack, run_id: str = RUN_ID) -> list[dict[str, Any]]:
    return [item for item in stack.ledger_items() if item["pk"] == f"RUN#{run_id}" and item.get("kind") == "action"]


def delivery_item(stack: Stack, account_id: str, user: str) -> dict[str, Any] | None:
    return items(stack).get((f"DELIVERY#{account_id}", f"USER#{user}"))


def spy(aws: LocalAws, service: str, operation: str) -> list[dict[str, Any]]:
    """The parameters of every ``operation`` call from now on (an injected fault that never fires)."""
    seen: list[dict[str, Any]] = []

    def watch(params: dict[str, Any]) -> bool:
        seen.append(dict(params))
        return False

    aws.faults.add(service, operation, "NeverRaised", times=1, when=watch)
    return seen


def mutations(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [call for call in calls if call not in READ_ONLY]


def daily_run_at_or_after(moment: datetime) -> str:
    """The first run of the default (daily) ScheduleExpression at or after ``moment``, as the ledger writes it."""
    daily = re.fullmatch(r"cron\(([0-9]+) ([0-9]+) \* \* \? \*\)", parameter_defaults()["ScheduleExpression"])
    assert daily, "the default schedule is daily"
    run = moment.astimezone(UTC).replace(hour=int(daily.group(2)), minute=int(daily.group(1)), second=0, microsecond=0)
    if run < moment:
        run += timedelta(days=1)
    return run.strftime("%Y-%m-%dT%H:%M:%SZ")


def near(text: str, expected: datetime, slack: timedelta = timedelta(minutes=2)) -> bool:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return abs(moment - expected) <= slack


Rotation = tuple[dict[str, str], dict[str, str], str, dict[str, Any]]


def rotate_created(stack: Stack, org: Organization) -> Rotation:
    """Alice, due for rotation, and create_key's result for her: (account, planned rotate, old key, created)."""
    account = account_doc(org, "alpha")
    (old,) = org.create_user(account["id"], "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    created = act(stack, "CreateKeyFunction", action, account)
    return account, action, old, created


def secret_name(account_id: str, user: str) -> str:
    return f"Account_{account_id}_User_{user}_AccessKey"


# -- list_accounts -------------------------------------------------------------------------------


def listing_event(stack: Stack, document: Any = None, name: str = "run-a") -> dict[str, Any]:
    return {
        "input": {} if document is None else document,
        "execution": {"name": name, "startTime": "2026-11-24T06:00:00.000Z", "stateMachineArn": stack.state_machine_arn},
    }


def run_objects(stack: Stack) -> list[str]:
    s3 = stack.admin.client("s3")
    return [obj["Key"] for obj in s3.list_objects_v2(Bucket=stack.outputs["RunBucketName"]).get("Contents", [])]


def account_list(stack: Stack, key: str) -> list[dict[str, str]]:
    s3 = stack.admin.client("s3")
    return list(json.loads(s3.get_object(Bucket=stack.outputs["RunBucketName"], Key=key)["Body"].read()))


def test_list_accounts_writes_every_active_account_to_s3_and_returns_only_where(stack: Stack, org: Organization) -> None:
    before = datetime.now(UTC)

    result = stack.invoke("ListAccountsFunction", listing_event(stack))

    assert set(result) == {"run", "accounts"}
    expires = result["run"].pop("expiresAt")
    assert result == {
        "run": {"runId": "run-a", "dryRun": False, "startedAt": "2026-11-24T06:00:00.000Z", "maxConcurrency": 10},
        "accounts": {"bucket": stack.outputs["RunBucketName"], "key": "runs/run-a/accounts.json", "count": 5},
    }
    assert isinstance(expires, str) and expires.isdigit()  # a DynamoDB TTL, in seconds
    assert abs(datetime.fromtimestamp(int(expires), UTC) - (before + timedelta(days=400))) < timedelta(minutes=2)
    listed = account_list(stack, "runs/run-a/accounts.json")
    assert [account["id"] for account in listed] == sorted({org.management_account, *org.accounts.values()})
    assert all(set(account) == {"id", "name", "email"} for account in listed)
    by_id = {account["id"]: account for account in listed}
    assert by_id[org.account("beta")] == {"id": org.account("beta"), "name": "beta", "email": "beta@example.com"}
    assert run_objects(stack) == ["runs/run-a/accounts.json"]


def test_list_accounts_takes_exactly_the_requested_accounts_in_order(stack: Stack, org: Organization) -> None:
    beta, alpha = org.account("beta"), org.account("alpha")

    result = stack.invoke("ListAccountsFunction", listing_event(stack, {"accounts": [beta, alpha, beta], "dryRun": True}))

    assert result["run"]["dryRun"] is True
    assert result["accounts"]["count"] == 2
    assert [account["id"] for account in account_list(stack, result["accounts"]["key"])] == [beta, alpha]


def test_a_dry_run_stack_stays_dry_whatever_the_input_says(aws: LocalAws, org: Organization) -> None:
    stack = aws.deploy({})  # DryRun defaults to true

    result = stack.invoke("ListAccountsFunction", listing_event(stack, {"dryRun": False}))

    assert result["run"]["dryRun"] is True


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"accounts": ["12345"]}, "'12345'"),
        ({"accounts": []}, "non-empty list"),
        ({"accounts": "123456789012"}, "non-empty list"),
        ({"dryRun": "yes"}, "dryRun"),
        ({"acounts": ["123456789012"]}, "acounts"),
        (["123456789012"], "JSON object"),
    ],
)
def test_list_accounts_refuses_a_malformed_input_naming_it(stack: Stack, org: Organization, document: Any, message: str) -> None:
    error = invoke_error(stack, "ListAccountsFunction", listing_event(stack, document))

    assert error.error_type == "KeyRotation.InvalidInput"
    assert message in error.message
    assert run_objects(stack) == []


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"input": {}}, id="no-execution"),
        pytest.param({"input": {}, "execution": {"name": "run-a"}}, id="execution-without-arn"),
        pytest.param({"input": {}, "execution": "run-a"}, id="execution-not-an-object"),
        pytest.param([], id="event-not-an-object"),
    ],
)
def test_list_accounts_refuses_a_malformed_event(stack: Stack, org: Organization, event: Any) -> None:
    error = invoke_error(stack, "ListAccountsFunction", event)

    assert error.error_type == "KeyRotation.InvalidInput"
    assert run_objects(stack) == []


def test_an_excluded_account_is_never_listed_and_cannot_be_requested(aws: LocalAws, org: Organization) -> None:
    beta = org.account("beta")
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": beta})

    listed = stack.invoke("ListAccountsFunction", listing_event(stack, name="all"))
    error = invoke_error(stack, "ListAccountsFunction", listing_event(stack, {"accounts": [beta]}, name="only-beta"))

    assert beta not in [account["id"] for account in account_list(stack, listed["accounts"]["key"])]
    assert listed["accounts"]["count"] == 4
    assert error.error_type == "KeyRotation.InvalidInput"
    assert beta in error.message and "ExcludeAccounts" in error.message
    assert run_objects(stack) == ["runs/all/accounts.json"]


@pytest.mark.parametrize("which", ["unknown", "closed"])
def test_an_account_that_is_not_an_active_member_cannot_be_requested(stack: Stack, org: Organization, which: str) -> None:
    if which == "closed":
        requested = org.account("gamma")
        stack.admin.client("organizations").close_account(AccountId=requested)
    else:
        requested = "999999999999"

    error = invoke_error(stack, "ListAccountsFunction", listing_event(stack, {"accounts": [org.account("alpha"), requested]}))

    assert error.error_type == "KeyRotation.InvalidInput"
    assert requested in error.message and org.account("alpha") not in error.message
    assert run_objects(stack) == []


@pytest.mark.parametrize(
    ("parameters", "numbers"),
    [
        ({"RotationPeriodDays": "90", "InactivePeriodDays": "90"}, "90, 90, 100"),
        ({"InactivePeriodDays": "100", "DeletePeriodDays": "100"}, "75, 100, 100"),
    ],
)
def test_list_accounts_stops_a_misconfigured_stack_before_writing_anything(
    aws: LocalAws, org: Organization, parameters: dict[str, str], numbers: str
) -> None:
    stack = aws.deploy({"DryRun": "false", **parameters})

    error = invoke_error(stack, "ListAccountsFunction", listing_event(stack))

    assert error.error_type == "KeyRotation.InvalidConfiguration"
    assert "RotationPeriodDays < InactivePeriodDays < DeletePeriodDays" in error.message
    assert numbers in error.message
    assert run_objects(stack) == []


def test_list_accounts_refuses_to_run_beside_a_running_execution(aws: LocalAws, stack: Stack, org: Organization) -> None:
    """While a real execution of the state machine is RUNNING (held inside its first Lambda call), a second
    run's ListAccounts is refused and the running one's own call is not."""
    seen: dict[str, Any] = {}

    class Held(Exception):
        """Ends the held execution once the checks are done."""

    def hold(spec: FunctionSpec, event: dict[str, Any]) -> None:
        if spec.logical_id != "ListAccountsFunction" or seen:
            return
        sfn = stack.admin.client("stepfunctions")
        running = sfn.list_executions(stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING")["executions"]
        seen["running"] = [execution["name"] for execution in running]
        try:
            stack.invoke("ListAccountsFunction", listing_event(stack, name="second"))
        except FunctionError as error:
            seen["second"] = error
        seen["itself"] = stack.invoke("ListAccountsFunction", listing_event(stack, name="first"))
        raise Held("checks done")

    aws.lambdas.before_invoke.append(hold)
    execution = stack.run({}, name="first")

    assert seen["running"] == ["first"]
    assert isinstance(seen.get("second"), FunctionError)
    assert seen["second"].error_type == "KeyRotation.AlreadyRunning"
    assert "execution first " in seen["second"].message
    assert seen["itself"]["run"]["runId"] == "first"
    assert execution.status == "FAILED"
    assert run_objects(stack) == ["runs/first/accounts.json"]  # nothing for the refused run


# -- audit_keys ----------------------------------------------------------------------------------


def test_audit_plans_in_user_order_and_records_the_plan(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    alpha = account["id"]
    (due,) = org.create_user(alpha, "due", [KeySeed(80)], tags={"email": "due-owner@example.com"})
    org.create_user(alpha, "fresh", [KeySeed(10)])
    (exempt,) = org.create_user(alpha, "holiday", [KeySeed(200)], groups=["IAMKeyRotationExemptionGroup"])
    old_inactive, _ = org.create_user(alpha, "retired", [KeySeed(105, "Inactive"), KeySeed(30)])
    old_active, _ = org.create_user(alpha, "switching", [KeySeed(95), KeySeed(20)])
    org.create_user(alpha, "keyless")
    before = {user: keys_of(org, alpha, user) for user in ("due", "retired", "switching")}

    with aws.calls.record() as calls:
        result = stack.invoke("AuditKeysFunction", {"account": account, "run": run_doc()})
    result["plan"] = plan_of(stack, RUN_ID, alpha, result["actions"])

    assert set(result) == {"actions", "notify", "counts", "plan"}
    assert (result["actions"], result["notify"]) == (3, True)  # the actions themselves are in the ledger
    assert [(a["type"], a["userName"], a["keyId"]) for a in result["plan"]] == [
        ("rotate", "due", due),
        ("delete", "retired", old_inactive),
        ("disable", "switching", old_active),
    ]
    assert all(action["reason"] for action in result["plan"])
    assert result["counts"] == {
        "usersWithKeys": 5,
        "usersRead": 4,  # not "fresh", whose key the credential report shows young
        "actions": 3,
        "deferred": 0,
        "disable-soon": 0,
        "blocked": 0,
        "exempt": 1,
        "exemption-expiring": 0,
        "invalid-tag": 0,
        "reenabled": 0,
    }
    recorded = {item["sk"]: item for item in stack.ledger_items() if item["pk"] == f"RUN#{RUN_ID}"}
    assert {item["status"] for item in recorded.values() if item["kind"] == "action"} == {"planned"}
    assert recorded[f"ACCOUNT#{alpha}#ACTION#due#{due}#rotate"]["ownerEmail"] == "due-owner@example.com"
    assert recorded[f"ACCOUNT#{alpha}#ACTION#due#{due}#rotate"]["dryRun"] is False
    assert recorded[f"ACCOUNT#{alpha}#NOTICE#holiday#-#exempt"]["kind"] == "notice"
    # The Active keys over 90 days (CIS 1.14), exempt or not; not the Inactive one, nor the 80-day one.
    assert recorded[f"ACCOUNT#{alpha}#OVERDUE"]["keyIds"] == sorted([exempt, old_active])
    assert recorded[f"ACCOUNT#{alpha}#OVERDUE"]["kind"] == "overdue"
    assert len(recorded) == 5
    # Audit only reads: the keys are as they were, and no mutating call was made.
    assert {user: keys_of(org, alpha, user) for user in before} == before
    # Its only writes are the stack's own: the ledger, and the account's inventory fragment in the run bucket.
    assert {call for call in mutations(calls)} == {
        ("dynamodb", "UpdateItem"), ("dynamodb", "BatchWriteItem"), ("s3", "PutObject")
    }


def test_audit_counts_overdue_keys_of_users_it_does_not_read_from_the_credential_report(
    aws: LocalAws, org: Organization
) -> None:
    # Rotation at 100 days: a 95-day Active key breaks the 90-day rule (CIS 1.14) while nothing is due for it.
    periods = {"RotationPeriodDays": "100", "InactivePeriodDays": "120", "DeletePeriodDays": "130"}
    stack = aws.deploy({"DryRun": "false", **periods})
    account = account_doc(org, "alpha")
    alpha = account["id"]
    org.create_user(alpha, "waiting", [KeySeed(95)])
    (due,) = org.create_user(alpha, "due", [KeySeed(105)])
    org.create_user(alpha, "young", [KeySeed(20), KeySeed(150, "Inactive")])

    with aws.calls.record() as calls:
        result = audit(stack, account)

    assert result["counts"]["usersRead"] == 1 and [a["userName"] for a in result["plan"]] == ["due"]
    assert calls.count(("iam", "ListAccessKeys")) == 1  # counting the others cost no call
    item = next(i for i in stack.ledger_items() if i["pk"] == f"RUN#{RUN_ID}" and i["sk"].endswith("#OVERDUE"))
    assert (item["kind"], item["keyIds"], item["unread"]) == ("overdue", [due], 1)


def test_audit_with_nothing_overdue_writes_no_overdue_item(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    org.create_user(account["id"], "young", [KeySeed(20)])

    audit(stack, account)

    assert not [item for item in stack.ledger_items() if item["sk"].endswith("#OVERDUE")]


def test_every_item_but_the_accounts_result_has_a_kind_from_record_kind(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    account = account_doc(org, "alpha")
    org.create_user(account["id"], "due", [KeySeed(80)], tags={"email": "due-owner@example.com"})
    org.create_user(account["id"], "retired", [KeySeed(105, "Inactive"), KeySeed(30)])
    org.create_user(account["id"], "twins", [KeySeed(20), KeySeed(20)])  # read in full, found quiet: a quiet mark
    audit(stack, account)
    record_result(stack, RUN_ID, account["id"])

    kinds = {item["pk"].partition("#")[0]: set() for item in stack.ledger_items()}
    for item in stack.ledger_items():
        if item["sk"] != f"ACCOUNT#{account['id']}":
            kinds[item["pk"].partition("#")[0]].add(item.get("kind"))
    assert kinds["PLAN"] == {RecordKind.PLAN} and kinds["DELIVERY"] == {RecordKind.DELIVERY}
    assert kinds["RUN"] <= {kind.value for kind in RecordKind}


def test_audit_defers_what_exceeds_max_actions_per_account(aws: LocalAws, org: Organization) -> None:
    stack = aws.deploy({"DryRun": "false", "MaxActionsPerAccount": "1"})
    account = account_doc(org, "alpha")
    (first,) = org.create_user(account["id"], "a-first", [KeySeed(80)])
    (second,) = org.create_user(account["id"], "b-second", [KeySeed(80)])

    result = audit(stack, account)

    assert [action["keyId"] for action in result["plan"]] == [first]
    assert result["counts"]["actions"] == 1 and result["counts"]["deferred"] == 1
    notices = [item for item in stack.ledger_items() if item.get("kind") == "notice"]
    assert [(item["type"], item["keyId"]) for item in notices] == [("deferred", second)]


def test_a_dry_run_audit_still_records_the_planned_actions(stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    (old,) = org.create_user(account["id"], "alice", [KeySeed(80)])

    result = audit(stack, account, run_doc(dry_run=True))

    assert [(a["type"], a["keyId"]) for a in result["plan"]] == [("rotate", old)]
    (item,) = action_items(stack)
    assert (item["status"], item["dryRun"], item["keyId"]) == ("planned", True, old)
    assert keys_of(org, account["id"], "alice") == {old: "Active"}


@pytest.mark.parametrize("dry_run", [False, True])
def test_audit_records_a_re_enable_it_finds_once_and_only_in_a_real_run(
    stack: Stack, org: Organization, dry_run: bool
) -> None:
    from keyrotation.ledger import Ledger

    account = account_doc(org, "alpha")
    alpha = account["id"]
    old, current = org.create_user(alpha, "alice", [KeySeed(93), KeySeed(20)])
    ledger = Ledger(stack.outputs["LedgerTableName"])
    with time_machine.travel(datetime.now(UTC) - timedelta(days=2)):  # the product disabled it...
        ledger.record_disable_done(alpha, "alice", old, ledger.record_disabled(alpha, "alice", old))
    # ...and a person re-enabled it since (the seeded key is Active)

    first = audit(stack, account, run_doc(dry_run=dry_run))
    again = audit(stack, account, run_doc("run-2", dry_run=dry_run))

    assert first["actions"] == again["actions"] == 0  # the first re-enable is honoured
    assert first["counts"]["reenabled"] == 1
    found = {key_id for key_id, _ in ledger.delivery(alpha, "alice").reenabled}
    assert found == (set() if dry_run else {old})
    assert again["counts"]["reenabled"] == (1 if dry_run else 0)  # told once, in a real run
    notices = [item for item in stack.ledger_items() if item.get("type") == "reenabled"]
    assert notices and all(item["keyId"] == old for item in notices)
    assert keys_of(org, alpha, "alice") == {old: "Active", current: "Active"}


def test_auditing_twice_plans_the_same_and_records_it_once(stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    org.create_user(account["id"], "alice", [KeySeed(80)])

    first, second = audit(stack, account), audit(stack, account)

    assert first == second
    assert len(action_items(stack)) == 1


# -- create_key ----------------------------------------------------------------------------------


def test_create_key_writes_the_new_key_to_the_pending_version_and_returns_ids_only(
    stack: Stack, org: Organization, leak_check: LeakCheck
) -> None:
    account, action, old, created = rotate_created(stack, org)
    alpha, name = account["id"], secret_name(account["id"], "alice")

    # Ids only: the next steps use the user's unique id and the secret CreateKey checked, rather than read them again.
    assert set(created) == {"status", "newKeyId", "versionId", "userId", "secretArn", "current"}
    assert created["status"] == "created"
    assert created["current"] == "new"  # the secret's first version: Secrets Manager made it AWSCURRENT already
    assert KEY_ID.match(created["newKeyId"]) and VERSION_ID.match(created["versionId"])
    assert created["userId"] == user_id(org, alpha, "alice")
    assert created["secretArn"] == secrets_client(org, alpha).describe_secret(SecretId=name)["ARN"]
    assert len(json.dumps(created)) < 300
    new = created["newKeyId"]
    assert keys_of(org, alpha, "alice") == {old: "Active", new: "Active"}
    assert secret_names(org, alpha) == [name]
    assert "AWSPENDING" in stages(org, alpha, name)[created["versionId"]]
    stored = json.loads(secrets_client(org, alpha).get_secret_value(SecretId=name, VersionId=created["versionId"])["SecretString"])
    assert stored == {"AccessKeyId": new, "SecretAccessKey": secret_of(alpha, new)}
    assert leak_check.secrets[secret_of(alpha, new)] == new  # the leak check at the end knows this secret
    item = action_item(stack, alpha, action)
    assert (item["status"], item["newKeyId"], item["secretName"]) == ("created", new, name)
    delivery = delivery_item(stack, alpha, "alice")
    assert delivery is not None
    assert (delivery["pendingKeyId"], delivery["pendingRunId"]) == (new, RUN_ID)
    assert near(delivery["pendingSince"], datetime.now(UTC))
    assert "deliveredKeyId" not in delivery


def test_the_secret_is_readable_only_by_its_user_and_public_policies_are_blocked(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    org.create_user(account["id"], "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    requests = spy(aws, "secretsmanager", "PutResourcePolicy")

    act(stack, "CreateKeyFunction", action, account)

    alice = user_arn(org, account["id"], "alice")
    name = secret_name(account["id"], "alice")
    arn = secrets_client(org, account["id"]).describe_secret(SecretId=name)["ARN"]
    assert [(request["SecretId"], request["BlockPublicPolicy"]) for request in requests] == [(arn, True)]
    document = json.loads(secrets_client(org, account["id"]).get_resource_policy(SecretId=name)["ResourcePolicy"])
    allows = [statement for statement in document["Statement"] if statement["Effect"] == "Allow"]
    assert [statement["Principal"] for statement in allows] == [{"AWS": alice}]
    # Exactly the document tests/unit/test_secret_policy.py evaluates: the user (bound to its UserId) reads;
    # the member role writes and reads AWSPENDING only; every other principal is denied every action.
    role = f"arn:aws:iam::{account['id']}:role/{ROLE}"
    assert document == secret_policy.user_only_policy(alice, user_id(org, account["id"], "alice"), role)


def user_id(org: Organization, account_id: str, user: str) -> str:
    return str(org.client("iam", account_id).get_user(UserName=user)["User"]["UserId"])


def secret_state(org: Organization, account_id: str, name: str) -> dict[str, Any]:
    """What someone else's secret holds: description, tags, versions, policy (never a value)."""
    client = secrets_client(org, account_id)
    described = client.describe_secret(SecretId=name)
    return {
        "arn": described["ARN"],
        "description": described.get("Description"),
        "tags": sorted((tag["Key"], tag["Value"]) for tag in described.get("Tags", [])),
        "versions": described.get("VersionIdsToStages", {}),
        "policy": client.get_resource_policy(SecretId=name).get("ResourcePolicy"),
    }


def test_a_user_named_like_another_users_secret_gets_a_secret_of_its_own(stack: Stack, org: Organization) -> None:
    """'ops_admin_hdc4d8368' is a valid IAM user name, and was the secret name of user 'ops,admin'."""
    account = account_doc(org, "alpha")
    alpha = account["id"]
    org.create_user(alpha, "ops,admin", [KeySeed(80)])
    org.create_user(alpha, "ops_admin_hdc4d8368", [KeySeed(80)])
    actions = audit(stack, account)["plan"]

    results = {action["userName"]: act(stack, "CreateKeyFunction", action, account) for action in actions}

    assert len(secret_names(org, alpha)) == 2, secret_names(org, alpha)
    client = secrets_client(org, alpha)
    for user in ("ops,admin", "ops_admin_hdc4d8368"):
        (name,) = [
            secret["Name"]
            for secret in client.list_secrets()["SecretList"]
            if {"Key": "UserId", "Value": user_id(org, alpha, user)} in secret.get("Tags", [])
        ]
        version = results[user]["versionId"]
        stored = json.loads(client.get_secret_value(SecretId=name, VersionId=version)["SecretString"])
        assert stored["AccessKeyId"] == results[user]["newKeyId"]
        policy = json.loads(client.get_resource_policy(SecretId=name)["ResourcePolicy"])
        readers = [s["Principal"] for s in policy["Statement"] if s["Effect"] == "Allow"]
        assert readers == [{"AWS": user_arn(org, alpha, user)}]


def test_a_secret_someone_else_made_under_the_product_name_is_never_written(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    alpha, name = account["id"], secret_name(account["id"], "alice")
    (old,) = org.create_user(alpha, "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    # Made by someone else, even with the tags the product would set: it is still not the product's.
    secrets_client(org, alpha).create_secret(
        Name=name,
        Description="made by hand",
        SecretString="placeholder",
        Tags=[
            {"Key": "ManagedBy", "Value": "iam-key-rotation"},
            {"Key": "UserName", "Value": "alice"},
            {"Key": "UserId", "Value": user_id(org, alpha, "alice")},
        ],
    )
    before = secret_state(org, alpha, name)

    with aws.calls.record() as calls:
        error = invoke_error(stack, "CreateKeyFunction", {"action": action, "account": account, "run": run_doc()})

    assert error.error_type == "KeyRotation.SecretConflict"
    assert name in error.message and "alice" in error.message
    assert ("iam", "CreateAccessKey") not in calls
    assert [call for call in mutations(calls) if call[0] == "secretsmanager"] == []
    assert keys_of(org, alpha, "alice") == {old: "Active"}
    assert secret_state(org, alpha, name) == before
    assert delivery_item(stack, alpha, "alice") is None  # no rotation was even started


def test_a_user_recreated_under_the_same_name_does_not_get_the_old_users_secret(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    account = account_doc(org, "alpha")
    alpha, name = account["id"], secret_name(account["id"], "alice")
    account, action, old, created = rotate_created(stack, org)
    act(stack, "VerifyKeyFunction", action, account, created=created)
    act(stack, "StoreSecretFunction", action, account, created=created)
    iam = org.client("iam", alpha)
    for key_id in keys_of(org, alpha, "alice"):
        iam.delete_access_key(UserName="alice", AccessKeyId=key_id)
    iam.delete_user(UserName="alice")
    (again,) = org.create_user(alpha, "alice", [KeySeed(80)])  # someone else, with a new UserId
    run = run_doc("run-2")
    (rotate,) = planned(stack, account, "alice", run)
    assert (rotate["type"], rotate["keyId"]) == ("rotate", again)
    before = secret_state(org, alpha, name)

    with aws.calls.record() as calls:
        error = invoke_error(stack, "CreateKeyFunction", {"action": rotate, "account": account, "run": run})

    assert error.error_type == "KeyRotation.SecretConflict"
    assert name in error.message and user_id(org, alpha, "alice") in error.message
    assert ("iam", "CreateAccessKey") not in calls
    assert keys_of(org, alpha, "alice") == {again: "Active"}
    assert secret_state(org, alpha, name) == before

    # A person deletes the earlier user's secret: the new user gets a secret of their own.
    secrets_client(org, alpha).delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    created = act(stack, "CreateKeyFunction", rotate, account, run)
    assert created["status"] == "created"
    tags = {tag["Key"]: tag["Value"] for tag in secrets_client(org, alpha).describe_secret(SecretId=name)["Tags"]}
    assert tags["UserId"] == user_id(org, alpha, "alice")
    record = delivery_item(stack, alpha, "alice")
    assert record is not None and record["userId"] == user_id(org, alpha, "alice")
    assert "deliveredKeyId" not in record, "what was delivered to the earlier alice is forgotten"
    assert record["secretArn"] == secrets_client(org, alpha).describe_secret(SecretId=name)["ARN"]


def test_a_secret_replaced_after_create_key_is_neither_read_nor_written(stack: Stack, org: Organization) -> None:
    account, action, old, created = rotate_created(stack, org)
    alpha, name = account["id"], secret_name(account["id"], "alice")
    client = secrets_client(org, alpha)
    tags = client.describe_secret(SecretId=name).get("Tags", [])
    client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    client.create_secret(Name=name, Tags=tags)  # the same name and tags; not the secret the product made
    before = secret_state(org, alpha, name)
    event = {"action": action, "account": account, "run": run_doc(), "created": created}

    verify = invoke_error(stack, "VerifyKeyFunction", event)
    store = invoke_error(stack, "StoreSecretFunction", event)
    discarded = act(stack, "DiscardNewKeyFunction", action, account, created=created)

    assert verify.error_type == store.error_type == "KeyRotation.SecretConflict"
    assert name in verify.message and name in store.message
    assert secret_state(org, alpha, name) == before
    assert discarded == {"status": "discarded", "newKeyId": created["newKeyId"]}
    assert keys_of(org, alpha, "alice") == {old: "Active"}


def test_a_secret_created_just_before_a_failure_is_known_by_its_token_on_the_retry(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    """CreateKey records a token, creates the secret with it, then fails before the ARN is recorded."""
    account = account_doc(org, "alpha")
    alpha, name = account["id"], secret_name(account["id"], "alice")
    (old,) = org.create_user(alpha, "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    aws.faults.add("iam", "CreateAccessKey", "ServiceFailure", times=1, status=500)

    failed = invoke_error(stack, "CreateKeyFunction", {"action": action, "account": account, "run": run_doc()})
    record = delivery_item(stack, alpha, "alice")
    created = act(stack, "CreateKeyFunction", action, account)

    assert failed.error_type == "KeyRotation.TransientAwsError"
    assert record is not None and "secretArn" not in record and record["secretToken"]
    assert created["status"] == "created"
    assert secret_names(org, alpha) == [name]
    assert delivery_item(stack, alpha, "alice")["secretArn"] == secrets_client(org, alpha).describe_secret(  # type: ignore[index]
        SecretId=name
    )["ARN"]
    assert keys_of(org, alpha, "alice") == {old: "Active", created["newKeyId"]: "Active"}


def test_creating_again_creates_nothing_and_says_skipped(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, old, created = rotate_created(stack, org)

    with aws.calls.record() as calls:
        again = act(stack, "CreateKeyFunction", action, account)

    assert again["status"] == "skipped"
    assert set(again) == {"status", "reason"} and action["keyId"] in again["reason"]
    assert ("iam", "CreateAccessKey") not in calls
    assert keys_of(org, account["id"], "alice") == {old: "Active", created["newKeyId"]: "Active"}
    # The run's record still says what the first call did.
    assert action_item(stack, account["id"], action)["status"] == "created"
    assert delivery_item(stack, account["id"], "alice")["pendingKeyId"] == created["newKeyId"]  # type: ignore[index]


def test_a_user_who_made_a_second_key_since_the_audit_is_skipped(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    (old,) = org.create_user(account["id"], "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    own = org.add_key(account["id"], "alice", KeySeed(0))

    with aws.calls.record() as calls:
        result = act(stack, "CreateKeyFunction", action, account)

    assert result["status"] == "skipped"
    assert ("iam", "CreateAccessKey") not in calls
    assert keys_of(org, account["id"], "alice") == {old: "Active", own: "Active"}
    assert delivery_item(stack, account["id"], "alice") is None


def test_create_key_reads_an_exemption_tag_afresh_and_takes_the_groups_as_the_audit_read_them(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    """An exemption by tag made since the audit holds the rotation back (GetUser returns the tags). One by group is
    the audit's reading, minutes old: the rotation goes on, and no key is lost (the old key stays Active; DisableKey,
    which retires it, reads the groups again)."""
    account = account_doc(org, "alpha")
    alpha = account["id"]
    (tagged_key,) = org.create_user(alpha, "tagged", [KeySeed(80)])
    (grouped_old,) = org.create_user(alpha, "grouped", [KeySeed(80)])
    plan = audit(stack, account)["plan"]
    tagged, grouped = (next(a for a in plan if a["userName"] == user) for user in ("tagged", "grouped"))
    iam = org.client("iam", alpha)
    iam.tag_user(UserName="tagged", Tags=[{"Key": "key-rotation:exempt", "Value": "true"}])
    iam.create_group(GroupName="IAMKeyRotationExemptionGroup")
    iam.add_user_to_group(GroupName="IAMKeyRotationExemptionGroup", UserName="grouped")

    with aws.calls.record() as calls:
        held_back = act(stack, "CreateKeyFunction", tagged, account)
        rotated = act(stack, "CreateKeyFunction", grouped, account)

    assert held_back["status"] == "skipped" and keys_of(org, alpha, "tagged") == {tagged_key: "Active"}
    assert ("iam", "ListGroupsForUser") not in calls
    assert rotated["status"] == "created"
    assert keys_of(org, alpha, "grouped") == {grouped_old: "Active", rotated["newKeyId"]: "Active"}


def test_whatever_the_policy_says_a_user_with_two_keys_never_gets_a_third(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    account = account_doc(org, "alpha")
    old, newer = org.create_user(account["id"], "alice", [KeySeed(95), KeySeed(20)])
    action = {"type": "rotate", "userName": "alice", "keyId": newer, "reason": "a policy bug wants it"}
    aws.lambdas.patch("keyrotation.policy", "wants", lambda *args: True)  # the policy goes wrong: the backstop must hold

    with aws.calls.record() as calls:
        error = invoke_error(stack, "CreateKeyFunction", {"action": action, "account": account, "run": run_doc()})

    assert error.error_type == "KeyRotation.NoFreeKeySlot"
    assert "alice" in error.message and account["id"] in error.message
    assert ("iam", "CreateAccessKey") not in calls
    assert keys_of(org, account["id"], "alice") == {old: "Active", newer: "Active"}
    assert delivery_item(stack, account["id"], "alice") is None  # no rotation was even started


def notices_of(stack: Stack, user: str, run_id: str) -> list[dict[str, Any]]:
    return [
        item
        for item in stack.ledger_items()
        if item["pk"] == f"RUN#{run_id}" and item.get("kind") == "notice" and item.get("userName") == user
    ]


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("LimitExceeded", 409, "KeyRotation.NoFreeKeySlot"),  # the user made a second key by hand meanwhile
        ("AccessDenied", 403, "ClientError"),  # a service control policy
        ("Throttling", 400, "KeyRotation.Throttled"),
    ],
)
def test_a_refused_create_access_key_leaves_no_rotation_behind(
    aws: LocalAws, stack: Stack, org: Organization, code: str, status: int, raised: str
) -> None:
    account = account_doc(org, "alpha")
    alpha = account["id"]
    (old,) = org.create_user(alpha, "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    made: list[str] = []

    def refuse(params: dict[str, Any]) -> bool:
        if code == "LimitExceeded":  # straight in moto: an AWS call from inside a fault would wait for the fault
            made.append(moto_iam.iam_backends[alpha]["aws"].create_access_key("alice").access_key_id)
        return True

    aws.faults.add("iam", "CreateAccessKey", code, times=1, status=status, when=refuse)

    error = invoke_error(stack, "CreateKeyFunction", {"action": action, "account": account, "run": run_doc()})
    own = made[0] if made else org.add_key(alpha, "alice", KeySeed(0))  # the user's own key, minutes later

    assert error.error_type == raised and code in error.message
    record = delivery_item(stack, alpha, "alice")
    assert record is not None and not {"pendingKeyId", "pendingSince", "pendingRunId"} & set(record)
    later = run_doc("run-2")
    assert planned(stack, account, "alice", later) == [], "the user's own key is the replacement: nothing to do"
    assert notices_of(stack, "alice", "run-2") == []
    assert keys_of(org, alpha, "alice") == {old: "Active", own: "Active"}


def test_a_key_of_unknown_origin_is_never_deleted_on_a_guess(aws: LocalAws, stack: Stack, org: Organization) -> None:
    """CreateAccessKey timed out (it may or may not have made a key); then the user made one by hand."""
    account = account_doc(org, "alpha")
    alpha = account["id"]
    (old,) = org.create_user(alpha, "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    aws.faults.add("iam", "CreateAccessKey", "ServiceFailure", times=1, status=500)

    error = invoke_error(stack, "CreateKeyFunction", {"action": action, "account": account, "run": run_doc()})
    own = org.add_key(alpha, "alice", KeySeed(0))
    later = run_doc("run-2")
    plan = planned(stack, account, "alice", later)

    assert error.error_type == "KeyRotation.TransientAwsError"
    assert plan == [], "a key the product cannot prove it made is neither disabled nor deleted"
    (blocked,) = notices_of(stack, "alice", "run-2")
    assert blocked["type"] == "blocked" and own in blocked["detail"] and RUN_ID in blocked["detail"]
    assert "due" not in blocked, "it does not clear by itself: a person resolves it"
    assert keys_of(org, alpha, "alice") == {old: "Active", own: "Active"}


def test_a_key_that_cannot_be_written_to_the_secret_is_taken_back(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    (old,) = org.create_user(account["id"], "alice", [KeySeed(80)])
    (action,) = planned(stack, account, "alice")
    writes = spy(aws, "secretsmanager", "PutSecretValue")
    aws.faults.add("secretsmanager", "PutSecretValue", "AccessDeniedException", times=1)

    with aws.calls.record() as calls:
        error = invoke_error(stack, "CreateKeyFunction", {"action": action, "account": account, "run": run_doc()})

    assert error.error_type == "KeyRotation.DeliveryFailed"
    (attempt,) = writes
    new = json.loads(attempt["SecretString"])["AccessKeyId"]
    assert new in error.message and secret_name(account["id"], "alice") in error.message
    assert "AccessDeniedException" in error.message
    assert json.loads(attempt["SecretString"])["SecretAccessKey"] not in error.message
    assert keys_of(org, account["id"], "alice") == {old: "Active"}
    iam_calls = [operation for service, operation in calls if service == "iam" and operation.endswith("AccessKey")]
    assert iam_calls == ["CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"]  # disabled before deleted
    delivery = delivery_item(stack, account["id"], "alice")
    assert delivery is not None and not {"pendingKeyId", "pendingSince", "pendingRunId"} & set(delivery)
    assert action_item(stack, account["id"], action)["status"] == "planned"  # the state machine records the failure


# -- verify_key ----------------------------------------------------------------------------------


def test_verify_signs_with_the_new_key_and_says_verified(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, old, created = rotate_created(stack, org)

    with aws.calls.record() as calls:
        result = act(stack, "VerifyKeyFunction", action, account, created=created)

    assert result == {"status": "verified"}
    assert ("sts", "GetCallerIdentity") in calls
    assert mutations(calls) == []
    assert keys_of(org, account["id"], "alice") == {old: "Active", created["newKeyId"]: "Active"}


def test_verify_says_not_yet_valid_while_sts_refuses_the_key_then_verifies(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, _, created = rotate_created(stack, org)
    aws.faults.add("sts", "GetCallerIdentity", "InvalidClientTokenId", times=1)

    error = invoke_error(stack, "VerifyKeyFunction", {"action": action, "account": account, "run": run_doc(), "created": created})
    retried = act(stack, "VerifyKeyFunction", action, account, created=created)

    assert error.error_type == "KeyRotation.KeyNotYetValid"
    assert created["newKeyId"] in error.message and "InvalidClientTokenId" in error.message
    assert retried == {"status": "verified"}


def test_verify_refuses_a_version_that_holds_another_key(stack: Stack, org: Organization) -> None:
    account, action, old, created = rotate_created(stack, org)

    error = invoke_error(
        stack, "VerifyKeyFunction",
        {"action": action, "account": account, "run": run_doc(), "created": {**created, "newKeyId": old}},
    )

    assert error.error_type == "KeyRotation.DeliveryFailed"
    assert old in error.message and created["versionId"] in error.message


# -- store_secret --------------------------------------------------------------------------------


def test_store_makes_the_verified_version_current_and_records_the_delivery(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, old, created = rotate_created(stack, org)
    alpha, name, new = account["id"], secret_name(account["id"], "alice"), created["newKeyId"]
    act(stack, "VerifyKeyFunction", action, account, created=created)
    policies = spy(aws, "secretsmanager", "PutResourcePolicy")

    result = act(stack, "StoreSecretFunction", action, account, created=created)

    assert result == {"status": "done", "newKeyId": new}
    assert policies == []  # the user-only policy was applied by CreateKey, before the key was written
    assert stages(org, alpha, name) == {created["versionId"]: ["AWSCURRENT"]}
    current = json.loads(secrets_client(org, alpha).get_secret_value(SecretId=name)["SecretString"])
    assert current["AccessKeyId"] == new
    tags = {tag["Key"]: tag["Value"] for tag in secrets_client(org, alpha).describe_secret(SecretId=name)["Tags"]}
    assert {key: tags[key] for key in ("UserName", "AccessKeyId", "ManagedBy")} == {
        "UserName": "alice", "AccessKeyId": new, "ManagedBy": "iam-key-rotation"
    }
    delivery = delivery_item(stack, alpha, "alice")
    assert delivery is not None
    assert delivery["deliveredKeyId"] == new
    assert delivery["secretArn"].startswith(f"arn:aws:secretsmanager:{REGION}:{alpha}:secret:{name}")
    assert not {"pendingKeyId", "pendingSince", "pendingRunId"} & set(delivery)
    item = action_item(stack, alpha, action)
    made = next(
        key["CreateDate"]
        for key in org.client("iam", alpha).list_access_keys(UserName="alice")["AccessKeyMetadata"]
        if key["AccessKeyId"] == new
    )
    assert (item["status"], item["newKeyId"]) == ("done", new)
    # The dates of the runs that do it: I-R days after the new key (later than old + I), the last run before.
    assert item["disableOn"] == daily_run_at_or_after(made + timedelta(days=15) - timedelta(days=1))
    assert item["deleteOn"] == daily_run_at_or_after(made + timedelta(days=25) - timedelta(days=1))
    assert keys_of(org, alpha, "alice") == {old: "Active", new: "Active"}  # the old key keeps working for now


def test_storing_again_leaves_the_same_current_version(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, _, created = rotate_created(stack, org)
    name = secret_name(account["id"], "alice")
    act(stack, "StoreSecretFunction", action, account, created=created)
    labels = stages(org, account["id"], name)

    with aws.calls.record() as calls:
        again = act(stack, "StoreSecretFunction", action, account, created=created)

    assert again == {"status": "done", "newKeyId": created["newKeyId"]}
    assert stages(org, account["id"], name) == labels == {created["versionId"]: ["AWSCURRENT"]}
    # Taking AWSPENDING off is tried once and refused (it is no longer there); the labels are then read, and
    # nothing is moved.
    assert calls.count(("secretsmanager", "UpdateSecretVersionStage")) == 1
    assert ("secretsmanager", "DescribeSecret") in calls
    assert action_item(stack, account["id"], action)["status"] == "done"


def test_a_later_rotation_keeps_the_previous_key_as_awsprevious(stack: Stack, org: Organization) -> None:
    """The user already has a delivered secret: the new version is only pending until it is stored."""
    account = account_doc(org, "alpha")
    alpha, name = account["id"], secret_name(account["id"], "alice")
    (old,) = org.create_user(alpha, "alice", [KeySeed(80)])
    first = earlier.delivered_before(stack.admin, stack.outputs["LedgerTableName"], alpha, "alice", old)
    (action,) = planned(stack, account, "alice")

    created = act(stack, "CreateKeyFunction", action, account)
    pending = stages(org, alpha, name)
    act(stack, "VerifyKeyFunction", action, account, created=created)
    act(stack, "StoreSecretFunction", action, account, created=created)

    assert pending == {first: ["AWSCURRENT"], created["versionId"]: ["AWSPENDING"]}
    assert stages(org, alpha, name) == {first: ["AWSPREVIOUS"], created["versionId"]: ["AWSCURRENT"]}


def test_a_new_key_gone_before_it_is_verified_is_never_delivered(stack: Stack, org: Organization) -> None:
    """The new key's existence is proved by VerifyKey's signed call, right before StoreSecret (which no longer lists
    the keys): a key disabled or deleted after CreateKey is refused there, and the state machine discards it."""
    account, action, old, created = rotate_created(stack, org)
    iam = org.client("iam", account["id"])
    iam.update_access_key(UserName="alice", AccessKeyId=created["newKeyId"], Status="Inactive")
    iam.delete_access_key(UserName="alice", AccessKeyId=created["newKeyId"])
    event = {"action": action, "account": account, "run": run_doc(), "created": created}

    error = invoke_error(stack, "VerifyKeyFunction", event)

    assert error.error_type == "KeyRotation.KeyNotYetValid"
    assert created["newKeyId"] in error.message
    assert "AWSPENDING" in stages(org, account["id"], secret_name(account["id"], "alice"))[created["versionId"]]
    assert "deliveredKeyId" not in delivery_item(stack, account["id"], "alice")  # type: ignore[operator]
    assert keys_of(org, account["id"], "alice") == {old: "Active"}


def test_a_new_key_gone_after_it_was_verified_costs_its_user_nothing(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    """StoreSecret reads no key: a key a person deletes between VerifyKey and StoreSecret (as one could a second
    after any re-read) is delivered, and the user keeps the old key: it is disabled only for a newer Active key."""
    account, action, old, created = rotate_created(stack, org)
    act(stack, "VerifyKeyFunction", action, account, created=created)
    iam = org.client("iam", account["id"])
    iam.update_access_key(UserName="alice", AccessKeyId=created["newKeyId"], Status="Inactive")
    iam.delete_access_key(UserName="alice", AccessKeyId=created["newKeyId"])

    with aws.calls.record() as calls:
        stored = act(stack, "StoreSecretFunction", action, account, created=created)
    later = run_doc("run-2")
    again = planned(stack, account, "alice", later)
    retire = {"type": "disable", "userName": "alice", "keyId": old, "reason": "forged: no newer Active key"}
    refused = act(stack, "DisableKeyFunction", retire, account, later)

    assert stored == {"status": "done", "newKeyId": created["newKeyId"]}
    assert not [call for call in calls if call[0] == "iam"], calls
    assert [(a["type"], a["keyId"]) for a in again] == [("rotate", old)]  # rotated again, never disabled
    assert refused["status"] == "skipped"
    assert keys_of(org, account["id"], "alice") == {old: "Active"}


# -- disable_key ---------------------------------------------------------------------------------


def switching_user(stack: Stack, org: Organization) -> tuple[dict[str, str], dict[str, str], str, str]:
    """A user whose old key is past its disable date: (account, planned disable, old key, new key)."""
    account = account_doc(org, "alpha")
    old, new = org.create_user(account["id"], "bob", [KeySeed(95), KeySeed(20)])
    (action,) = planned(stack, account, "bob")
    assert (action["type"], action["keyId"]) == ("disable", old)
    return account, action, old, new


def test_disable_sets_the_old_key_inactive(stack: Stack, org: Organization) -> None:
    account, action, old, new = switching_user(stack, org)

    result = act(stack, "DisableKeyFunction", action, account)

    assert result == {"status": "done"}
    assert keys_of(org, account["id"], "bob") == {old: "Inactive", new: "Active"}
    assert action_item(stack, account["id"], action)["status"] == "done"


def test_disable_records_its_moment_before_the_change_and_that_it_happened_after(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    from keyrotation.ledger import Ledger

    account, action, old, _ = switching_user(stack, org)
    ledger = Ledger(stack.outputs["LedgerTableName"])
    aws.faults.add("iam", "UpdateAccessKey", "ServiceFailure", times=1)
    with pytest.raises(FunctionError):
        act(stack, "DisableKeyFunction", action, account)
    failed = ledger.delivery(account["id"], "bob")
    assert [key_id for key_id, _ in failed.disabled] == [old] and failed.disabled_done == frozenset()

    act(stack, "DisableKeyFunction", action, account)  # the retry: the key was never Inactive, so no re-enable

    done = ledger.delivery(account["id"], "bob")
    assert failed.disabled <= done.disabled and done.disabled_done == {max(done.disabled)}


def test_disabling_again_does_nothing_and_keeps_the_record_of_the_first(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, old, new = switching_user(stack, org)
    act(stack, "DisableKeyFunction", action, account)

    with aws.calls.record() as calls:
        again = act(stack, "DisableKeyFunction", action, account)

    assert again["status"] == "skipped" and old in again["reason"]
    assert ("iam", "UpdateAccessKey") not in calls
    assert keys_of(org, account["id"], "bob") == {old: "Inactive", new: "Active"}
    # A retried step must not turn the run's record of what it did into "skipped".
    item = action_item(stack, account["id"], action)
    assert item["status"] == "done" and "skipReason" not in item


def test_disable_skips_a_user_who_is_gone(stack: Stack, org: Organization) -> None:
    account, action, old, new = switching_user(stack, org)
    iam = org.client("iam", account["id"])
    for key in (old, new):
        iam.delete_access_key(UserName="bob", AccessKeyId=key)
    iam.delete_user(UserName="bob")

    result = act(stack, "DisableKeyFunction", action, account)

    assert result == {"status": "skipped", "reason": "user bob no longer exists"}
    item = action_item(stack, account["id"], action)
    assert (item["status"], item["skipReason"]) == ("skipped", "user bob no longer exists")


# -- delete_key ----------------------------------------------------------------------------------


def retired_user(stack: Stack, org: Organization) -> tuple[dict[str, str], dict[str, str], str, str]:
    """A user whose Inactive old key is past its deletion date: (account, planned delete, old key, new key)."""
    account = account_doc(org, "alpha")
    old, new = org.create_user(account["id"], "carol", [KeySeed(105, "Inactive"), KeySeed(30)])
    (action,) = planned(stack, account, "carol")
    assert (action["type"], action["keyId"]) == ("delete", old)
    return account, action, old, new


def test_delete_removes_the_inactive_old_key(stack: Stack, org: Organization) -> None:
    account, action, old, new = retired_user(stack, org)

    result = act(stack, "DeleteKeyFunction", action, account)

    assert result == {"status": "done"}
    assert keys_of(org, account["id"], "carol") == {new: "Active"}
    assert action_item(stack, account["id"], action)["status"] == "done"


def test_deleting_again_does_nothing_and_keeps_the_record_of_the_first(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, old, new = retired_user(stack, org)
    act(stack, "DeleteKeyFunction", action, account)

    with aws.calls.record() as calls:
        again = act(stack, "DeleteKeyFunction", action, account)

    assert again["status"] == "skipped" and old in again["reason"]
    assert ("iam", "DeleteAccessKey") not in calls
    assert keys_of(org, account["id"], "carol") == {new: "Active"}
    assert action_item(stack, account["id"], action)["status"] == "done"


def test_a_key_re_enabled_since_the_audit_is_not_deleted(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, old, new = retired_user(stack, org)
    org.client("iam", account["id"]).update_access_key(UserName="carol", AccessKeyId=old, Status="Active")

    with aws.calls.record() as calls:
        result = act(stack, "DeleteKeyFunction", action, account)

    assert result["status"] == "skipped"
    assert ("iam", "DeleteAccessKey") not in calls
    assert keys_of(org, account["id"], "carol") == {old: "Active", new: "Active"}


def test_whatever_the_policy_says_an_active_key_is_never_deleted(
    aws: LocalAws, stack: Stack, org: Organization
) -> None:
    account = account_doc(org, "alpha")
    old, new = org.create_user(account["id"], "carol", [KeySeed(105), KeySeed(30)])
    action = {"type": "delete", "userName": "carol", "keyId": old, "reason": "a policy bug wants it"}
    aws.lambdas.patch("keyrotation.policy", "wants", lambda *args: True)

    with aws.calls.record() as calls:
        error = invoke_error(stack, "DeleteKeyFunction", {"action": action, "account": account, "run": run_doc()})

    assert error.error_type == "KeyRotation.UnsafeAction"
    assert old in error.message and "Active" in error.message
    assert ("iam", "DeleteAccessKey") not in calls
    assert keys_of(org, account["id"], "carol") == {old: "Active", new: "Active"}


def test_deleting_an_undelivered_key_clears_the_pending_rotation(stack: Stack, org: Organization) -> None:
    """A rotation that died after create_key: the next run's plan disables and deletes its key."""
    account, _, old, created = rotate_created(stack, org)
    run = run_doc("run-2")
    actions = planned(stack, account, "alice", run)
    new = created["newKeyId"]
    assert [(a["type"], a["keyId"]) for a in actions] == [("disable", new), ("delete", new), ("rotate", old)]

    results = [act(stack, f"{a['type'].capitalize()}KeyFunction", a, account, run) for a in actions[:2]]

    assert results == [{"status": "done"}, {"status": "done"}]
    assert keys_of(org, account["id"], "alice") == {old: "Active"}
    delivery = delivery_item(stack, account["id"], "alice")
    assert delivery is not None and not {"pendingKeyId", "pendingSince", "pendingRunId"} & set(delivery)
    statuses = {(item["type"], item["keyId"]): item["status"] for item in action_items(stack, "run-2")}
    assert statuses == {("disable", new): "done", ("delete", new): "done", ("rotate", old): "planned"}


# -- discard_new_key -----------------------------------------------------------------------------


def test_discard_takes_back_a_first_rotations_key_that_never_reached_its_user(stack: Stack, org: Organization) -> None:
    """The user's first secret: Secrets Manager labels its first version AWSCURRENT by itself, yet the key
    was never verified nor stored, so it is discarded."""
    account, action, old, created = rotate_created(stack, org)

    result = act(stack, "DiscardNewKeyFunction", action, account, created=created)

    assert result == {"status": "discarded", "newKeyId": created["newKeyId"]}
    assert keys_of(org, account["id"], "alice") == {old: "Active"}
    delivery = delivery_item(stack, account["id"], "alice")
    assert delivery is not None and not {"pendingKeyId", "pendingSince", "pendingRunId"} & set(delivery)
    item = action_item(stack, account["id"], action)
    assert (item["status"], item["newKeyId"]) == ("discarded", created["newKeyId"])


def test_discard_takes_back_a_pending_key_beside_a_delivered_one(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account = account_doc(org, "alpha")
    alpha, name = account["id"], secret_name(account["id"], "alice")
    (old,) = org.create_user(alpha, "alice", [KeySeed(80)])
    earlier.delivered_before(stack.admin, stack.outputs["LedgerTableName"], alpha, "alice", old)
    (action,) = planned(stack, account, "alice")
    created = act(stack, "CreateKeyFunction", action, account)

    with aws.calls.record() as calls:
        result = act(stack, "DiscardNewKeyFunction", action, account, created=created)

    assert result == {"status": "discarded", "newKeyId": created["newKeyId"]}
    assert keys_of(org, alpha, "alice") == {old: "Active"}
    iam_calls = [operation for service, operation in calls if service == "iam" and operation.endswith("AccessKey")]
    assert iam_calls == ["UpdateAccessKey", "DeleteAccessKey"]  # disabled before deleted
    assert json.loads(secrets_client(org, alpha).get_secret_value(SecretId=name)["SecretString"])["AccessKeyId"] == old


def test_discard_refuses_a_key_whose_version_is_already_current(aws: LocalAws, stack: Stack, org: Organization) -> None:
    account, action, old, created = rotate_created(stack, org)
    act(stack, "StoreSecretFunction", action, account, created=created)

    with aws.calls.record() as calls:
        result = act(stack, "DiscardNewKeyFunction", action, account, created=created)

    assert result["status"] == "skipped"
    assert created["newKeyId"] in result["reason"] and "current" in result["reason"]
    assert mutations(calls) == []
    assert keys_of(org, account["id"], "alice") == {old: "Active", created["newKeyId"]: "Active"}
    assert delivery_item(stack, account["id"], "alice")["deliveredKeyId"] == created["newKeyId"]  # type: ignore[index]
    assert action_item(stack, account["id"], action)["status"] == "done"


def test_discarding_again_changes_nothing(stack: Stack, org: Organization) -> None:
    account, action, old, created = rotate_created(stack, org)
    first = act(stack, "DiscardNewKeyFunction", action, account, created=created)

    again = act(stack, "DiscardNewKeyFunction", action, account, created=created)

    assert again == first == {"status": "discarded", "newKeyId": created["newKeyId"]}
    assert keys_of(org, account["id"], "alice") == {old: "Active"}
    assert [item["status"] for item in action_items(stack)] == ["discarded"]


# -- every action handler ------------------------------------------------------------------------


def some_action(org: Organization, type_: str = "rotate") -> tuple[dict[str, str], dict[str, str], str]:
    account = account_doc(org, "alpha")
    (old,) = org.create_user(account["id"], "alice", [KeySeed(110, "Inactive" if type_ == "delete" else "Active")])
    return account, {"type": type_, "userName": "alice", "keyId": old, "reason": "planned"}, old


CREATED = {"newKeyId": "AKIAIOSFODNN7EXAMPLE", "versionId": "00000000-0000-4000-8000-000000000000"}
MUTATING_HANDLERS = [
    pytest.param("CreateKeyFunction", "rotate", {}, id="create"),
    pytest.param("StoreSecretFunction", "rotate", {"created": CREATED}, id="store"),
    pytest.param("DisableKeyFunction", "disable", {}, id="disable"),
    pytest.param("DeleteKeyFunction", "delete", {}, id="delete"),
    pytest.param("DiscardNewKeyFunction", "rotate", {"created": CREATED}, id="discard"),
]


@pytest.mark.parametrize(("logical_id", "type_", "extra"), MUTATING_HANDLERS)
def test_in_a_dry_run_no_action_handler_mutates_anything(
    aws: LocalAws, stack: Stack, org: Organization, logical_id: str, type_: str, extra: dict[str, Any]
) -> None:
    account, action, old = some_action(org, type_)
    before = keys_of(org, account["id"], "alice")

    with aws.calls.record() as calls:
        error = invoke_error(stack, logical_id, {"action": action, "account": account, "run": run_doc(dry_run=True), **extra})

    assert error.error_type == "KeyRotation.UnsafeAction"
    assert "dry run" in error.message and old in error.message
    assert mutations(calls) == []
    assert keys_of(org, account["id"], "alice") == before
    assert secret_names(org, account["id"]) == []
    assert stack.ledger_items() == []


@pytest.mark.parametrize("logical_id", ACCOUNT_HANDLERS)
def test_a_missing_member_role_is_named_with_its_account(stack: Stack, org: Organization, logical_id: str) -> None:
    norole = account_doc(org, "norole")
    org.create_user(norole["id"], "nora", [KeySeed(80)])
    action = {"type": "rotate", "userName": "nora", "keyId": "AKIAIOSFODNN7EXAMPLE", "reason": "due"}

    error = invoke_error(
        stack, logical_id, {"action": action, "account": norole, "run": run_doc(), "created": CREATED}
    )

    assert error.error_type == "KeyRotation.MemberRoleUnavailable"
    assert f"arn:aws:iam::{norole['id']}:role/{ROLE}" in error.message
    assert f"account {norole['id']}" in error.message
    assert len(keys_of(org, norole["id"], "nora")) == 1
    assert stack.ledger_items() == []


ACTION = {"type": "rotate", "userName": "alice", "keyId": "AKIAIOSFODNN7EXAMPLE", "reason": "due"}
ACCOUNT = {"id": "111122223333", "name": "alpha", "email": "alpha@example.com"}
MALFORMED = [
    pytest.param(name, event, id=f"{name.removesuffix('Function')}-{case}")
    for name, cases in {
        "AuditKeysFunction": {
            "no-run": {"account": ACCOUNT},
            "no-run-id": {"account": ACCOUNT, "run": {"dryRun": False}},
            "no-account": {"run": run_doc()},
            "short-account-id": {"account": {**ACCOUNT, "id": "12345"}, "run": run_doc()},
            "account-not-an-object": {"account": "111122223333", "run": run_doc()},
        },
        "CreateKeyFunction": {
            "no-action": {"account": ACCOUNT, "run": run_doc()},
            "unknown-type": {"action": {**ACTION, "type": "explode"}, "account": ACCOUNT, "run": run_doc()},
            "no-reason": {"action": {k: v for k, v in ACTION.items() if k != "reason"}, "account": ACCOUNT, "run": run_doc()},
            "action-not-an-object": {"action": "rotate", "account": ACCOUNT, "run": run_doc()},
        },
        "VerifyKeyFunction": {
            "no-created": {"action": ACTION, "account": ACCOUNT, "run": run_doc()},
            "no-version": {"action": ACTION, "account": ACCOUNT, "run": run_doc(), "created": {"newKeyId": CREATED["newKeyId"]}},
        },
        "StoreSecretFunction": {
            "no-created": {"action": ACTION, "account": ACCOUNT, "run": run_doc()},
        },
        "DisableKeyFunction": {
            "no-account-id": {"action": {**ACTION, "type": "disable"}, "account": {"name": "alpha"}, "run": run_doc()},
        },
        "DeleteKeyFunction": {
            "no-run": {"action": {**ACTION, "type": "delete"}, "account": ACCOUNT},
        },
        "DiscardNewKeyFunction": {
            "no-created": {"action": ACTION, "account": ACCOUNT, "run": run_doc()},
            "no-version": {
                "action": ACTION, "account": ACCOUNT, "run": run_doc(), "created": {"newKeyId": CREATED["newKeyId"]}
            },
        },
        "SummarizeFunction": {
            "no-run": {"accounts": {"bucket": "b", "key": "k", "count": 1}},
            "no-accounts": {"run": run_doc()},
            "accounts-without-key": {"run": run_doc(), "accounts": {"bucket": "b"}},
        },
    }.items()
    for case, event in cases.items()
]


@pytest.mark.parametrize(("logical_id", "event"), MALFORMED)
def test_a_malformed_event_is_refused_as_invalid_input(
    aws: LocalAws, stack: Stack, org: Organization, logical_id: str, event: dict[str, Any]
) -> None:
    event = json.loads(json.dumps(event).replace(ACCOUNT["id"], org.account("alpha")))  # a real account, role and all
    org.create_user(org.account("alpha"), "alice", [KeySeed(110)])

    with aws.calls.record() as calls:
        error = invoke_error(stack, logical_id, event)

    assert error.error_type == "KeyRotation.InvalidInput"
    assert mutations(calls) == []
    assert len(keys_of(org, org.account("alpha"), "alice")) == 1
    assert stack.ledger_items() == []


def test_a_misconfigured_stack_makes_every_key_function_stop(aws: LocalAws, org: Organization) -> None:
    stack = aws.deploy({"DryRun": "false", "RotationPeriodDays": "90", "InactivePeriodDays": "90"})
    account = account_doc(org, "alpha")
    (old,) = org.create_user(account["id"], "alice", [KeySeed(120)])
    action = {"type": "rotate", "userName": "alice", "keyId": old, "reason": "due"}
    event = {"action": action, "account": account, "run": run_doc(), "created": CREATED}

    errors = {
        logical_id: invoke_error(stack, logical_id, event).error_type
        for logical_id in (
            "AuditKeysFunction", "CreateKeyFunction", "DisableKeyFunction", "DeleteKeyFunction", "DiscardNewKeyFunction"
        )
    }

    assert set(errors.values()) == {"KeyRotation.InvalidConfiguration"}
    assert keys_of(org, account["id"], "alice") == {old: "Active"}
    assert stack.ledger_items() == []


# -- summarize -----------------------------------------------------------------------------------


def write_account_list(stack: Stack, run_id: str, account_ids: list[str]) -> dict[str, Any]:
    bucket, key = stack.outputs["RunBucketName"], f"runs/{run_id}/accounts.json"
    body = [{"id": account_id, "name": account_id, "email": f"{account_id}@example.com"} for account_id in account_ids]
    stack.admin.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
    return {"bucket": bucket, "key": key, "count": len(account_ids)}


def record_result(
    stack: Stack, run_id: str, account_id: str, error: str | None = None, cause: str = "", notify_error: str | None = None
) -> None:
    """What the state machine's RecordAccountSuccess / RecordAccountFailure / RecordNotifyFailure states write."""
    values: dict[str, Any] = {
        ":kind": {"S": RecordKind.ACCOUNT.value},
        ":status": {"S": "FAILED" if error else "SUCCEEDED"},
        ":account": {"S": account_id},
    }
    expression = "SET #kind = :kind, #status = :status, accountId = :account"
    names = {"#kind": "kind", "#status": "status"}
    if error:
        expression += ", #error = :error, #cause = :cause"
        names.update({"#error": "error", "#cause": "cause"})
        values.update({":error": {"S": error}, ":cause": {"S": cause}})
    if notify_error:
        expression += ", notifyError = :notifyError, notifyCause = :notifyCause"
        values.update({":notifyError": {"S": notify_error}, ":notifyCause": {"S": "SES refused"}})
    stack.admin.client("dynamodb").update_item(
        TableName=stack.outputs["LedgerTableName"],
        Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": f"ACCOUNT#{account_id}"}},
        UpdateExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def carry_out(stack: Stack, account: dict[str, str], run: dict[str, Any]) -> None:
    """What the per-account workflow does with the plan: each action, a rotation in three steps."""
    for action in audit(stack, account, run)["plan"]:
        if action["type"] == "rotate":
            created = act(stack, "CreateKeyFunction", action, account, run)
            act(stack, "VerifyKeyFunction", action, account, run, created=created)
            act(stack, "StoreSecretFunction", action, account, run, created=created)
        else:
            act(stack, f"{action['type'].capitalize()}KeyFunction", action, account, run)


def test_summarize_counts_from_the_ledger_and_replays_exactly_the_failed_accounts(stack: Stack, org: Organization) -> None:
    alpha, beta, gamma = (account_doc(org, name) for name in ("alpha", "beta", "gamma"))
    run = run_doc("run-s")
    org.create_user(alpha["id"], "due", [KeySeed(80)])
    org.create_user(alpha["id"], "switching", [KeySeed(95), KeySeed(20)])
    org.create_user(alpha["id"], "retired", [KeySeed(105, "Inactive"), KeySeed(30)])
    org.create_user(alpha["id"], "holiday", [KeySeed(200)], groups=["IAMKeyRotationExemptionGroup"])
    org.create_user(alpha["id"], "soon", [KeySeed(85), KeySeed(10)])  # its old key is disabled in 5 days
    carry_out(stack, alpha, run)
    carry_out(stack, alpha, run)  # a retried account changes no count
    org.create_user(gamma["id"], "other-run", [KeySeed(95), KeySeed(20)])
    carry_out(stack, gamma, run_doc("run-other"))  # another run's items are not this run's
    record_result(stack, "run-s", alpha["id"], notify_error="KeyRotation.Throttled")  # emails failed, keys done
    record_result(stack, "run-s", beta["id"], "KeyRotation.MemberRoleUnavailable", "cannot assume the role " + "x" * 600)
    listing = write_account_list(stack, "run-s", [alpha["id"], beta["id"], gamma["id"]])

    result = stack.invoke("SummarizeFunction", {"run": run, "accounts": listing})

    assert result == {
        "summary": {
            "runId": "run-s",
            "dryRun": False,
            "accounts": {"total": 3, "succeeded": 1, "failed": 2},
            # overdue: holiday's 200-day key (exempt), still Active; switching's 95-day key was disabled
            "keys": {"rotated": 1, "disabled": 1, "deleted": 1, "warned": 1, "overdue": 1},
            "failedAccounts": [
                {"accountId": beta["id"], "error": "KeyRotation.MemberRoleUnavailable",
                 "cause": ("cannot assume the role " + "x" * 600)[:500]},
                {"accountId": gamma["id"], "error": "KeyRotation.NoResult",
                 "cause": "the account's execution recorded no result"},
            ],
            "notices": {
                "exempt": 1, "blocked": 0, "deferred": 0, "invalidTags": 0, "exemptionsExpiring": 0,
                "reenabled": 0, "notificationFailures": 1, "emailsFailed": 0,
            },
            "reports": {
                "bucket": listing["bucket"],
                "prefix": "reports/run-s/",
                "keys": [
                    "reports/run-s/actions.csv",
                    "reports/run-s/actions.json",
                    "reports/run-s/inventory.csv",
                    "reports/run-s/inventory.json",
                ],
            },
            # alpha's keys as its second audit found them: two Active keys each for due (rotated, the old one
            # in its grace days) and soon (CIS 1.13); holiday's 200-day key, exempt and overdue (CIS 1.14).
            "inventory": {"keys": 8, "compliant": 3, "exempt": 1, "blocked": 0, "overdue": 1},
        },
        "replayInput": {"accounts": [beta["id"], gamma["id"]]},
        "failure": {
            "failedAccounts": [
                {"accountId": beta["id"], "error": "KeyRotation.MemberRoleUnavailable",
                 "cause": ("cannot assume the role " + "x" * 600)[:300]},
                {"accountId": gamma["id"], "error": "KeyRotation.NoResult",
                 "cause": "the account's execution recorded no result"},
            ],
            "failedCount": 2,
            "replayInput": {"accounts": [beta["id"], gamma["id"]]},
        },
    }


def inventory_fragment(stack: Stack, run_id: str, account_id: str) -> dict[str, Any]:
    key = f"reports/{run_id}/inventory/{account_id}.json"
    body = stack.admin.client("s3").get_object(Bucket=stack.outputs["RunBucketName"], Key=key)["Body"].read()
    return dict(json.loads(body))


def test_audit_writes_every_key_of_the_account_to_the_inventory(stack: Stack, org: Organization) -> None:
    alpha = account_doc(org, "alpha")
    (due_key,) = org.create_user(alpha["id"], "due", [KeySeed(80, used_days_ago=2)])
    org.create_user(alpha["id"], "quiet", [KeySeed(100, status="Inactive"), KeySeed(20, used_days_ago=50)])
    org.create_user(alpha["id"], "holiday", [KeySeed(200, used_days_ago=1)], groups=["IAMKeyRotationExemptionGroup"])

    audit(stack, alpha, run_doc("run-inv"))

    document = inventory_fragment(stack, "run-inv", alpha["id"])
    rows = {(row["userName"], row["status"]): row for row in document["rows"]}
    assert document["accountId"] == alpha["id"] and document["accountName"] == "alpha"
    assert len(document["rows"]) == 4
    due = rows[("due", "Active")]
    assert (due["keyId"], due["nextAction"], due["ageDays"]) == (due_key, "rotate", 80)
    assert due["lastUsed"] and (due["cis112"], due["cis113"], due["cis114"], due["iam3"]) == ("PASS",) * 4
    holiday = rows[("holiday", "Active")]
    assert holiday["nextAction"] == "exempt" and "IAMKeyRotationExemptionGroup" in holiday["exemption"]
    assert (holiday["cis114"], holiday["iam3"]) == ("FAIL", "FAIL")
    # quiet has its Inactive key deleted this run (100 days): read in full, so its key ids are known.
    assert rows[("quiet", "Inactive")]["nextAction"] == "delete"
    young = rows[("quiet", "Active")]
    assert young["cis112"] == "FAIL" and young["nextAction"] == "rotate" and young["nextActionDate"] > "2026"
    assert document["totals"] == {
        "keys": 4, "compliant": 2, "exempt": 1, "blocked": 0, "overdue": 1
    }


def test_the_inventory_says_whether_a_rotated_user_took_up_the_new_key(stack: Stack, org: Organization) -> None:
    alpha = account_doc(org, "alpha")
    (old,) = org.create_user(alpha["id"], "app", [KeySeed(80, used_days_ago=1, service="s3")])
    run = run_doc("run-adopt")
    carry_out(stack, alpha, run)  # rotates app: the new key is verified (GetCallerIdentity), then delivered

    audit(stack, alpha, run)  # the same run's audit again: app is read in full

    rows = {row["keyId"]: row for row in inventory_fragment(stack, "run-adopt", alpha["id"])["rows"]}
    [new] = [key_id for key_id in rows if key_id != old]
    # The product's own verification call is no use by the user; the old key was last used before.
    assert (rows[new]["adoption"], rows[old]["adoption"]) == ("not yet", "not used since")
    assert "IAM role" in rows[old]["hint"] and "Roles Anywhere" in rows[old]["hint"]


def test_an_account_with_nothing_due_is_in_the_inventory_for_one_call_and_no_group_read(
    stack: Stack, org: Organization, aws: LocalAws
) -> None:
    alpha = account_doc(org, "alpha")
    org.create_user(alpha["id"], "young", [KeySeed(20, used_days_ago=1), KeySeed(10)])
    org.create_user(alpha["id"], "member", [KeySeed(5)], groups=["IAMKeyRotationExemptionGroup"])

    aws.lambdas.invocations.clear()
    audit(stack, alpha, run_doc("run-quiet"))

    [record] = aws.lambdas.invocations
    assert sorted(f"{service}:{operation}" for service, operation in record.calls) == [
        "dynamodb:Query", "iam:GenerateCredentialReport", "iam:GetCredentialReport", "s3:PutObject", "sts:AssumeRole"
    ]
    rows = inventory_fragment(stack, "run-quiet", alpha["id"])["rows"]
    # Not read in full: the report's slots stand for the key ids, which it does not carry.
    assert sorted((row["userName"], row["keyId"]) for row in rows) == [
        ("member", "slot 1"), ("young", "slot 1"), ("young", "slot 2")
    ]
    assert all(row["cis113"] == "FAIL" for row in rows if row["userName"] == "young")
    # What the lifecycle does next to each, as the keys stand: young's older key is disabled on day 90, then,
    # its quarantine over, deleted the day its newer key is rotated. Its tags and groups were not read.
    assert [(row["userName"], row["keyId"], row["nextAction"], row["exemption"]) for row in rows] == [
        ("member", "slot 1", "rotate", "not read this run"),
        ("young", "slot 1", "disable", "not read this run"),
        ("young", "slot 2", "rotate", "not read this run"),
    ]
    dates = {row["keyId"]: date.fromisoformat(row["nextActionDate"]) for row in rows if row["userName"] == "young"}
    assert dates["slot 2"] - dates["slot 1"] == timedelta(days=10)


def test_summarize_writes_every_action_and_blocked_user_to_the_run_bucket(stack: Stack, org: Organization) -> None:
    alpha = account_doc(org, "alpha")
    run = run_doc("run-files")
    org.create_user(alpha["id"], "=cmd", [KeySeed(80)])  # a name a spreadsheet would run as a formula
    carry_out(stack, alpha, run)
    record_result(stack, "run-files", alpha["id"])
    listing = write_account_list(stack, "run-files", [alpha["id"]])

    reports = stack.invoke("SummarizeFunction", {"run": run, "accounts": listing})["summary"]["reports"]

    s3 = stack.admin.client("s3")
    files = {key: s3.get_object(Bucket=reports["bucket"], Key=key)["Body"].read().decode() for key in reports["keys"]}
    [row] = json.loads(files["reports/run-files/actions.json"])
    assert (row["accountId"], row["accountName"], row["userName"], row["action"], row["result"]) == (
        alpha["id"], "alpha", "=cmd", "rotate", "done"
    )
    assert row["keyId"].startswith("AKIA") and row["reason"]
    header, line = files["reports/run-files/actions.csv"].splitlines()
    assert header == "accountId,accountName,userName,keyId,action,result,reason,error"
    assert f"{alpha['id']},alpha,'=cmd,{row['keyId']},rotate,done," in line


def test_summarize_of_a_clean_run_has_nothing_to_replay(stack: Stack, org: Organization) -> None:
    alpha = account_doc(org, "alpha")
    record_result(stack, RUN_ID, alpha["id"])
    listing = write_account_list(stack, RUN_ID, [alpha["id"]])

    result = stack.invoke("SummarizeFunction", {"run": run_doc(), "accounts": listing})

    assert result["summary"]["accounts"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert result["summary"]["failedAccounts"] == []
    assert result["replayInput"] == {}


def test_summarize_of_a_dry_run_counts_the_planned_actions_and_replays_dry(stack: Stack, org: Organization) -> None:
    alpha, beta = account_doc(org, "alpha"), account_doc(org, "beta")
    run = run_doc("run-dry", dry_run=True)
    org.create_user(alpha["id"], "due", [KeySeed(80)])
    org.create_user(alpha["id"], "switching", [KeySeed(95), KeySeed(20)])
    audit(stack, alpha, run)
    record_result(stack, "run-dry", alpha["id"])
    listing = write_account_list(stack, "run-dry", [alpha["id"], beta["id"]])

    result = stack.invoke("SummarizeFunction", {"run": run, "accounts": listing})

    # What would be done, under names no one can take for real actions; a dry run leaves every overdue key.
    assert result["summary"]["dryRun"] is True
    assert result["summary"]["keys"] == {"wouldRotate": 1, "wouldDisable": 1, "wouldDelete": 0, "wouldWarn": 0, "overdue": 1}
    assert [failure["accountId"] for failure in result["summary"]["failedAccounts"]] == [beta["id"]]
    assert result["replayInput"] == {"accounts": [beta["id"]], "dryRun": True}
