"""The digest event a ledger record stands for: which section of a digest, and what it tells.

Only what concerns the user's person is news: actions done (in a dry run,
planned) and the notices ``disable-soon``, ``reenabled``, ``blocked`` and
``exemption-expiring``. A rotation's email says how to read the new key.

Example:
    >>> from keyrotation.events import Account, Run
    >>> from keyrotation.notifications.settings import Guide
    >>> from keyrotation.ledger_records import NoticeRecord
    >>> from keyrotation.model import NoticeKind
    >>> record = NoticeRecord("111122223333", "bob", None, NoticeKind.BLOCKED, "two keys, both in use")
    >>> guide = Guide("eu-west-1", "email", "key-rotation:exempt", "Exempt", None, 15, 25)
    >>> digest_event(record, Account("111122223333", "prod", ""), Run("run-1", False), guide, date(2026, 1, 15))
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
from keyrotation.ledger_records import ActionRecord, ActionStatus, NoticeRecord, RunRecord
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


def digest_event(record: RunRecord, account: Account, run: Run, guide: Guide, today: date) -> tuple[str, Any] | None:
    """The digest section and event a record stands for, or None when it is nobody's news."""
    if isinstance(record, ActionRecord):
        shown = ActionStatus.PLANNED if run.dry_run else ActionStatus.DONE
        if record.status is not shown:
            return None
        if record.type is ActionType.ROTATE:
            return "rotated", _rotation(record, account, guide, today, preview=run.dry_run)
        change = KeyChange(record.user_name, record.key_id, record.reason)
        if record.type is ActionType.DISABLE:
            return "disabled", replace(change, adoption=adoption_of(record.adoption))
        if record.type is ActionType.DELETE:
            return "deleted", change
        return None
    if isinstance(record, NoticeRecord):
        return _notice_event(record, account, guide)
    return None


def _rotation(record: ActionRecord, account: Account, guide: Guide, today: date, preview: bool) -> Rotation:
    user_name = record.user_name
    secret_name = record.secret_name or naming.secret_name(account.account_id, user_name)
    secret_arn = None if preview else (record.secret_arn or None)
    if preview:
        disable_on: date | None = today + timedelta(days=guide.disable_grace_days)
        delete_on: date | None = today + timedelta(days=guide.delete_grace_days)
    else:
        disable_on, delete_on = as_day(record.disable_on), as_day(record.delete_on)
    return Rotation(
        user_name=user_name,
        old_key_id=record.key_id,
        new_key_id=None if preview else (record.new_key_id or None),
        secret_name=secret_name,
        secret_arn=secret_arn,
        read_command=read_secret_command(secret_arn or secret_name, _region_of(secret_arn, guide.region)),
        disable_on=disable_on,
        delete_on=delete_on,
        reason=record.reason,
    )


def _region_of(arn: str | None, default: str) -> str:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[3] else default


def _notice_event(record: NoticeRecord, account: Account, guide: Guide) -> tuple[str, Any] | None:
    kind, user_name = record.type, record.user_name
    if kind is NoticeKind.DISABLE_SOON:
        secret_name = naming.secret_name(account.account_id, user_name)
        line, seed = helper_setup(secret_name, guide.region)
        return "disable_soon", DisableSoon(
            user_name=user_name,
            key_id=as_text(record.key_id),
            disable_on=as_day(record.due),
            detail=record.detail,
            last_used=as_moment(record.last_used),
            last_used_service=as_recorded(record.last_used_service),
            last_used_region=as_recorded(record.last_used_region),
            key_created=as_day(record.key_created),
            secret_name=secret_name,
            read_command=read_secret_command(secret_name, guide.region),
            adoption=adoption_of(record.adoption),
            helper_line=line,
            helper_seed=seed,
        )
    if kind is NoticeKind.REENABLED:
        return "reenabled", Reenabled(
            user_name, as_text(record.key_id), as_day(record.due), record.detail, adoption=adoption_of(record.adoption)
        )
    if kind is NoticeKind.BLOCKED:
        return "blocked", Blocked(user_name, record.key_id or None, record.detail, as_day(record.due))
    if kind is NoticeKind.EXEMPTION_EXPIRING:
        return "exemption_expiring", ExemptionExpiring(user_name, as_day(record.due), record.detail)
    return None
