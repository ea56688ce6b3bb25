"""The in-memory member roles trust the function roles of the rotation stack deployed last, as the StackSet does.

In AWS the member-account StackSet takes the rotation stack's ``FunctionRoleArns`` output as its parameter
and updates every instance after a deploy; here :meth:`LocalAws.deploy` does the same for the member roles
of its organization, those deployed before the stack and those deployed after. What is trusted belongs to
the LocalAws (its organization): a new one starts trusting no function.
"""

from __future__ import annotations

from typing import Any

from keyrotation.sessions import Purpose
from localaws import LocalAws, Organization, Stack

ROLE = "IAMKeyRotationMemberRole"


def trusted(org: Organization, account_id: str) -> list[str]:
    """The function role ARNs the member role of ``account_id`` trusts (its trust policy's aws:PrincipalArn)."""
    document: dict[str, Any] = org.client("iam", account_id).get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    (statement,) = document["Statement"]
    arns = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    return [arns] if isinstance(arns, str) else list(arns)


def function_roles(stack: Stack) -> list[str]:
    return stack.outputs["FunctionRoleArns"].split(",")


def test_member_roles_trust_exactly_the_function_roles_of_the_stack_deployed_last(
    aws: LocalAws, org: Organization
) -> None:
    alpha, norole = org.account("alpha"), org.account("norole")
    assert [arn.rsplit("/", 1)[1] for arn in trusted(org, alpha)] == ["no-stack-deployed-yet"]

    first = aws.deploy({"DryRun": "true"})
    assert len(function_roles(first)) == len(Purpose)
    for account_id in (org.management_account, alpha, org.account("beta"), org.account("gamma")):
        assert trusted(org, account_id) == function_roles(first), account_id
    org.deploy_member_role(norole)  # deployed after the stack: trusts it too
    assert trusted(org, norole) == function_roles(first)

    second = aws.deploy({"DryRun": "true"}, stack_name="second")
    assert set(function_roles(second)).isdisjoint(function_roles(first))
    for account_id in (org.management_account, alpha, norole):
        assert trusted(org, account_id) == function_roles(second), account_id


def test_an_organization_seeded_after_the_deploy_trusts_the_stack(aws: LocalAws) -> None:
    stack = aws.deploy({"DryRun": "true"})
    org = aws.organization(["alpha"])
    assert trusted(org, org.account("alpha")) == trusted(org, org.management_account) == function_roles(stack)


def test_each_function_role_is_tagged_with_its_purpose_in_the_order_of_the_output(aws: LocalAws) -> None:
    stack = aws.deploy({"DryRun": "true"})
    iam = aws.client("iam")
    purposes = []
    for arn in function_roles(stack):
        tags = {tag["Key"]: tag["Value"] for tag in iam.list_role_tags(RoleName=arn.rsplit("/", 1)[1])["Tags"]}
        purposes.append(tags["KeyRotationPurpose"])
    assert purposes == [purpose.value for purpose in Purpose]


def test_a_new_local_aws_trusts_no_function_of_an_earlier_one() -> None:
    with LocalAws() as earlier:
        earlier.organization(["alpha"])
        earlier.deploy({"DryRun": "true"})
    with LocalAws() as later:
        org = later.organization(["alpha"])
        assert [arn.rsplit("/", 1)[1] for arn in trusted(org, org.account("alpha"))] == ["no-stack-deployed-yet"]
