"""What an account costs (issue 10): calls, invocations, state transitions, state size. Not timed.

One account of 250 users, each with one key, run through the per-account workflow of the real ASL.
The figures are counts, so a change that makes the audit read users it need not, or the plan travel in
the state again, fails here rather than only in ``make bench``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from localaws import KeySeed, LocalAws, Organization, Stack
from tests import earlier

pytestmark = pytest.mark.statemachine

USERS = 250
#: The calls an account with nothing due costs its audit: AssumeRole, GenerateCredentialReport,
#: GetCredentialReport, the ledger's Query of the account's users, and the PutObject of the account's
#: inventory fragment (GetGroup, the exemption group, only when someone is read in full).
NOTHING_DUE_CALLS = 5
#: A user read in full: ListAccessKeys, ListUserTags, and GetUser (or its share of a ListUsers page).
CALLS_PER_USER_READ = 3
MAX_TRANSITIONS_NOTHING_DUE = 5
MAX_PAYLOAD = 32 * 1024
#: AWS calls the rotation's functions (CreateKey, VerifyKey, StoreSecret) make for one key, the ledger's apart.
#: A second rotation: CreateKey 5 (AssumeRole, GetUser, ListAccessKeys, CreateAccessKey, PutSecretValue),
#: VerifyKey 3 (AssumeRole, GetSecretValue, GetCallerIdentity), StoreSecret 4 (AssumeRole,
#: UpdateSecretVersionStage twice, TagResource). See README, "What a rotation costs".
ROTATION_FUNCTIONS = ("CreateKeyFunction", "VerifyKeyFunction", "StoreSecretFunction")
MAX_ROTATION_CALLS = 12
#: The first rotation also reads the secret (absent), creates it and applies its policy; StoreSecret moves one label.
MAX_FIRST_ROTATION_CALLS = 14
MAX_ROTATION_LEDGER_WRITES = 4


def seed(org: Organization, account_id: str, due_every: int | None) -> None:
    for n in range(USERS):
        age = 80 if due_every and n % due_every == 0 else 20
        org.create_user(account_id, f"user{n:04d}", [KeySeed(age, used_days_ago=1)])


def measure(aws: LocalAws, stack: Stack, account_id: str, run_id: str) -> dict[str, Any]:
    aws.lambdas.invocations.clear()
    with aws.calls.record() as calls:
        execution = stack.run_account(account_id, run_id=run_id)
    assert execution.status == "SUCCEEDED", execution.cause
    invocations = list(aws.lambdas.invocations)
    by_lambdas = Counter(f"{service}:{operation}" for record in invocations for service, operation in record.calls)
    return {
        "execution": execution,
        "invocations": Counter(record.logical_id for record in invocations),
        "audit": Counter(
            f"{service}:{operation}"
            for record in invocations
            if record.logical_id == "AuditKeysFunction"
            for service, operation in record.calls
        ),
        "lambdas": by_lambdas,
        "by function": {
            name: Counter(
                f"{service}:{operation}"
                for record in invocations
                if record.logical_id == name
                for service, operation in record.calls
            )
            for name in {record.logical_id for record in invocations}
        },
        "all": Counter(f"{service}:{operation}" for service, operation in calls),
        "transitions": sum(1 for event in execution.history if event["type"].endswith("StateEntered")),
        "largest payload": max(_payload_sizes(execution.history)),
    }


def _payload_sizes(history: list[dict[str, Any]]) -> list[int]:
    sizes = [0]
    for event in history:
        for name, details in event.items():
            if name.endswith("EventDetails") and isinstance(details, dict):
                sizes += [len(str(value).encode()) for key, value in details.items() if key in ("input", "output")]
    return sizes


@pytest.fixture
def account(aws: LocalAws, org: Organization) -> str:
    return org.account("alpha")


def test_an_account_with_nothing_due_costs_one_invocation_and_a_handful_of_calls(aws: LocalAws, org: Organization, stack: Stack, account: str) -> None:
    seed(org, account, due_every=None)

    figures = measure(aws, stack, account, "run-nothing-due")

    assert figures["invocations"] == {"AuditKeysFunction": 1}  # no Notify with nothing to say
    assert sum(figures["lambdas"].values()) <= NOTHING_DUE_CALLS, figures["lambdas"]
    assert figures["audit"]["iam:ListAccessKeys"] == 0 and figures["audit"]["iam:ListUserTags"] == 0
    assert figures["transitions"] <= MAX_TRANSITIONS_NOTHING_DUE
    # The state machine's own calls: the one invoke, and the account's result in the ledger.
    assert figures["all"]["lambda:Invoke"] == 1 and figures["all"]["dynamodb:UpdateItem"] == 1


def test_an_account_with_one_user_in_ten_due_reads_only_those_users(aws: LocalAws, org: Organization, stack: Stack, account: str) -> None:
    seed(org, account, due_every=10)
    due = USERS // 10

    figures = measure(aws, stack, account, "run-ten-percent")

    audit = figures["audit"]
    assert audit["iam:ListAccessKeys"] == due and audit["iam:ListUserTags"] == due
    assert audit["iam:GetAccessKeyLastUsed"] == 0  # the report says when each key was last used
    member_and_ledger = sum(count for op, count in audit.items() if not op.startswith("dynamodb:"))
    assert member_and_ledger <= NOTHING_DUE_CALLS + CALLS_PER_USER_READ * due, audit
    assert figures["invocations"]["AuditKeysFunction"] == 1
    assert figures["invocations"]["CreateKeyFunction"] == due
    assert figures["invocations"]["NotifyFunction"] == 1
    assert figures["largest payload"] < MAX_PAYLOAD


def test_the_state_is_the_same_size_whatever_the_plan(aws: LocalAws, org: Organization) -> None:
    alpha, beta = org.account("alpha"), org.account("beta")
    for account_id in (alpha, beta):
        for n in range(60):
            org.create_user(account_id, f"user{n:04d}", [KeySeed(120, status="Inactive")])  # 60 deletions each
    small = aws.deploy({"DryRun": "false", "MaxActionsPerAccount": "5"}, stack_name="small")
    large = aws.deploy({"DryRun": "false", "MaxActionsPerAccount": "500"}, stack_name="large")

    five = measure(aws, small, alpha, "run-five")
    sixty = measure(aws, large, beta, "run-sixty")

    assert five["invocations"]["DeleteKeyFunction"] == 5 and sixty["invocations"]["DeleteKeyFunction"] == 60
    assert sixty["largest payload"] < MAX_PAYLOAD
    assert abs(sixty["largest payload"] - five["largest payload"]) <= 16, (
        five["largest payload"],
        sixty["largest payload"],
    )


def _rotation_cost(figures: dict[str, Any]) -> tuple[int, int, dict[str, Counter[str]]]:
    """Member-account calls and ledger writes of the rotation's functions, and their calls by function."""
    steps = {name: figures["by function"].get(name, Counter()) for name in ROTATION_FUNCTIONS}
    calls = sum(n for step in steps.values() for op, n in step.items() if not op.startswith("dynamodb:"))
    writes = sum(
        n
        for step in steps.values()
        for op, n in step.items()
        if op.startswith("dynamodb:") and op.split(":")[1] not in ("GetItem", "Query", "Scan", "BatchGetItem")
    )
    return calls, writes, steps


def test_a_rotation_costs_what_it_must(aws: LocalAws, org: Organization, stack: Stack) -> None:
    alpha, beta = org.account("alpha"), org.account("beta")
    (bob_key,) = org.create_user(alpha, "bob", [KeySeed(80, used_days_ago=1)])  # no secret yet: the first rotation
    (alice_key,) = org.create_user(beta, "alice", [KeySeed(80, used_days_ago=1)])
    # An earlier rotation delivered alice's key: hers is a second rotation, AWSCURRENT moves to the new version.
    earlier.delivered_before(stack.admin, stack.outputs["LedgerTableName"], beta, "alice", alice_key)

    first = measure(aws, stack, alpha, "run-first-rotation")
    second = measure(aws, stack, beta, "run-second-rotation")

    for figures in (first, second):
        assert all(figures["invocations"][name] == 1 for name in ROTATION_FUNCTIONS), figures["invocations"]
    calls, writes, steps = _rotation_cost(second)
    assert calls <= MAX_ROTATION_CALLS, steps
    assert writes <= MAX_ROTATION_LEDGER_WRITES, steps
    # One member-account session per invocation: each function assumes the role once.
    assert all(step["sts:AssumeRole"] == 1 for step in steps.values()), steps
    # Nothing a step before it checked is read again: the secret (CreateKey: its ARN and policy are in the
    # ledger), the user's identity (VerifyKey and StoreSecret: CreateKey passed it on).
    assert steps["CreateKeyFunction"]["secretsmanager:DescribeSecret"] == 0, steps
    assert steps["CreateKeyFunction"]["secretsmanager:PutResourcePolicy"] == 0, steps
    assert steps["StoreSecretFunction"]["secretsmanager:DescribeSecret"] == 0, steps
    assert all(step["iam:GetUser"] == 0 for name, step in steps.items() if name != "CreateKeyFunction"), steps
    # The new key's existence: VerifyKey's signed call proves it, StoreSecret does not list the keys again.
    # The exemption group: CreateKey takes the audit's reading (an exemption by tag it reads afresh, in GetUser).
    assert all(step["iam:ListAccessKeys"] == 0 for name, step in steps.items() if name != "CreateKeyFunction"), steps
    assert steps["CreateKeyFunction"]["iam:ListGroupsForUser"] == 0, steps
    calls, writes, steps = _rotation_cost(first)
    assert calls <= MAX_FIRST_ROTATION_CALLS, steps
    assert writes <= MAX_ROTATION_LEDGER_WRITES, steps
    # The first rotation also creates the secret and applies its user-only policy.
    assert steps["CreateKeyFunction"]["secretsmanager:CreateSecret"] == 1, steps
    assert steps["CreateKeyFunction"]["secretsmanager:PutResourcePolicy"] == 1, steps
