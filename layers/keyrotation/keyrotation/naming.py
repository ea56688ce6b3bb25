"""Names: the user's secret, and the ledger's keys.

A secret is named ``Account_<AccountId>_User_<UserName>_AccessKey``. IAM user
names may contain a comma, which Secrets Manager refuses; such characters
become ``_`` and, so that two users can never share a secret, the name then
carries a short hash of the original user name.

    >>> secret_name("111122223333", "alice")
    'Account_111122223333_User_alice_AccessKey'
    >>> secret_name("111122223333", "ops,admin")
    'Account_111122223333_User_ops_admin_hdc4d8368_AccessKey'
"""

from __future__ import annotations

import hashlib
import re

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9/_+=.@-]")
SECRET_NAME_PATTERN = "Account_*_User_*_AccessKey"


def secret_name(account_id: str, user_name: str) -> str:
    safe = _NOT_ALLOWED.sub("_", user_name)
    if safe != user_name:
        digest = hashlib.sha256(user_name.encode()).hexdigest()[:8]
        safe = f"{safe}_h{digest}"
    return f"Account_{account_id}_User_{safe}_AccessKey"


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def account_sk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def action_sk(account_id: str, user_name: str, key_id: str, action_type: str) -> str:
    return f"ACCOUNT#{account_id}#ACTION#{user_name}#{key_id}#{action_type}"


def notice_sk(account_id: str, user_name: str, key_id: str | None, kind: str) -> str:
    return f"ACCOUNT#{account_id}#NOTICE#{user_name}#{key_id or '-'}#{kind}"


def email_sk(account_id: str, recipient: str) -> str:
    return f"ACCOUNT#{account_id}#EMAIL#{recipient}"


def delivery_pk(account_id: str) -> str:
    return f"DELIVERY#{account_id}"


def delivery_sk(user_name: str) -> str:
    return f"USER#{user_name}"
