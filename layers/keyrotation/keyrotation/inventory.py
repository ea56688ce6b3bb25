"""Reading IAM: users, their keys (with last use), tags and groups, as model values.

The audit reads the account's credential report (:mod:`keyrotation.credential_report`), then reads in
full only the users :mod:`keyrotation.triage` picks: ListAccessKeys and ListUserTags each, and who they
are (GetUser each, or ListUsers, 100 users a page, when that takes fewer calls). A key's last use comes
from the report when the report shows the key (matched by creation time), else from GetAccessKeyLastUsed,
and only for users the policy has something to say about. The exemption group's members are read once
per account (GetGroup), when triage picks someone (:func:`keyrotation.audit.audit_account`). The action
functions re-read their user in full (:func:`read_user`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from keyrotation.aws import error_code, translate_errors
from keyrotation.credential_report import ReportUser
from keyrotation.model import AccessKey, KeyStatus, UserSnapshot, creation_order, recorded
from keyrotation.paging import items

#: IAM's ListUsers page size.
USERS_PER_PAGE = 100


@dataclass(frozen=True)
class Identity:
    """Who a user is: what GetUser or ListUsers say (the report has no unique id)."""

    arn: str
    user_id: str


def list_users(iam: Any) -> Iterator[dict[str, Any]]:
    yield from items(iam, "list_users", "Users")


def identities(iam: Any, names: Sequence[str], population: int) -> dict[str, Identity]:
    """The identity of each user in ``names`` that exists, by name.

    ``population`` is how many users the account has: when listing them all takes fewer calls than
    asking for each (ListUsers returns 100 a page), they are listed.
    """
    if not names:
        return {}
    wanted = set(names)
    if len(wanted) > -(-population // USERS_PER_PAGE):
        return {
            user["UserName"]: Identity(user["Arn"], user["UserId"])
            for user in list_users(iam)
            if user["UserName"] in wanted
        }
    found = {}
    for name in names:
        try:
            with translate_errors():
                user = iam.get_user(UserName=name)["User"]
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                continue
            raise
        found[name] = Identity(user["Arn"], user["UserId"])
    return found


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


def with_report_last_use(key: AccessKey, row: ReportUser | None) -> AccessKey | None:
    """``key`` with its last use as the report shows it, or None when the report does not show the key.

    The report has no key ids: a key is the report's key created in the same second. Two keys of the
    user created in the same second cannot be told apart; neither is taken from the report.
    """
    if row is None:
        return None
    second = key.created.replace(microsecond=0)
    same = [shown for shown in row.keys if shown.created.replace(microsecond=0) == second]
    if len(same) != 1:
        return None
    shown = same[0]
    return replace(
        key,
        last_used=shown.last_used,
        last_used_service=shown.last_used_service,
        last_used_region=shown.last_used_region,
    )


def read_tags(iam: Any, user_name: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in items(iam, "list_user_tags", "Tags", UserName=user_name)}


def read_user(iam: Any, user_name: str, groups: frozenset[str] | None = None) -> UserSnapshot | None:
    """A fresh snapshot of one user (used before every mutation); None if the user is gone.

    Three calls: GetUser (ARN, unique id, and the user's tags, which it returns), ListGroupsForUser,
    ListAccessKeys. Two when the caller passes the user's ``groups`` as it knows them (ListGroupsForUser
    is then not called).
    """
    try:
        with translate_errors():
            user = iam.get_user(UserName=user_name)["User"]
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return None
        raise
    if groups is None:
        groups = frozenset(
            group["GroupName"] for group in items(iam, "list_groups_for_user", "Groups", UserName=user_name)
        )
    return UserSnapshot(
        user_name=user_name,
        user_arn=user["Arn"],
        keys=read_keys(iam, user_name, last_used=False),  # decisions never depend on last use
        tags={tag["Key"]: tag["Value"] for tag in user.get("Tags", [])},  # GetUser returns them all (at most 50)
        groups=groups,
        user_id=user["UserId"],
    )


def read_for_audit(
    iam: Any, user_name: str, identity: Identity, exempt_members: Collection[str], exempt_group: str
) -> UserSnapshot | None:
    """A user the audit reads in full, without the keys' last use; None if the user is gone.

    Group membership is the exemption group's, read once for the account (``exempt_members``).
    """
    try:
        keys = read_keys(iam, user_name, last_used=False)
        tags = read_tags(iam, user_name)
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return None
        raise
    return UserSnapshot(
        user_name=user_name,
        user_arn=identity.arn,
        keys=keys,
        tags=tags,
        groups=frozenset({exempt_group}) if user_name in exempt_members else frozenset(),
        user_id=identity.user_id,
    )
