"""member-account/role.yaml as written: who can assume the role, and what it can do with the key secrets.

The role's documents are resolved from the template (as CloudFormation would, with the StackSet's
parameters) and evaluated with :mod:`tests.iam_evaluator`; moto enforces neither trust policies
nor conditions.
"""

from __future__ import annotations

from typing import Any

import pytest

from localaws import cfn
from tests.iam_evaluator import Decision, Request, decide

TEMPLATE = cfn.load(cfn.REPO / "member-account" / "role.yaml")
ROTATION, MEMBER, ORG = "111111111111", "222222222222", "o-exampleorg1"
FUNCTIONS = [f"arn:aws:iam::{ROTATION}:role/key-rotation/iam-key-rotation-{name}-ABC" for name in ("Audit", "Create")]
ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/IAMKeyRotationMemberRole"
SECRET = f"arn:aws:secretsmanager:us-east-1:{MEMBER}:secret:Account_{MEMBER}_User_alice_AccessKey-AbCdEf"
ASSUME_ANYTHING = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}


def member_role(**parameters: str) -> dict[str, Any]:
    given = {"RotationAccountId": ROTATION, "OrganizationId": ORG, "FunctionRoleArns": ",".join(FUNCTIONS)}
    values = cfn.validate_parameters(TEMPLATE, {**given, **parameters})
    resolver = cfn.Resolver.for_template(
        TEMPLATE, values, pseudo={"AWS::AccountId": MEMBER, "AWS::Partition": "aws", "AWS::Region": "us-east-1"}
    )
    return dict(resolver.resolve(TEMPLATE["Resources"]["MemberRole"]["Properties"]))


def assume(principal: str, org: str = ORG, session_name: str = "key-rotation-audit-run-1") -> Decision:
    request = Request(
        principal,
        "sts:AssumeRole",
        ROLE_ARN,
        {"aws:PrincipalOrgID": org, "sts:RoleSessionName": session_name},
    )
    return decide(request, identity=[ASSUME_ANYTHING], resource=[member_role()["AssumeRolePolicyDocument"]])


@pytest.mark.parametrize("function_role", FUNCTIONS)
def test_the_functions_roles_named_exactly_can_assume_it(function_role: str) -> None:
    assert assume(function_role).allowed


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


def test_a_function_role_outside_the_organization_or_without_a_session_name_of_ours_cannot() -> None:
    assert not assume(FUNCTIONS[0], org="o-otherorg123").allowed
    assert not assume(FUNCTIONS[0], session_name="ad-hoc").allowed


def role_can(action: str, resource: str = SECRET, **context: str) -> bool:
    policies = [policy["PolicyDocument"] for policy in member_role()["Policies"]]
    return decide(Request(ROLE_ARN, action, resource, context), identity=policies).allowed


def test_it_reads_a_key_secret_only_by_its_awspending_label() -> None:
    assert role_can("secretsmanager:GetSecretValue", **{"secretsmanager:VersionStage": "AWSPENDING"})
    assert not role_can("secretsmanager:GetSecretValue")  # by version id alone, or the default AWSCURRENT
    for stage in ("AWSCURRENT", "AWSPREVIOUS", "custom"):
        assert not role_can("secretsmanager:GetSecretValue", **{"secretsmanager:VersionStage": stage})


def test_it_touches_no_other_secret_and_publishes_no_policy() -> None:
    other = f"arn:aws:secretsmanager:us-east-1:{MEMBER}:secret:prod/database-AbCdEf"
    assert not role_can("secretsmanager:GetSecretValue", other, **{"secretsmanager:VersionStage": "AWSPENDING"})
    assert not role_can("secretsmanager:PutSecretValue", other)
    assert role_can("secretsmanager:PutResourcePolicy", **{"secretsmanager:BlockPublicPolicy": "true"})
    assert not role_can("secretsmanager:PutResourcePolicy", **{"secretsmanager:BlockPublicPolicy": "false"})
    assert not role_can("secretsmanager:PutResourcePolicy")
    for action in ("DeleteSecret", "DeleteResourcePolicy", "RotateSecret", "UntagResource", "RestoreSecret"):
        assert not role_can(f"secretsmanager:{action}")


def test_it_cannot_grant_itself_anything() -> None:
    for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:CreateUser"):
        assert not role_can(action, ROLE_ARN)


def test_a_customer_managed_key_is_usable_only_through_secrets_manager_and_only_when_named() -> None:
    assert [policy["PolicyName"] for policy in member_role()["Policies"]] == ["key-rotation"]
    with_key = member_role(SecretsKmsKeyAlias="alias/key-rotation")
    policies = [policy["PolicyDocument"] for policy in with_key["Policies"]]
    key = f"arn:aws:kms:us-east-1:{MEMBER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    through_secrets_manager = {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    aliased = {**through_secrets_manager, "kms:ResourceAliases": ["alias/key-rotation"]}
    assert decide(Request(ROLE_ARN, "kms:Decrypt", key, aliased), identity=policies).allowed
    assert not decide(Request(ROLE_ARN, "kms:Decrypt", key, through_secrets_manager), identity=policies).allowed
    direct = {"kms:ResourceAliases": ["alias/key-rotation"]}
    assert not decide(Request(ROLE_ARN, "kms:Decrypt", key, direct), identity=policies).allowed
