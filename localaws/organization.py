"""Seeding an organization: accounts, OUs, the member-account role, users with keys of any age."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import AccessKeyLastUsed, iam_backends

from localaws import cfn
from localaws.environment import REGION, admin_client

MEMBER_ROLE_TEMPLATE = cfn.REPO / "member-account" / "role.yaml"


@dataclass
class Organization:
    id: str
    root_id: str
    management_account: str
    accounts: dict[str, str] = field(default_factory=dict)  # name -> id
    ous: dict[str, str] = field(default_factory=dict)  # name -> id

    def account(self, name: str) -> str:
        return self.accounts[name]


def create_organization(names: list[str], ous: dict[str, list[str]] | None = None) -> Organization:
    """An organization whose management account is the deployment account, with member accounts ``names``.

    ``ous`` maps an OU name (``"Parent/Child"`` nests) to the account names placed in it.
    """
    org_client = admin_client("organizations", DEFAULT_ACCOUNT_ID)
    description = org_client.create_organization(FeatureSet="ALL")["Organization"]
    root_id = org_client.list_roots()["Roots"][0]["Id"]
    organization = Organization(id=description["Id"], root_id=root_id, management_account=DEFAULT_ACCOUNT_ID)
    for name in names:
        status = org_client.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        organization.accounts[name] = status["AccountId"]
    for path, members in (ous or {}).items():
        parent = root_id
        for depth, part in enumerate(path.split("/")):
            key = "/".join(path.split("/")[: depth + 1])
            if key not in organization.ous:
                organization.ous[key] = org_client.create_organizational_unit(ParentId=parent, Name=part)[
                    "OrganizationalUnit"
                ]["Id"]
            parent = organization.ous[key]
        for member in members:
            org_client.move_account(
                AccountId=organization.accounts[member], SourceParentId=root_id, DestinationParentId=parent
            )
    return organization


def iam_client(account_id: str) -> Any:
    return admin_client("iam", account_id)


# The roles the member roles trust: the FunctionRoleArns output of the rotation stack deployed last
# (localaws.environment.deploy sets it, and re-trusts the roles already deployed, as a StackSet update would).
TRUSTED_FUNCTION_ROLES: list[str] = []
# Member roles deployed so far: account id -> (organization id, rotation account, role name).
_MEMBER_ROLES: dict[str, tuple[str, str, str]] = {}


def forget_member_roles() -> None:
    """Forget the deployed member roles and the trusted function roles (a new in-memory AWS)."""
    TRUSTED_FUNCTION_ROLES.clear()
    _MEMBER_ROLES.clear()


def _member_role_properties(
    account_id: str, organization_id: str, rotation_account: str, role_name: str, function_role_arns: list[str]
) -> dict[str, Any]:
    template = cfn.load(MEMBER_ROLE_TEMPLATE)
    # Before any rotation stack exists, the role trusts a role name that no function has.
    trusted = function_role_arns or [f"arn:aws:iam::{rotation_account}:role/key-rotation/no-stack-deployed-yet"]
    values = cfn.validate_parameters(
        template,
        {
            "RotationAccountId": rotation_account,
            "OrganizationId": organization_id,
            "RoleName": role_name,
            "FunctionRoleArns": ",".join(trusted),
        },
    )
    resolver = cfn.Resolver.for_template(
        template, values, pseudo={"AWS::AccountId": account_id, "AWS::Partition": "aws", "AWS::Region": REGION}
    )
    return dict(resolver.resolve(template["Resources"]["MemberRole"]["Properties"]))


def deploy_member_role(
    account_id: str,
    organization: Organization,
    role_name: str = "IAMKeyRotationMemberRole",
    function_role_arns: list[str] | None = None,
) -> str:
    """Create member-account/role.yaml's role in ``account_id``, from the template itself.

    It trusts ``function_role_arns``, by default the function roles of the rotation stack deployed last.
    """
    props = _member_role_properties(
        account_id,
        organization.id,
        organization.management_account,
        role_name,
        TRUSTED_FUNCTION_ROLES if function_role_arns is None else function_role_arns,
    )
    iam = iam_client(account_id)
    _MEMBER_ROLES[account_id] = (organization.id, organization.management_account, role_name)
    iam.create_role(
        RoleName=props["RoleName"],
        AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        Description=props["Description"],
    )
    for policy in props["Policies"]:
        iam.put_role_policy(
            RoleName=props["RoleName"],
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def trust_function_roles(function_role_arns: list[str]) -> None:
    """Make every member role deployed so far trust ``function_role_arns`` (the StackSet update after a deploy)."""
    TRUSTED_FUNCTION_ROLES[:] = function_role_arns
    for account_id, (organization_id, rotation_account, role_name) in _MEMBER_ROLES.items():
        props = _member_role_properties(account_id, organization_id, rotation_account, role_name, function_role_arns)
        iam_client(account_id).update_assume_role_policy(
            RoleName=role_name, PolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
        )


def remove_member_role(account_id: str, role_name: str = "IAMKeyRotationMemberRole") -> None:
    _MEMBER_ROLES.pop(account_id, None)
    iam = iam_client(account_id)
    for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
    iam.delete_role(RoleName=role_name)


@dataclass(frozen=True)
class KeySeed:
    """A key to give a user: its age in days, status, and last use (days ago; None = never)."""

    age_days: float
    status: str = "Active"
    used_days_ago: float | None = None
    service: str = "s3"
    region: str = "eu-west-1"


def create_user(
    account_id: str,
    name: str,
    keys: list[KeySeed] = (),  # type: ignore[assignment]
    tags: dict[str, str] | None = None,
    groups: list[str] = (),  # type: ignore[assignment]
    now: datetime | None = None,
) -> list[str]:
    """Create an IAM user with keys backdated to the given ages; return the key ids."""
    iam = iam_client(account_id)
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    for group in groups:
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_group(GroupName=group)
        iam.add_user_to_group(GroupName=group, UserName=name)
    return [add_key(account_id, name, key, now) for key in keys]


def add_key(account_id: str, user_name: str, seed: KeySeed, now: datetime | None = None) -> str:
    iam = iam_client(account_id)
    key_id = iam.create_access_key(UserName=user_name)["AccessKey"]["AccessKeyId"]
    if seed.status != "Active":
        iam.update_access_key(UserName=user_name, AccessKeyId=key_id, Status=seed.status)
    backdate(account_id, key_id, seed, now)
    return key_id


def backdate(account_id: str, key_id: str, seed: KeySeed, now: datetime | None = None) -> None:
    """Set a key's CreateDate and last use (moto stores naive UTC datetimes)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    key = iam_backends[account_id]["aws"].access_keys[key_id]
    key.create_date = moment - timedelta(days=seed.age_days)
    if seed.used_days_ago is not None:
        key.last_used = AccessKeyLastUsed(moment - timedelta(days=seed.used_days_ago), seed.service, seed.region)


def verify_sender(address: str) -> None:
    admin_client("ses", DEFAULT_ACCOUNT_ID).verify_email_identity(EmailAddress=address)
