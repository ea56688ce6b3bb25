"""Each function holds, in a member account, only what it calls: its session policy, no more, no less.

A full lifecycle runs through the real state machine: a rotation (create, verify, store), a
disable, a delete, a new key that cannot be written to its secret (create takes it back), and a
new key whose promotion fails (the state machine discards it); beside it, a small account whose
audit reads its one user by name (GetUser) and two keys the credential report cannot tell apart
(GetAccessKeyLastUsed). Every AWS call is recorded with
the credentials that signed it; a member-role session's access key tells its session, whose name
tells the function and the run. Then, per purpose:

- the operations observed equal the actions its session policy grants (none missing, none unused);
- each call is allowed by the member role's own policy and its session policy together, resource
  and conditions included (evaluated with :mod:`tests.iam_evaluator`, as AWS would).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from keyrotation import sessions
from keyrotation.sessions import Purpose
from localaws import KeySeed, LocalAws
from localaws.awslike import SignedCall, implied_actions
from tests.iam_evaluator import Request, decide

pytestmark = pytest.mark.statemachine

ROLE_NAME = "IAMKeyRotationMemberRole"
EXEMPTION_GROUP = "IAMKeyRotationExemptionGroup"


def _secret_of(user: str) -> Any:
    return lambda params: f"_User_{user}_" in str(params.get("SecretId", ""))


def lifecycle_run(aws: LocalAws) -> tuple[list[str], list[SignedCall], dict[str, str]]:
    org = aws.organization(["alpha", "beta"])
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})
    alpha, beta = org.account("alpha"), org.account("beta")
    org.create_user(alpha, "alice", [KeySeed(80, used_days_ago=1)])  # rotated: create, verify, store
    org.create_user(alpha, "bob", [KeySeed(95, used_days_ago=3), KeySeed(20, used_days_ago=1)])  # old key disabled
    org.create_user(alpha, "carol", [KeySeed(110, status="Inactive"), KeySeed(30, used_days_ago=1)])  # deleted
    org.create_user(alpha, "dave", [KeySeed(81)])  # the secret write fails: create takes its new key back
    org.create_user(alpha, "erin", [KeySeed(82)])  # the promotion fails: the state machine discards the new key
    org.create_user(alpha, "frank", [KeySeed(200)], groups=[EXEMPTION_GROUP])  # exempt
    org.create_user(alpha, "grace", [KeySeed(83)])  # a label is not where create saw it: store reads them again
    org.create_user(alpha, "heidi", [KeySeed(84)])  # the pending version cannot be read: verify says why, discarded
    aws.faults.add("secretsmanager", "PutSecretValue", "AccessDeniedException", times=1, when=_secret_of("dave"))
    aws.faults.add("secretsmanager", "UpdateSecretVersionStage", "AccessDeniedException", times=1, when=_secret_of("erin"))
    aws.faults.add(
        "secretsmanager", "UpdateSecretVersionStage", "InvalidParameterException", times=1, when=_secret_of("grace")
    )
    aws.faults.add("secretsmanager", "GetSecretValue", "ResourceNotFoundException", times=1, when=_secret_of("heidi"))
    # The only user to read in beta: the audit asks GetUser for it rather than list the users. Its two keys were
    # made in the same second, so the credential report cannot tell which is which: their last use is asked.
    same_second = datetime.now(UTC)
    org.client("iam", beta).create_group(GroupName=EXEMPTION_GROUP)  # with no member
    org.create_user(beta, "ivan", [KeySeed(95, used_days_ago=2), KeySeed(95, used_days_ago=1)], now=same_second)

    key_owners = {
        key.access_key_id: key.user_name
        for account_id in (alpha, beta)
        for key in iam_backends[account_id]["aws"].access_keys.values()
    }
    with aws.calls.watch() as calls:
        execution = stack.run({})
    # dave's, erin's and heidi's rotations fail (on purpose), so the account and the run are reported failed.
    assert execution.error == "KeyRotation.AccountsFailed", (execution.status, execution.error, execution.cause)
    assert all(fault.hits == 1 for fault in aws.faults.active), "a fault of the scenario was never reached"
    aws.faults.clear()
    return [alpha, beta], list(calls), key_owners


def _sessions(account_ids: list[str]) -> dict[str, tuple[str, Any]]:
    """Access key id -> (account id, the assumed-role session): moto keeps them in the role's account."""
    return {
        role.access_key_id: (account_id, role)
        for account_id in account_ids
        for role in sts_backends[account_id]["aws"].assumed_roles
    }


def test_sessions_of_a_full_lifecycle_run(aws: LocalAws) -> None:
    accounts, calls, key_owners = lifecycle_run(aws)
    each_function_calls_exactly_the_actions_its_session_policy_grants(accounts, calls)
    every_call_is_allowed_by_the_member_role_and_its_session_policy(aws, accounts, calls, key_owners)
    session_names_say_function_and_run(accounts[0])


def each_function_calls_exactly_the_actions_its_session_policy_grants(
    accounts: list[str], calls: list[SignedCall]
) -> None:
    by_key = _sessions(accounts)
    observed: dict[Purpose, set[str]] = defaultdict(set)
    for call in calls:
        _, session = by_key.get(call.access_key_id or "", (None, None))
        if session is None:
            continue
        purpose = sessions.purpose_of(session.session_name)
        assert purpose is not None, f"a member-role session named {session.session_name!r} says no purpose"
        for operation in implied_actions(call.service, call.operation, call.identifiers):
            observed[purpose].add(f"{call.service}:{operation}")

    assert set(observed) == set(Purpose), f"purposes never seen in the run: {set(Purpose) - set(observed)}"
    mismatches = [
        f"{purpose.value}: called but not granted {sorted(observed[purpose] - granted)}; "
        f"granted but never called {sorted(granted - observed[purpose])}"
        for purpose in Purpose
        if observed[purpose] != (granted := sessions.granted_actions(purpose))
    ]
    assert not mismatches, "\n".join(mismatches)


def _resource(aws: LocalAws, call: SignedCall, account_id: str, key_owners: dict[str, str]) -> str:
    names = call.identifiers
    if call.service == "iam":
        users = iam_backends[account_id]["aws"].users
        if call.operation in ("ListUsers", "GenerateCredentialReport", "GetCredentialReport"):
            return "*"  # no resource-level permissions
        if call.operation == "GetGroup":
            return str(iam_backends[account_id]["aws"].get_group(names["GroupName"]).arn)
        user = names.get("UserName") or key_owners[names["AccessKeyId"]]
        return str(users[user].arn)
    if call.service == "secretsmanager":
        sm = aws.client("secretsmanager", account_id)
        return str(sm.describe_secret(SecretId=names.get("SecretId") or names["Name"])["ARN"])
    raise AssertionError(f"no resource known for {call.service}:{call.operation}")


def _context(call: SignedCall) -> dict[str, str]:
    context = {}
    if "VersionStage" in call.identifiers:
        context["secretsmanager:VersionStage"] = call.identifiers["VersionStage"]
    if "BlockPublicPolicy" in call.identifiers:
        context["secretsmanager:BlockPublicPolicy"] = call.identifiers["BlockPublicPolicy"].lower()
    return context


def every_call_is_allowed_by_the_member_role_and_its_session_policy(
    aws: LocalAws, accounts: list[str], calls: list[SignedCall], key_owners: dict[str, str]
) -> None:
    roles = {}
    for account_id in accounts:
        iam = aws.client("iam", account_id)
        role = iam.get_role(RoleName=ROLE_NAME)["Role"]
        policies = [
            iam.get_role_policy(RoleName=ROLE_NAME, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=ROLE_NAME)["PolicyNames"]
        ]
        roles[account_id] = (role, policies)
    by_key = _sessions(accounts)
    checked = 0
    for call in calls:
        account_id, session = by_key.get(call.access_key_id or "", (None, None))
        if session is None or account_id is None:
            continue
        assert session.policy, f"session {session.session_name} was assumed without a session policy"
        role, role_policies = roles[account_id]
        request = Request(
            principal_arn=role["Arn"],
            action=f"{call.service}:{call.operation}",
            resource=_resource(aws, call, account_id, key_owners),
            # A role session's aws:userid is "<role id>:<session name>": the role's statements are by purpose.
            context={**_context(call), "aws:userid": f"{role['RoleId']}:{session.session_name}"},
        )
        decision = decide(request, identity=role_policies, session=json.loads(session.policy))
        assert decision.allowed, f"{session.session_name}: {request.action} on {request.resource} -> {decision.value}"
        checked += 1
    assert checked > 0


def session_names_say_function_and_run(alpha: str) -> None:
    names = {role.session_name for role in sts_backends[alpha]["aws"].assumed_roles if ROLE_NAME in role.role_arn}
    assert names and all(len(name) <= 64 for name in names)
    run_ids = {name.split("-", 3)[3] for name in names}
    assert len(run_ids) == 1, run_ids  # every session of the run names that run
    assert {sessions.purpose_of(name) for name in names} == set(Purpose)


def test_the_in_memory_aws_refuses_what_a_session_policy_does_not_grant(aws: LocalAws) -> None:
    # moto ignores session policies; localaws does not, so every test of the suite proves each function's
    # session grants what the function calls.
    org = aws.organization(["alpha"])
    alpha = org.account("alpha")
    (key_id,) = org.create_user(alpha, "alice", [KeySeed(10)])
    target = sessions.Target("aws", "us-east-1", alpha, user_name="alice")
    credentials = aws.client("sts", org.management_account).assume_role(
        RoleArn=f"arn:aws:iam::{alpha}:role/{ROLE_NAME}",
        RoleSessionName=sessions.session_name(Purpose.DISABLE, "run-1"),
        Policy=sessions.policy_text(Purpose.DISABLE, target),
    )["Credentials"]
    session_iam = boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    session_iam.update_access_key(UserName="alice", AccessKeyId=key_id, Status="Inactive")  # granted
    with pytest.raises(ClientError, match="AccessDenied"):
        session_iam.create_access_key(UserName="alice")  # not the disable session's
