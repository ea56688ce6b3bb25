"""Reading IAM: users, their keys (with last use), tags and groups, as model values.

Calls per user with keys: ListAccessKeys, ListUserTags, and GetAccessKeyLastUsed
for each key; users without keys cost one ListAccessKeys. Group membership of the
exemption group is read once per account (GetGroup).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from keyrotation.aws import error_code, translate_errors
from keyrotation.model import AccessKey, KeyStatus, UserSnapshot
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


def read_keys(iam: Any, user_name: str) -> tuple[AccessKey, ...]:
    keys = []
    for metadata in items(iam, "list_access_keys", "AccessKeyMetadata", UserName=user_name):
        with translate_errors():
            last = iam.get_access_key_last_used(AccessKeyId=metadata["AccessKeyId"]).get("AccessKeyLastUsed", {})
        keys.append(
            AccessKey(
                key_id=metadata["AccessKeyId"],
                status=KeyStatus(metadata["Status"]),
                created=metadata["CreateDate"],
                last_used=last.get("LastUsedDate"),
                last_used_service=_known(last.get("ServiceName")),
                last_used_region=_known(last.get("Region")),
            )
        )
    return tuple(sorted(keys, key=lambda key: (key.created, key.key_id)))


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
        keys=read_keys(iam, user_name),
        tags=read_tags(iam, user_name),
        groups=groups,
    )


def read_account(iam: Any, exempt_group: str) -> Iterator[UserSnapshot]:
    """Every user of the account that has at least one access key."""
    exempt_members = group_members(iam, exempt_group)
    for user in list_users(iam):
        name = user["UserName"]
        keys = read_keys(iam, name)
        if not keys:
            continue
        yield UserSnapshot(
            user_name=name,
            user_arn=user["Arn"],
            keys=keys,
            tags=read_tags(iam, name),
            groups=frozenset({exempt_group}) if name in exempt_members else frozenset(),
        )


def _known(value: str | None) -> str | None:
    return None if value in (None, "N/A") else value
