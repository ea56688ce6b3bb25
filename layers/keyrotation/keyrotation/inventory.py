"""Reading IAM: users, their keys (with last use), tags and groups, as model values.

An account's audit costs, per user: ListAccessKeys, and ListUserTags when the user has keys;
GetAccessKeyLastUsed for each key only of users with an action or a notice. Group membership of
the exemption group is read once per account (GetGroup), users 100 a page (ListUsers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from keyrotation.aws import error_code, translate_errors
from keyrotation.model import AccessKey, KeyStatus, UserSnapshot, creation_order, recorded
from keyrotation.paging import items


def list_users(iam: Any) -> Iterator[dict[str, Any]]:
    yield from items(iam, "list_users", "Users")


def group_members(iam: Any, group_name: str) -> frozenset[str]:
    """User names in ``group_name``; empty when the group does not exist."""
    if not group_name:
        return frozenset()
    try:
        return frozenset(user["UserName"] for user in items(iam, "get_group", "Users", GroupName=group_name))
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return frozenset()
        raise


def read_keys(iam: Any, user_name: str, last_used: bool = True) -> tuple[AccessKey, ...]:
    """The user's keys, oldest first; with their last use unless ``last_used`` is False."""
    keys = [
        AccessKey(key_id=metadata["AccessKeyId"], status=KeyStatus(metadata["Status"]), created=metadata["CreateDate"])
        for metadata in items(iam, "list_access_keys", "AccessKeyMetadata", UserName=user_name)
    ]
    if last_used:
        keys = [with_last_use(iam, key) for key in keys]
    return tuple(sorted(keys, key=creation_order))


def with_last_use(iam: Any, key: AccessKey) -> AccessKey:
    """``key`` with when, by which service and in which region it was last used."""
    with translate_errors():
        last = iam.get_access_key_last_used(AccessKeyId=key.key_id).get("AccessKeyLastUsed", {})
    return replace(
        key,
        last_used=last.get("LastUsedDate"),
        last_used_service=recorded(last.get("ServiceName")),
        last_used_region=recorded(last.get("Region")),
    )


def read_tags(iam: Any, user_name: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in items(iam, "list_user_tags", "Tags", UserName=user_name)}


def read_user(iam: Any, user_name: str) -> UserSnapshot | None:
    """A fresh snapshot of one user (used before every mutation); None if the user is gone."""
    try:
        with translate_errors():
            user = iam.get_user(UserName=user_name)["User"]
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return None
        raise
    groups = frozenset(group["GroupName"] for group in items(iam, "list_groups_for_user", "Groups", UserName=user_name))
    return UserSnapshot(
        user_name=user_name,
        user_arn=user["Arn"],
        keys=read_keys(iam, user_name, last_used=False),  # decisions never depend on last use
        tags=read_tags(iam, user_name),
        groups=groups,
        user_id=user["UserId"],
    )


def read_account(iam: Any, exempt_group: str) -> Iterator[UserSnapshot]:
    """Every user of the account that has at least one access key, without the keys' last use.

    Last use only words warnings and reasons, never changes a decision: the audit reads it
    (:func:`with_last_use`) just for the users the policy has something to say about.
    """
    exempt_members = group_members(iam, exempt_group)
    for user in list_users(iam):
        name = user["UserName"]
        keys = read_keys(iam, name, last_used=False)
        if not keys:
            continue
        yield UserSnapshot(
            user_name=name,
            user_arn=user["Arn"],
            keys=keys,
            tags=read_tags(iam, name),
            groups=frozenset({exempt_group}) if name in exempt_members else frozenset(),
            user_id=user["UserId"],
        )
