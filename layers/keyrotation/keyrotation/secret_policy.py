"""The resource policy of a user's key secret: the user reads it; the member role writes it; nobody else.

- The user may call ``GetSecretValue`` and ``DescribeSecret``, and nothing else, and only while its
  IAM unique id (``aws:userid``) is the one the secret was written for: a user deleted and created
  again under the same name has the same ARN but another id, and gets nothing.
- The member role may call the Secrets Manager actions the rotation's sessions use on an existing
  secret (:mod:`keyrotation.sessions`), and may read a version only by its ``AWSPENDING`` label:
  it verifies the key it has just written, and never reads the one the user holds (``AWSCURRENT``).
- Every other principal of any account, the account's root and administrators included, is denied
  every Secrets Manager action on the secret.

The allow for the user is what lets it read the secret without any policy of its own; the member
role's writes are allowed by its own policy (member-account/role.yaml), in its own account.
``tests/unit/test_secret_policy.py`` evaluates this document for every action and principal.

Example:
    >>> document = user_only_policy(
    ...     "arn:aws:iam::111122223333:user/alice", "AIDAEXAMPLEALICE", "arn:aws:iam::111122223333:role/Member"
    ... )
    >>> [statement["Sid"] for statement in document["Statement"]]
    ['UserReads', 'NobodyElse', 'OnlyThisUser', 'UserOnlyReads', 'RoleOnlyWrites', 'RoleReadsPendingOnly']
"""

from __future__ import annotations

from typing import Any

from keyrotation.sessions import PENDING_STAGE, Purpose, granted_actions

USER_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")
# What the member role does to a secret that exists (CreateSecret comes before any policy).
ROLE_ACTIONS = tuple(
    sorted(
        {
            action
            for purpose in Purpose
            for action in granted_actions(purpose)
            if action.startswith("secretsmanager:") and action != "secretsmanager:CreateSecret"
        }
    )
)


def user_only_policy(user_arn: str, user_id: str, manager_role_arn: str) -> dict[str, Any]:
    """The policy of the secret holding ``user_arn``'s key (``user_id`` is its IAM unique id)."""
    if not user_id:
        raise ValueError(f"the secret of {user_arn} must be bound to the user's unique id")
    everyone: dict[str, Any] = {"Effect": "Deny", "Principal": "*", "Resource": "*"}
    is_user = {"ArnEquals": {"aws:PrincipalArn": user_arn}}
    is_role = {"ArnEquals": {"aws:PrincipalArn": manager_role_arn}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UserReads",
                "Effect": "Allow",
                "Principal": {"AWS": user_arn},
                "Action": list(USER_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:userid": user_id}},
            },
            {
                **everyone,
                "Sid": "NobodyElse",
                "Action": "secretsmanager:*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [user_arn, manager_role_arn]}},
            },
            {
                **everyone,
                "Sid": "OnlyThisUser",
                "Action": "secretsmanager:*",
                "Condition": {**is_user, "StringNotEquals": {"aws:userid": user_id}},
            },
            {**everyone, "Sid": "UserOnlyReads", "NotAction": list(USER_ACTIONS), "Condition": is_user},
            {**everyone, "Sid": "RoleOnlyWrites", "NotAction": list(ROLE_ACTIONS), "Condition": is_role},
            {
                **everyone,
                "Sid": "RoleReadsPendingOnly",
                "Action": "secretsmanager:GetSecretValue",
                "Condition": {**is_role, "StringNotEquals": {"secretsmanager:VersionStage": PENDING_STAGE}},
            },
        ],
    }
