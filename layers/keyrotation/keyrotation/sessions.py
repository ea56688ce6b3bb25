"""Session policies: what each function may do once it holds the member-account role.

The member role (member-account/role.yaml) can do everything any function needs. No function
needs all of it, so each assumes the role with the session policy of its :class:`Purpose`:
AWS then grants the intersection of the role's policy and the session policy. The policies of
the functions that act on one user name that user (and that user's secret) as their only
resource, so a function holding its session can touch no other user.

Each purpose's actions are written here once; ``tests/statemachine/test_session_policies.py``
proves that the operations each function is seen to call are exactly the ones granted.

The session name says which function of which run holds the session; CloudTrail shows it in
every event the session causes (``userIdentity.arn`` ends in ``/<session name>``).

Example:
    >>> target = Target(partition="aws", region="eu-west-1", account_id="111122223333", user_name="alice")
    >>> document = session_policy(Purpose.DISABLE, target)
    >>> [statement["Action"] for statement in document["Statement"]]
    [['iam:GetUser', 'iam:ListAccessKeys', 'iam:ListGroupsForUser'], ['iam:UpdateAccessKey']]
    >>> document["Statement"][1]["Resource"]
    ['arn:aws:iam::111122223333:user/alice', 'arn:aws:iam::111122223333:user/*/alice']
    >>> session_name(Purpose.DISABLE, "run-2026-11-24")
    'key-rotation-disable-run-2026-11-24'
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from keyrotation import naming

PENDING_STAGE = "AWSPENDING"
SESSION_NAME_PREFIX = "key-rotation-"
_SESSION_NAME_MAX = 64
_NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]", re.ASCII)
# AWS packs a session policy; a plain-text document of this size is far below the packed limit.
MAX_POLICY_CHARS = 2048


class Purpose(str, Enum):
    """Why a function enters a member account: one per function that does."""

    AUDIT = "audit"
    CREATE = "create"
    VERIFY = "verify"
    STORE = "store"
    DISABLE = "disable"
    DELETE = "delete"
    DISCARD = "discard"

    @property
    def needs_user(self) -> bool:
        """Whether the session is for one user's key (every purpose but the account-wide audit)."""
        return self is not Purpose.AUDIT


class Scope(str, Enum):
    """What a grant's Resource is."""

    ANY = "any"  # actions without resource-level permissions (iam:ListUsers)
    ALL_USERS = "all users"  # every user of the account
    USER = "user"  # the one user the session is for
    SECRET = "secret"  # the user's secret (the resource), not a password  # nosec B105
    EXEMPTION_GROUP = "exemption group"


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    scope: Scope
    condition: dict[str, dict[str, str]] | None = None


#: A user read afresh before a change (:func:`keyrotation.inventory.read_user`): GetUser returns the user's tags.
READ_USER = ("iam:GetUser", "iam:ListAccessKeys", "iam:ListGroupsForUser")
#: CreateKey's reading: its groups are the audit's (:data:`keyrotation.actions.GROUPS_AS_AUDITED`).
READ_USER_BUT_GROUPS = ("iam:GetUser", "iam:ListAccessKeys")

GRANTS: dict[Purpose, tuple[Grant, ...]] = {
    Purpose.AUDIT: (
        Grant("ListUsers", ("iam:ListUsers",), Scope.ANY),
        Grant("CredentialReport", ("iam:GenerateCredentialReport", "iam:GetCredentialReport"), Scope.ANY),
        Grant(
            "ReadKeys",
            ("iam:GetAccessKeyLastUsed", "iam:GetUser", "iam:ListAccessKeys", "iam:ListUserTags"),
            Scope.ALL_USERS,
        ),
        Grant("ReadExemptionGroup", ("iam:GetGroup",), Scope.EXEMPTION_GROUP),
    ),
    Purpose.CREATE: (
        Grant("ReadUser", READ_USER_BUT_GROUPS, Scope.USER),
        # Disable and delete: only to take the new key back when it cannot be written to the secret.
        Grant("CreateKey", ("iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:UpdateAccessKey"), Scope.USER),
        # TagResource: a secret is created with its tags (its user's id, and the token the ledger recorded).
        Grant(
            "WritePending",
            (
                "secretsmanager:CreateSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:TagResource",
            ),
            Scope.SECRET,
        ),
        Grant(
            "UserOnlyPolicy",
            ("secretsmanager:PutResourcePolicy",),
            Scope.SECRET,
            {"Bool": {"secretsmanager:BlockPublicPolicy": "true"}},
        ),
    ),
    Purpose.VERIFY: (
        Grant(
            "ReadPendingOnly",
            ("secretsmanager:GetSecretValue",),
            Scope.SECRET,
            {"StringEquals": {"secretsmanager:VersionStage": PENDING_STAGE}},
        ),
    ),
    Purpose.STORE: (
        # No IAM at all: VerifyKey proved the new key Active a moment before (keyrotation.actions.deliver).
        # DescribeSecret: only when the labels are not where CreateKey saw them.
        Grant(
            "Promote",
            ("secretsmanager:DescribeSecret", "secretsmanager:TagResource", "secretsmanager:UpdateSecretVersionStage"),
            Scope.SECRET,
        ),
    ),
    Purpose.DISABLE: (
        Grant("ReadUser", READ_USER, Scope.USER),
        Grant("DisableKey", ("iam:UpdateAccessKey",), Scope.USER),
    ),
    Purpose.DELETE: (
        Grant("ReadUser", READ_USER, Scope.USER),
        Grant("DeleteKey", ("iam:DeleteAccessKey",), Scope.USER),
    ),
    Purpose.DISCARD: (
        Grant("IsDelivered", ("secretsmanager:DescribeSecret",), Scope.SECRET),
        Grant("TakeBackKey", ("iam:DeleteAccessKey", "iam:GetUser", "iam:UpdateAccessKey"), Scope.USER),
    ),
}


@dataclass(frozen=True)
class Target:
    """Where the session is used: the account, and the one user a per-key function acts on."""

    partition: str
    region: str
    account_id: str
    user_name: str | None = None
    exemption_group: str | None = None

    def resources(self, scope: Scope) -> list[str]:
        iam = f"arn:{self.partition}:iam::{self.account_id}"
        if scope is Scope.ANY:
            return ["*"]
        if scope is Scope.ALL_USERS:
            return [f"{iam}:user/*"]
        if scope is Scope.EXEMPTION_GROUP:
            if not self.exemption_group:
                return []
            return [f"{iam}:group/{self.exemption_group}", f"{iam}:group/*/{self.exemption_group}"]
        if not self.user_name:
            raise ValueError(f"a session for one user's key needs the user's name ({scope.value})")
        if scope is Scope.USER:
            # A user name cannot hold '/', so the second pattern matches the same user on any path, and only it.
            return [f"{iam}:user/{self.user_name}", f"{iam}:user/*/{self.user_name}"]
        name = naming.secret_name(self.account_id, self.user_name)
        # Secrets Manager appends '-' and six random characters to the name.
        return [f"arn:{self.partition}:secretsmanager:{self.region}:{self.account_id}:secret:{name}-??????"]


def session_policy(purpose: Purpose, target: Target) -> dict[str, Any]:
    """The session policy for ``purpose`` in ``target``'s account (a grant with no resource is left out)."""
    if purpose.needs_user and not target.user_name:
        raise ValueError(f"the {purpose.value} session is for one user's key: name the user")
    statements = []
    for grant in GRANTS[purpose]:
        resources = target.resources(grant.scope)
        if not resources:
            continue
        statement: dict[str, Any] = {
            "Sid": grant.sid,
            "Effect": "Allow",
            "Action": sorted(grant.actions),
            "Resource": resources,
        }
        if grant.condition:
            statement["Condition"] = grant.condition
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_text(purpose: Purpose, target: Target) -> str:
    """The session policy as AssumeRole's ``Policy`` takes it (compact JSON)."""
    text = json.dumps(session_policy(purpose, target), separators=(",", ":"))
    if len(text) > MAX_POLICY_CHARS:
        raise ValueError(f"the {purpose.value} session policy is {len(text)} characters, over {MAX_POLICY_CHARS}")
    return text


def granted_actions(purpose: Purpose) -> frozenset[str]:
    """Every action the ``purpose`` session may call (``service:Operation``)."""
    return frozenset(action for grant in GRANTS[purpose] for action in grant.actions)


def session_name(purpose: Purpose, run_id: str) -> str:
    """``key-rotation-<purpose>-<run id>``: at most 64 characters of the ones AWS allows.

    A run id too long to fit keeps its start and gets a hash of the whole, so two runs never share a name.

        >>> len(session_name(Purpose.DISCARD, "x" * 80))
        64
    """
    head = f"{SESSION_NAME_PREFIX}{purpose.value}-"
    run = _NOT_IN_SESSION_NAME.sub("-", run_id)
    if len(head) + len(run) > _SESSION_NAME_MAX:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
        run = f"{run[: _SESSION_NAME_MAX - len(head) - len(digest) - 1]}.{digest}"
    return head + run


def purpose_of(name: str) -> Purpose | None:
    """The purpose a session name was made for (what CloudTrail's reader asks), or None.

    >>> purpose_of("key-rotation-store-run-1")
    <Purpose.STORE: 'store'>
    """
    if not name.startswith(SESSION_NAME_PREFIX):
        return None
    word = name[len(SESSION_NAME_PREFIX) :].split("-", 1)[0]
    return next((purpose for purpose in Purpose if purpose.value == word), None)
