"""member-account/role.yaml as written: who can assume the role, and what each of its sessions can do.

The role's documents are resolved from the template (as CloudFormation would, with the StackSet's
parameters) and evaluated with :mod:`tests.iam_evaluator`; moto enforces neither trust policies
nor conditions. A function's role may open only sessions named for its own purpose, and a session
named for a purpose gets, from the role itself, exactly the actions that purpose's session policy
(keyrotation/sessions.py) grants: no more, whatever session policy the caller passes or leaves out.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyrotation import sessions
from keyrotation.sessions import Purpose
from localaws import cfn
from tests.iam_evaluator import Decision, Request, decide

TEMPLATE = cfn.load(cfn.REPO / "member-account" / "role.yaml")
ROTATION, MEMBER, ORG = "111111111111", "222222222222", "o-exampleorg1"
FUNCTIONS = {purpose: f"arn:aws:iam::{ROTATION}:role/key-rotation/iam-key-rotation-{purpose.value}-ABC" for purpose in Purpose}
ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/IAMKeyRotationMemberRole"
SECRET = f"arn:aws:secretsmanager:us-east-1:{MEMBER}:secret:Account_{MEMBER}_User_alice_AccessKey-AbCdEf"
ASSUME_ANYTHING = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}


def member_role(**parameters: str) -> dict[str, Any]:
    given = {"RotationAccountId": ROTATION, "OrganizationId": ORG, "FunctionRoleArns": ",".join(FUNCTIONS.values())}
    values = cfn.validate_parameters(TEMPLATE, {**given, **parameters})
    resolver = cfn.Resolver.for_template(
        TEMPLATE, values, pseudo={"AWS::AccountId": MEMBER, "AWS::Partition": "aws", "AWS::Region": "us-east-1"}
    )
    return dict(resolver.resolve(TEMPLATE["Resources"]["MemberRole"]["Properties"]))


def assume(principal: str, org: str = ORG, purpose: str | None = "audit", session: str = "audit") -> Decision:
    context = {"aws:PrincipalOrgID": org, "sts:RoleSessionName": sessions.session_name(Purpose(session), "run-1")}
    if purpose is not None:
        context["aws:PrincipalTag/KeyRotationPurpose"] = purpose  # the stack tags each function's role
    request = Request(principal, "sts:AssumeRole", ROLE_ARN, context)
    return decide(request, identity=[ASSUME_ANYTHING], resource=[member_role()["AssumeRolePolicyDocument"]])


@pytest.mark.parametrize("purpose", Purpose)
def test_each_function_role_named_exactly_can_assume_it_for_its_own_purpose_only(purpose: Purpose) -> None:
    assert assume(FUNCTIONS[purpose], purpose=purpose.value, session=purpose.value).allowed
    for other in set(Purpose) - {purpose}:
        assert not assume(FUNCTIONS[purpose], purpose=purpose.value, session=other.value).allowed
    assert not assume(FUNCTIONS[purpose], purpose=None, session=purpose.value).allowed


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:iam::{ROTATION}:role/key-rotation/a-new-role",  # a role created under the functions' path
        f"arn:aws:iam::{ROTATION}:role/key-rotation/iam-key-rotation-Audit-ABC-2",  # a name that extends one
        f"arn:aws:iam::{ROTATION}:role/iam-key-rotation-Audit-ABC",  # the same name on another path
        f"arn:aws:iam::{ROTATION}:user/admin",
        f"arn:aws:iam::{ROTATION}:root",
        f"arn:aws:iam::333333333333:role/key-rotation/iam-key-rotation-Audit-ABC",  # the name, in another account
        f"arn:aws:iam::{MEMBER}:role/Admin",  # the member account's own admin
    ],
)
def test_no_other_principal_can_assume_it(principal: str) -> None:
    assert not assume(principal).allowed


def test_a_function_role_outside_the_organization_cannot() -> None:
    assert not assume(FUNCTIONS[Purpose.AUDIT], org="o-otherorg123").allowed


USER_ARN = f"arn:aws:iam::{MEMBER}:user/team/alice"
GROUP_ARN = f"arn:aws:iam::{MEMBER}:group/IAMKeyRotationExemptionGroup"
EVERY_ACTION = sorted(set().union(*(sessions.granted_actions(purpose) for purpose in Purpose)))


def role_can(action: str, resource: str = SECRET, purpose: Purpose = Purpose.VERIFY, **context: str) -> bool:
    """Whether a session of the role named for ``purpose`` may call ``action`` (no session policy: the worst case)."""
    policies = [policy["PolicyDocument"] for policy in member_role()["Policies"]]
    userid = f"AROAEXAMPLEMEMBERROLE:{sessions.session_name(purpose, 'run-1')}"
    return decide(Request(ROLE_ARN, action, resource, {"aws:userid": userid, **context}), identity=policies).allowed


def can_do(purpose: Purpose, action: str) -> bool:
    resource = {"iam:ListUsers": "*", "iam:GetGroup": GROUP_ARN}.get(action, USER_ARN)
    if action.startswith("secretsmanager:"):
        resource = SECRET
    context = {"secretsmanager:VersionStage": "AWSPENDING", "secretsmanager:BlockPublicPolicy": "true"}
    return role_can(action, resource, purpose, **context)


@pytest.mark.parametrize("purpose", Purpose)
def test_a_session_gets_from_the_role_exactly_what_its_purpose_is_granted(purpose: Purpose) -> None:
    granted = sessions.granted_actions(purpose)
    allowed = {action for action in EVERY_ACTION if can_do(purpose, action)}
    assert allowed == granted, f"role allows beyond: {sorted(allowed - granted)}; misses: {sorted(granted - allowed)}"


def test_a_session_named_for_no_purpose_gets_nothing() -> None:
    policies = [policy["PolicyDocument"] for policy in member_role()["Policies"]]
    for action in EVERY_ACTION:
        request = Request(ROLE_ARN, action, USER_ARN, {"aws:userid": "AROAEXAMPLEMEMBERROLE:key-rotation-admin-1"})
        assert not decide(request, identity=policies).allowed, action


def test_it_reads_a_key_secret_only_by_its_awspending_label() -> None:
    assert role_can("secretsmanager:GetSecretValue", **{"secretsmanager:VersionStage": "AWSPENDING"})
    assert not role_can("secretsmanager:GetSecretValue")  # by version id alone, or the default AWSCURRENT
    for stage in ("AWSCURRENT", "AWSPREVIOUS", "custom"):
        assert not role_can("secretsmanager:GetSecretValue", **{"secretsmanager:VersionStage": stage})


def test_it_touches_no_other_secret_and_publishes_no_policy() -> None:
    other = f"arn:aws:secretsmanager:us-east-1:{MEMBER}:secret:prod/database-AbCdEf"
    pending = {"secretsmanager:VersionStage": "AWSPENDING"}
    assert not role_can("secretsmanager:GetSecretValue", other, **pending)
    assert not role_can("secretsmanager:PutSecretValue", other, Purpose.CREATE)
    public = {"secretsmanager:BlockPublicPolicy": "false"}
    # CreateKey applies the user-only policy before it writes the key; StoreSecret no longer needs to.
    assert role_can("secretsmanager:PutResourcePolicy", SECRET, Purpose.CREATE, **{"secretsmanager:BlockPublicPolicy": "true"})
    assert not role_can("secretsmanager:PutResourcePolicy", SECRET, Purpose.CREATE, **public)
    assert not role_can("secretsmanager:PutResourcePolicy", SECRET, Purpose.CREATE)
    assert not role_can("secretsmanager:PutResourcePolicy", SECRET, Purpose.STORE, **{"secretsmanager:BlockPublicPolicy": "true"})
    for purpose in Purpose:
        for action in ("DeleteSecret", "DeleteResourcePolicy", "RotateSecret", "UntagResource", "RestoreSecret"):
            assert not role_can(f"secretsmanager:{action}", SECRET, purpose)


def test_it_cannot_grant_itself_anything() -> None:
    for purpose in Purpose:
        for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:CreateUser"):
            assert not role_can(action, ROLE_ARN, purpose)


def test_a_customer_managed_key_is_usable_only_through_secrets_manager_and_only_when_named() -> None:
    assert [policy["PolicyName"] for policy in member_role()["Policies"]] == ["key-rotation"]
    with_key = member_role(SecretsKmsKeyAlias="alias/key-rotation")
    policies = [policy["PolicyDocument"] for policy in with_key["Policies"]]
    key = f"arn:aws:kms:us-east-1:{MEMBER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    through_secrets_manager = {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    aliased = {**through_secrets_manager, "kms:ResourceAliases": ["alias/key-rotation"]}
    aliased["aws:userid"] = "AROAEXAMPLEMEMBERROLE:key-rotation-verify-run-1"
    through_secrets_manager["aws:userid"] = aliased["aws:userid"]
    assert decide(Request(ROLE_ARN, "kms:Decrypt", key, aliased), identity=policies).allowed
    assert not decide(Request(ROLE_ARN, "kms:Decrypt", key, through_secrets_manager), identity=policies).allowed
    direct = {"kms:ResourceAliases": ["alias/key-rotation"], "aws:userid": aliased["aws:userid"]}
    assert not decide(Request(ROLE_ARN, "kms:Decrypt", key, direct), identity=policies).allowed
