"""What an earlier run of the product left behind, made with the product's own code and admin clients.

A secret counts as the product's only when the product created it for that very user and the ledger
recorded it (see ``keyrotation.secrets``), so a test that starts from "a rotation happened before"
goes through the same steps: the ledger records the token, the secret is created with it, and so on.
"""

from __future__ import annotations

from typing import Any

from moto.iam.models import iam_backends

from keyrotation import secrets
from keyrotation.ledger import Ledger
from keyrotation.model import UserSnapshot
from keyrotation.naming import secret_name
from localaws.clients import AdminClients

MEMBER_ROLE = "IAMKeyRotationMemberRole"


def _user(account_id: str, user_name: str) -> Any:
    return iam_backends[account_id]["aws"].users[user_name]


def _ledger(admin: AdminClients, table: str) -> Ledger:
    return Ledger(table, admin.client("dynamodb"))


def created_secret(admin: AdminClients, table: str, account_id: str, user_name: str, run_id: str = "an-earlier-run") -> str:
    """The user's secret, created and bound as CreateKey does (intent and token first); returns its ARN.

    A secret made by an earlier call (for another deployment's ledger, in the same account) is bound again.
    """
    user = _user(account_id, user_name)
    sm, name = admin.client("secretsmanager", account_id), secret_name(account_id, user_name)
    found = secrets.find(sm, name)
    tags = {tag["Key"]: tag["Value"] for tag in (found or {}).get("Tags", [])}
    token = tags.get(secrets.TOKEN_TAG) or secrets.new_token()
    _ledger(admin, table).record_intent(account_id, user_name, user.id, run_id, secret_token=token)
    if found is not None:
        return str(found["ARN"])
    return secrets.create(sm, name, UserSnapshot(user_name, user.arn, user_id=user.id), token)


def left_by_a_crashed_rotation(admin: AdminClients, table: str, account_id: str, user_name: str, key_id: str) -> None:
    """A rotation that died after CreateAccessKey and after recording the new key's id: the key is undelivered."""
    user = _user(account_id, user_name)
    arn = created_secret(admin, table, account_id, user_name)
    _ledger(admin, table).record_created(account_id, user_name, user.id, key_id, arn)


def delivered_before(admin: AdminClients, table: str, account_id: str, user_name: str, key_id: str) -> str:
    """An earlier rotation delivered ``key_id``: it is the current version of the user's secret, and in the ledger.

    Returns the version id. The next rotation is then a second one: AWSCURRENT has to move away from a version.
    """
    user = _user(account_id, user_name)
    key = next(k for k in user.access_keys if k.access_key_id == key_id)
    sm = admin.client("secretsmanager", account_id)
    role = f"arn:aws:iam::{account_id}:role/{MEMBER_ROLE}"
    arn = created_secret(admin, table, account_id, user_name)
    value = {"AccessKeyId": key_id, "SecretAccessKey": key.secret_access_key}
    secrets.apply_policy(sm, arn, user.arn, user.id, role)
    version = secrets.stage_pending(sm, arn, value).version_id
    value = {}
    tags = {"UserName": user_name, "AccessKeyId": key_id, "ManagedBy": secrets.MANAGED_BY, secrets.USER_ID_TAG: user.id}
    secrets.promote(sm, arn, version, tags)
    ledger = _ledger(admin, table)
    ledger.record_created(account_id, user_name, user.id, key_id, arn, secrets.policy_digest(arn, user.arn, user.id, role))
    ledger.record_delivered(account_id, user_name, user.id, key_id, arn)
    return version
