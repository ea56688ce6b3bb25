"""The key secret's resource policy, as written, lets exactly the user read it and nobody else.

moto does not enforce resource policies, so the document :func:`keyrotation.secret_policy.user_only_policy`
builds is evaluated with :mod:`tests.iam_evaluator`, together with each principal's own policies:
the member role's from member-account/role.yaml and its sessions' from keyrotation/sessions.py, and
an administrator's that allow everything. Every Secrets Manager operation botocore knows is tried,
with each version label a request can name.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from keyrotation import secret_policy, sessions
from keyrotation.sessions import Purpose
from tests.iam_evaluator import Request, decide
from tests.unit.test_member_role import MEMBER, member_role

USER = f"arn:aws:iam::{MEMBER}:user/team/alice"
USER_ID = "AIDAEXAMPLEALICE0001"
ROLE = f"arn:aws:iam::{MEMBER}:role/IAMKeyRotationMemberRole"
ROLE_ID = "AROAEXAMPLEMEMBER001"
SECRET = f"arn:aws:secretsmanager:us-east-1:{MEMBER}:secret:Account_{MEMBER}_User_alice_AccessKey-AbCdEf"
POLICY = secret_policy.user_only_policy(USER, USER_ID, ROLE)
ALLOW_EVERYTHING = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ACTIONS = sorted(
    f"secretsmanager:{name}"
    for name in botocore.session.get_session().get_service_model("secretsmanager").operation_names
)
STAGES = [None, "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"]
READ_CURRENT = ("secretsmanager:GetSecretValue", "AWSCURRENT")


def allowed(principal: str, userid: str, identity: list[Any], session: Any = None) -> set[tuple[str, str | None]]:
    """(action, version label) pairs the principal is allowed on the secret."""
    found = set()
    for action in ACTIONS:
        for stage in STAGES:
            context = {"aws:userid": userid, "secretsmanager:BlockPublicPolicy": "true"}
            if stage is not None:
                context["secretsmanager:VersionStage"] = stage
            request = Request(principal, action, SECRET, context)
            if decide(request, identity=identity, resource=[POLICY], session=session).allowed:
                found.add((action, stage))
    return found


def test_there_are_operations_to_try() -> None:
    assert len(ACTIONS) > 20 and "secretsmanager:GetSecretValue" in ACTIONS


def test_the_user_reads_it_every_way_and_does_nothing_else_even_with_an_allow_everything_policy() -> None:
    for identity in ([], [ALLOW_EVERYTHING]):
        granted = allowed(USER, USER_ID, identity)
        assert {action for action, _ in granted} == set(secret_policy.USER_ACTIONS)
        assert ("secretsmanager:GetSecretValue", None) in granted and READ_CURRENT in granted


def test_a_user_created_again_under_the_same_name_gets_nothing() -> None:
    assert allowed(USER, "AIDAEXAMPLENEWALICE1", [ALLOW_EVERYTHING]) == set()


@pytest.mark.parametrize(
    ("principal", "userid"),
    [
        (f"arn:aws:iam::{MEMBER}:role/Admin", "AROAEXAMPLEADMIN0001:someone"),
        (f"arn:aws:iam::{MEMBER}:user/bob", "AIDAEXAMPLEBOB000001"),
        (f"arn:aws:iam::{MEMBER}:root", MEMBER),
        (f"arn:aws:iam::{MEMBER}:role/key-rotation/IAMKeyRotationMemberRole", "AROAEXAMPLEOTHER0001:x"),
        ("arn:aws:iam::444455556666:role/Admin", "AROAEXAMPLEFOREIGN01:someone"),
    ],
)
def test_nobody_else_can_do_anything_even_with_an_allow_everything_policy(principal: str, userid: str) -> None:
    assert allowed(principal, userid, [ALLOW_EVERYTHING]) == set()


def role_policies() -> list[Any]:
    return [policy["PolicyDocument"] for policy in member_role()["Policies"]]


@pytest.mark.parametrize("purpose", Purpose)
def test_the_member_role_writes_and_reads_only_awspending(purpose: Purpose) -> None:
    userid = f"{ROLE_ID}:{sessions.session_name(purpose, 'run-1')}"
    session = sessions.session_policy(
        purpose, sessions.Target("aws", "us-east-1", MEMBER, user_name="alice", exemption_group="G")
    )
    for session_policy in (session, None):  # the product's session, and a caller that passes none
        granted = allowed(ROLE, userid, role_policies(), session_policy)
        reads = {stage for action, stage in granted if action == "secretsmanager:GetSecretValue"}
        assert reads <= {"AWSPENDING"}, f"{purpose.value}: the member role reads {reads}"
        assert {action for action, _ in granted} <= set(secret_policy.ROLE_ACTIONS)
    # Even with every permission attached to it, the role never reads a label but AWSPENDING.
    granted = allowed(ROLE, userid, [*role_policies(), ALLOW_EVERYTHING])
    assert {stage for action, stage in granted if action == "secretsmanager:GetSecretValue"} <= {"AWSPENDING"}
    assert {action for action, _ in granted} == set(secret_policy.ROLE_ACTIONS)


def test_between_them_the_roles_sessions_use_every_action_the_policy_leaves_the_role() -> None:
    used = set()
    for purpose in Purpose:
        userid = f"{ROLE_ID}:{sessions.session_name(purpose, 'run-1')}"
        used |= {action for action, _ in allowed(ROLE, userid, role_policies())}
    assert used == set(secret_policy.ROLE_ACTIONS)


def test_only_the_user_reads_awscurrent() -> None:
    readers = []
    for principal, userid, identity in [
        (USER, USER_ID, []),
        (ROLE, f"{ROLE_ID}:key-rotation-verify-run-1", [*role_policies(), ALLOW_EVERYTHING]),
        (f"arn:aws:iam::{MEMBER}:role/Admin", "AROAEXAMPLEADMIN0001:x", [ALLOW_EVERYTHING]),
        (USER, "AIDAEXAMPLENEWALICE1", [ALLOW_EVERYTHING]),
    ]:
        if READ_CURRENT in allowed(principal, userid, identity):
            readers.append((principal, userid))
    assert readers == [(USER, USER_ID)]


def test_the_policy_is_bound_to_a_unique_id() -> None:
    with pytest.raises(ValueError, match="unique id"):
        secret_policy.user_only_policy(USER, "", ROLE)
