"""The digest event a ledger item stands for: which section of a digest, and what it tells.

Only what concerns the user's person is news: actions done (in a dry run,
planned) and the notices ``disable-soon``, ``reenabled``, ``blocked`` and
``exemption-expiring``. A rotation's email says how to read the new key.

Example:
    >>> from keyrotation.events import Account, Run
    >>> from keyrotation.notifications.settings import Guide
    >>> item = {"kind": "notice", "type": "blocked", "userName": "bob", "detail": "two keys, both in use"}
    >>> guide = Guide("eu-west-1", "email", "key-rotation:exempt", "Exempt", None, 15, 25)
    >>> digest_event(item, Account("111122223333", "prod", ""), Run("run-1", False), guide, date(2026, 1, 15))
    ('blocked', Blocked(user_name='bob', key_id=None, why='two keys, both in use', retry_on=None))
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from keyrotation import naming
from keyrotation.adoption import IN_USE, NOT_USED, NOT_YET, STILL_USED
from keyrotation.events import Account, Run
from keyrotation.ledger import ActionStatus, RecordKind
from keyrotation.model import ActionType, NoticeKind
from keyrotation.notifications.digest import (
    HELPER_LINE,
    HELPER_SEED,
    Adoption,
    Blocked,
    DisableSoon,
    ExemptionExpiring,
    KeyChange,
    KeyUse,
    Reenabled,
    Rotation,
)
from keyrotation.notifications.settings import Guide
from keyrotation.notifications.values import as_day, as_moment, as_recorded, as_text


def read_secret_command(secret_id: str, region: str) -> str:
    """The AWS CLI command that prints the user's new key (run with the user's own credentials).

    >>> print(read_secret_command("Account_1_User_a_AccessKey", "eu-west-1"))  # doctest: +ELLIPSIS
    aws secretsmanager get-secret-value --secret-id Account_1_User_a_AccessKey --region eu-west-1 --query ...
    """
    return (
        f"aws secretsmanager get-secret-value --secret-id {shlex.quote(secret_id)} "
        f"--region {shlex.quote(region)} --query SecretString --output text"
    )


def helper_setup(secret_id: str, region: str) -> tuple[str, str]:
    """``keyrotation credentials`` for the user's secret: the ``~/.aws/config`` line, and the command that seeds it.

    >>> line, seed = helper_setup("Account_111122223333_User_app_AccessKey", "eu-west-1")
    >>> print(line)
    credential_process = keyrotation credentials --secret-id Account_111122223333_User_app_AccessKey
    """
    quoted = shlex.quote(secret_id)
    return HELPER_LINE.format(secret_id=quoted), HELPER_SEED.format(secret_id=quoted, region=shlex.quote(region))


def adoption_of(value: Any) -> Adoption | None:
    """A ledger item's ``adoption`` field (:func:`keyrotation.adoption.uptake`), or None when absent or unreadable.

    >>> adoption_of({"deliveredAt": "2026-06-01T06:00:00+00:00", "keys": [
    ...     {"keyId": "AKIAOLD", "adoption": "still used", "lastUsed": "2026-06-03T08:00:00+00:00"},
    ...     {"keyId": "AKIANEW", "adoption": "not yet", "lastUsed": None}]}).still_used("AKIAOLD")
    True
    >>> adoption_of(None), adoption_of({"keys": "?"})
    (None, None)
    """
    if not isinstance(value, Mapping) or not isinstance(value.get("keys"), list):
        return None
    uses = [
        KeyUse(as_text(key.get("keyId")), as_text(key.get("adoption")), as_moment(key.get("lastUsed")))
        for key in value["keys"]
        if isinstance(key, Mapping)
    ]
    new = next((use for use in uses if use.state in (IN_USE, NOT_YET)), None)
    old = tuple(use for use in uses if use.state in (STILL_USED, NOT_USED))
    if new is None and not old:
        return None
    return Adoption(as_moment(value.get("deliveredAt")), new, old)


def digest_event(
    item: Mapping[str, Any], account: Account, run: Run, guide: Guide, today: date
) -> tuple[str, Any] | None:
    """The digest section and event an item stands for, or None when it is nobody's news."""
    if item.get("kind") == RecordKind.ACTION:
        shown = ActionStatus.PLANNED if run.dry_run else ActionStatus.DONE
        if item.get("status") != shown:
            return None
        kind = item.get("type")
        if kind == ActionType.ROTATE.value:
            return "rotated", _rotation(item, account, guide, today, preview=run.dry_run)
        change = KeyChange(as_text(item.get("userName")), as_text(item.get("keyId")), as_text(item.get("reason")))
        if kind == ActionType.DISABLE.value:
            return "disabled", replace(change, adoption=adoption_of(item.get("adoption")))
        if kind == ActionType.DELETE.value:
            return "deleted", change
        return None
    if item.get("kind") == RecordKind.NOTICE:
        return _notice_event(item, account, guide)
    return None


def _rotation(item: Mapping[str, Any], account: Account, guide: Guide, today: date, preview: bool) -> Rotation:
    user_name = as_text(item.get("userName"))
    secret_name = as_text(item.get("secretName")) or naming.secret_name(account.account_id, user_name)
    secret_arn = None if preview else (as_text(item.get("secretArn")) or None)
    if preview:
        disable_on: date | None = today + timedelta(days=guide.disable_grace_days)
        delete_on: date | None = today + timedelta(days=guide.delete_grace_days)
    else:
        disable_on, delete_on = as_day(item.get("disableOn")), as_day(item.get("deleteOn"))
    return Rotation(
        user_name=user_name,
        old_key_id=as_text(item.get("keyId")),
        new_key_id=None if preview else (as_text(item.get("newKeyId")) or None),
        secret_name=secret_name,
        secret_arn=secret_arn,
        read_command=read_secret_command(secret_arn or secret_name, _region_of(secret_arn, guide.region)),
        disable_on=disable_on,
        delete_on=delete_on,
        reason=as_text(item.get("reason")),
    )


def _region_of(arn: str | None, default: str) -> str:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[3] else default


def _notice_event(item: Mapping[str, Any], account: Account, guide: Guide) -> tuple[str, Any] | None:
    kind, user_name = item.get("type"), as_text(item.get("userName"))
    if kind == NoticeKind.DISABLE_SOON.value:
        secret_name = naming.secret_name(account.account_id, user_name)
        line, seed = helper_setup(secret_name, guide.region)
        return "disable_soon", DisableSoon(
            user_name=user_name,
            key_id=as_text(item.get("keyId")),
            disable_on=as_day(item.get("due")),
            detail=as_text(item.get("detail")),
            last_used=as_moment(item.get("lastUsed")),
            last_used_service=as_recorded(item.get("lastUsedService")),
            last_used_region=as_recorded(item.get("lastUsedRegion")),
            key_created=as_day(item.get("keyCreated")),
            secret_name=secret_name,
            read_command=read_secret_command(secret_name, guide.region),
            adoption=adoption_of(item.get("adoption")),
            helper_line=line,
            helper_seed=seed,
        )
    if kind == NoticeKind.REENABLED.value:
        key_id, detail = as_text(item.get("keyId")), as_text(item.get("detail"))
        return "reenabled", Reenabled(
            user_name, key_id, as_day(item.get("due")), detail, adoption=adoption_of(item.get("adoption"))
        )
    if kind == NoticeKind.BLOCKED.value:
        due = as_day(item.get("due"))
        return "blocked", Blocked(user_name, as_text(item.get("keyId")) or None, as_text(item.get("detail")), due)
    if kind == NoticeKind.EXEMPTION_EXPIRING.value:
        return "exemption_expiring", ExemptionExpiring(user_name, as_day(item.get("due")), as_text(item.get("detail")))
    return None
