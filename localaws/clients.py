"""Clients as an account's administrator, to seed and inspect the in-memory AWS (never used by the product).

In the deployment account they are its own; in a member account they enter through the role AWS
Organizations creates in every account it creates (``OrganizationAccountAccessRole``).

    >>> admin = AdminClients()                    # doctest: +SKIP
    >>> admin.client("iam", "123456789012")       # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID

REGION = "us-east-1"
DEPLOYMENT_ACCOUNT = DEFAULT_ACCOUNT_ID
# moto accepts any credentials; these are the ones the in-memory AWS gives everyone who has none of their own.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's fake credentials, never a real secret  # nosec B105
    "AWS_SESSION_TOKEN": "testing",  # moto's fake credentials, never a real secret  # nosec B105
}


class AdminClients:
    """One cached client per service and account, safe to ask for from any thread."""

    def __init__(self) -> None:
        self._session = boto3.Session(
            region_name=REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"],
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._credentials: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()  # creating clients from one session is not thread-safe

    def client(self, service: str, account_id: str = DEPLOYMENT_ACCOUNT) -> Any:
        """A client in ``account_id`` (the deployment account's own when it is that one)."""
        with self._lock:
            if (service, account_id) not in self._clients:
                if account_id == DEPLOYMENT_ACCOUNT:
                    self._clients[(service, account_id)] = self._session.client(service)
                else:
                    credentials = self._member_credentials(account_id)
                    self._clients[(service, account_id)] = self._session.client(
                        service,
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"],
                    )
            return self._clients[(service, account_id)]

    def _member_credentials(self, account_id: str) -> dict[str, str]:
        if account_id not in self._credentials:
            self._credentials[account_id] = self.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="seed"
            )["Credentials"]
        return self._credentials[account_id]
