"""Seeding an organization: accounts, OUs, the member-account role, users with keys of any age.

>>> from localaws import KeySeed, LocalAws                        # doctest: +SKIP
>>> with LocalAws() as aws:                                       # doctest: +SKIP
...     org = aws.organization(["alpha", "beta"], without_role=["beta"])
...     (old,) = org.create_user(org.account("alpha"), "alice", [KeySeed(80, used_days_ago=1)])
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.iam.models import AccessKeyLastUsed, iam_backends

from localaws import cfn
from localaws.clients import DEPLOYMENT_ACCOUNT, REGION, AdminClients

MEMBER_ROLE_TEMPLATE = cfn.REPO / "member-account" / "role.yaml"
MEMBER_ROLE_NAME = "IAMKeyRotationMemberRole"


@dataclass(frozen=True)
class KeySeed:
    """A key to give a user: its age in days, status, and last use (days ago; None = never)."""

    age_days: float
    status: str = "Active"
    used_days_ago: float | None = None
    service: str = "s3"
    region: str = "eu-west-1"


@dataclass
class Organization:
    """An organization whose management account is the deployment account, and what seeds it."""

    id: str
    root_id: str
    management_account: str
    admin: AdminClients = field(repr=False)
    accounts: dict[str, str] = field(default_factory=dict)  # name -> id
    ous: dict[str, str] = field(default_factory=dict)  # "Parent/Child" -> id
    # The roles the member roles trust: the FunctionRoleArns output of the rotation stack deployed last.
    function_role_arns: list[str] = field(default_factory=list)
    member_roles: dict[str, str] = field(default_factory=dict)  # account id -> name of its member role
    # member-account/role.yaml, read once: parsing it for each of 10,000 accounts costs minutes.
    member_role_template: dict[str, Any] = field(default_factory=lambda: cfn.load(MEMBER_ROLE_TEMPLATE), repr=False)

    @classmethod
    def create(
        cls,
        admin: AdminClients,
        names: Sequence[str],
        ous: Mapping[str, Sequence[str]] | None = None,
        function_role_arns: Sequence[str] = (),
    ) -> Organization:
        """Member accounts ``names``; ``ous`` maps an OU path (``"Parent/Child"`` nests) to account names in it.

        The member roles deployed in it trust ``function_role_arns`` (those of a rotation stack already deployed).
        """
        org_client = admin.client("organizations")
        description = org_client.create_organization(FeatureSet="ALL")["Organization"]
        root_id = org_client.list_roots()["Roots"][0]["Id"]
        organization = cls(
            id=description["Id"],
            root_id=root_id,
            management_account=DEPLOYMENT_ACCOUNT,
            admin=admin,
            function_role_arns=list(function_role_arns),
        )
        for name in names:
            status = org_client.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
            organization.accounts[name] = status["AccountId"]
        for path, members in (ous or {}).items():
            parent = root_id
            parts = path.split("/")
            for depth, part in enumerate(parts):
                key = "/".join(parts[: depth + 1])
                if key not in organization.ous:
                    created = org_client.create_organizational_unit(ParentId=parent, Name=part)
                    organization.ous[key] = created["OrganizationalUnit"]["Id"]
                parent = organization.ous[key]
            for member in members:
                org_client.move_account(
                    AccountId=organization.accounts[member], SourceParentId=root_id, DestinationParentId=parent
                )
        return organization

    def account(self, name: str) -> str:
        return self.accounts[name]

    def client(self, service: str, account_id: str) -> Any:
        return self.admin.client(service, account_id)

    # -- the member-account role --------------------------------------------------------------------------------

    def deploy_member_role(
        self, account_id: str, role_name: str = MEMBER_ROLE_NAME, function_role_arns: Sequence[str] | None = None
    ) -> str:
        """Create member-account/role.yaml's role in ``account_id``, from the template itself.

        It trusts ``function_role_arns``, by default :attr:`function_role_arns` (the roles of the rotation
        stack deployed last), and is trusted anew by :meth:`trust_function_roles` after the next deploy.
        """
        trusted = self.function_role_arns if function_role_arns is None else function_role_arns
        props = self._member_role_properties(account_id, role_name, trusted)
        iam = self.client("iam", account_id)
        self.member_roles[account_id] = role_name
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

    def trust_function_roles(self, function_role_arns: Sequence[str]) -> None:
        """Make every member role deployed so far trust ``function_role_arns``, and those deployed from now on.

        What the member-account StackSet does after a rotation stack is deployed: it takes the stack's
        ``FunctionRoleArns`` output as its parameter and updates every instance.
        """
        self.function_role_arns = list(function_role_arns)
        for account_id, role_name in self.member_roles.items():
            props = self._member_role_properties(account_id, role_name, self.function_role_arns)
            self.client("iam", account_id).update_assume_role_policy(
                RoleName=role_name, PolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
            )

    def remove_member_role(self, account_id: str, role_name: str = MEMBER_ROLE_NAME) -> None:
        self.member_roles.pop(account_id, None)
        iam = self.client("iam", account_id)
        for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
        iam.delete_role(RoleName=role_name)

    def _member_role_properties(
        self, account_id: str, role_name: str, function_role_arns: Sequence[str]
    ) -> dict[str, Any]:
        """The role's properties as CloudFormation resolves them with the StackSet's parameters."""
        template = copy.deepcopy(self.member_role_template)
        # Before any rotation stack exists, the role trusts a role name that no function has.
        trusted = list(function_role_arns) or [
            f"arn:aws:iam::{self.management_account}:role/key-rotation/no-stack-deployed-yet"
        ]
        values = cfn.validate_parameters(
            template,
            {
                "RotationAccountId": self.management_account,
                "OrganizationId": self.id,
                "RoleName": role_name,
                "FunctionRoleArns": ",".join(trusted),
            },
        )
        resolver = cfn.Resolver.for_template(
            template, values, pseudo={"AWS::AccountId": account_id, "AWS::Partition": "aws", "AWS::Region": REGION}
        )
        return dict(resolver.resolve(template["Resources"]["MemberRole"]["Properties"]))

    # -- users and keys -----------------------------------------------------------------------------------------

    def create_user(
        self,
        account_id: str,
        name: str,
        keys: Sequence[KeySeed] = (),
        tags: Mapping[str, str] | None = None,
        groups: Iterable[str] = (),
        now: datetime | None = None,
    ) -> list[str]:
        """Create an IAM user with keys backdated to the given ages; return the key ids."""
        iam = self.client("iam", account_id)
        iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        for group in groups:
            with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
                iam.create_group(GroupName=group)
            iam.add_user_to_group(GroupName=group, UserName=name)
        return [self.add_key(account_id, name, key, now) for key in keys]

    def add_key(self, account_id: str, user_name: str, seed: KeySeed, now: datetime | None = None) -> str:
        return add_key(self.admin, account_id, user_name, seed, now)


def add_key(admin: AdminClients, account_id: str, user_name: str, seed: KeySeed, now: datetime | None = None) -> str:
    """Give a user a key backdated as ``seed`` says; return its id."""
    iam = admin.client("iam", account_id)
    key_id = str(iam.create_access_key(UserName=user_name)["AccessKey"]["AccessKeyId"])
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
