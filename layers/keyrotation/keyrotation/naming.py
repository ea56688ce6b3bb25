"""Names: the user's secret, and the ledger's keys.

A user's secret is named ``Account_<AccountId>_User_<UserName>_AccessKey``, with
the user name written as it is, but for one character. IAM user names are 1-64
characters of ``A-Za-z0-9+=,.@_-``; Secrets Manager names allow
``A-Za-z0-9/_+=.@-``. The comma is the only character of a user name that
Secrets Manager refuses, and ``/`` the only character of a secret name that no
user name contains, so a comma is written ``/``:

    >>> secret_name("111122223333", "alice")
    'Account_111122223333_User_alice_AccessKey'
    >>> secret_name("111122223333", "ops,admin")
    'Account_111122223333_User_ops/admin_AccessKey'
    >>> secret_name("111122223333", "ops_admin")
    'Account_111122223333_User_ops_admin_AccessKey'

Every character maps to one character and back, and the account id has a fixed
length, so the mapping is one-to-one: two users never get the same secret name
(:func:`parse_secret_name` reads the account and the user back). A name is still
no proof of whose secret it is: IAM lets a deleted user's name be given to a new
user, and anyone allowed to may create a secret under any name.
:mod:`keyrotation.secrets` binds each secret to the user's unique id.

    >>> parse_secret_name("Account_111122223333_User_ops/admin_AccessKey")
    ('111122223333', 'ops,admin')
"""

from __future__ import annotations

import re

from keyrotation.errors import InvalidInput

#: A valid IAM user name (CreateUser's pattern and length).
USER_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_SECRET = re.compile(r"Account_(?P<account>[0-9]{12})_User_(?P<user>[A-Za-z0-9+=/.@_-]{1,64})_AccessKey")
SECRET_NAME_PATTERN = "Account_*_User_*_AccessKey"  # a name pattern, not a password  # nosec B105


def secret_name(account_id: str, user_name: str) -> str:
    """The name of the secret that holds ``user_name``'s key; raises InvalidInput for a name IAM would refuse."""
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise InvalidInput(f"{account_id!r} is not an AWS account id (12 digits)")
    if not USER_NAME.fullmatch(user_name):
        raise InvalidInput(f"{user_name!r} is not an IAM user name (1-64 characters of A-Za-z0-9+=,.@_-)")
    return f"Account_{account_id}_User_{user_name.replace(',', '/')}_AccessKey"


def parse_secret_name(name: str) -> tuple[str, str]:
    """The (account id, user name) whose secret ``name`` is: the inverse of :func:`secret_name`."""
    match = _SECRET.fullmatch(name)
    if match is None:
        raise InvalidInput(f"{name!r} is not the name of a user's key secret")
    return match["account"], match["user"].replace("/", ",")


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


def owed_sk(account_id: str, user_name: str) -> str:
    return f"ACCOUNT#{account_id}#OWED#{user_name}"


def delivery_pk(account_id: str) -> str:
    return f"DELIVERY#{account_id}"


def delivery_sk(user_name: str) -> str:
    return f"USER#{user_name}"


def plan_pk(run_id: str, account_id: str) -> str:
    return f"PLAN#{run_id}#{account_id}"


def plan_sk(index: int) -> str:
    return f"ACTION#{index}"


def overdue_sk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#OVERDUE"


def preview_pk(account_id: str) -> str:
    return f"PREVIEW#{account_id}"


def preview_sk(recipient: str) -> str:
    return f"RECIPIENT#{recipient}"
