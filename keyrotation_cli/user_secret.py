"""Reading a user's key secret (``Account_<id>_User_<name>_AccessKey``, :mod:`keyrotation.naming`).

Its current version (``AWSCURRENT``, :data:`keyrotation.secrets.CURRENT`) holds the JSON object the
product's StoreSecret made current: ``{"AccessKeyId", "SecretAccessKey"}``. Only the user may read it,
so the helper reads it signed with the user's own key. Failures are sorted into what the person must
do: the key used was refused (disabled or deleted), the secret cannot be read, or AWS did not answer
now. No message here ever holds the secret's value.

    >>> version = read_current(signed_client(held.access_key_id, held.secret_access_key, region), arn)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import click
from botocore.exceptions import BotoCoreError, ClientError

from keyrotation.aws import THROTTLING_CODES, TRANSIENT_CODES, error_code
from keyrotation.secrets import CURRENT

#: The fields of the secret's value (what keyrotation.secrets.stage_pending writes).
ACCESS_KEY_ID, SECRET_ACCESS_KEY = "AccessKeyId", "SecretAccessKey"
#: What AWS answers to a request signed with a key that is disabled or deleted.
REFUSED_KEY_CODES = frozenset({"UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId"})


class SecretUnreadable(click.ClickException):
    """The secret is not there, or these credentials may not read it, or it holds no key."""


class KeyRefused(click.ClickException):
    """AWS refused the key the request was signed with: it is disabled or deleted."""


class NoAnswer(Exception):
    """AWS did not answer now (throttled, unavailable, unreachable): try again later."""


@dataclass(frozen=True, repr=False)
class SecretVersion:
    """The current version of the secret: its ARN and version id, and the key it holds. ``repr`` hides the key."""

    arn: str
    version_id: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"SecretVersion({self.arn}, {self.version_id}, {self.access_key_id})"


def region_of(secret_id: str) -> str | None:
    """The region in a secret's ARN; None for a name.

    >>> region_of("arn:aws:secretsmanager:eu-west-1:111122223333:secret:Account_111122223333_User_a_AccessKey-AbCdEf")
    'eu-west-1'
    >>> region_of("Account_111122223333_User_a_AccessKey") is None
    True
    """
    parts = secret_id.split(":")
    return parts[3] if secret_id.startswith("arn:") and len(parts) > 6 and parts[3] else None


def signed_client(access_key_id: str, secret_access_key: str, region: str) -> Any:
    """A Secrets Manager client signing with this key only (no credential chain: no profile can loop back here)."""
    session = boto3.Session(
        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region
    )
    return session.client("secretsmanager")


def read_current(sm: Any, secret_id: str, who: str) -> SecretVersion:
    """The secret's current version; ``who`` says whose credentials signed, for the error messages."""
    try:
        response = sm.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    except ClientError as error:
        code = error_code(error)
        if code in REFUSED_KEY_CODES:
            raise KeyRefused(code) from None
        if code in THROTTLING_CODES or code in TRANSIENT_CODES:
            raise NoAnswer(code) from None
        raise SecretUnreadable(
            f"the secret {secret_id} cannot be read with {who} ({code}): it must exist, be the user's key secret, "
            "and be read with the credentials of that user (only the user may read it)"
        ) from None
    except BotoCoreError as error:
        raise NoAnswer(type(error).__name__) from None
    try:
        value = json.loads(response["SecretString"])
        version = SecretVersion(
            arn=str(response["ARN"]),
            version_id=str(response["VersionId"]),
            access_key_id=str(value[ACCESS_KEY_ID]),
            secret_access_key=str(value[SECRET_ACCESS_KEY]),
        )
    except (KeyError, TypeError, ValueError):
        raise SecretUnreadable(
            f"the current version of {secret_id} holds no access key (no {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY}): "
            "is it a key rotation secret (Account_<id>_User_<name>_AccessKey)?"
        ) from None
    return version
