"""The ``credentials`` helper's cache: the key it last returned, in a file only its owner can read.

The file is written whole to a new file made with mode 0600 (``os.open``, never wider, even for a
moment) and moved over the old one (``os.replace``), so a reader never sees half a file and
concurrent helpers never mix two keys. A cache that others can read, or that another user owns, is
refused, as ssh refuses such a key file.

    >>> path = default_path("Account_111122223333_User_alice_AccessKey")   # doctest: +SKIP
    >>> write(path, held)                                                # doctest: +SKIP
    >>> read(path, held.secret_id) == held                               # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

#: What ``credential_process`` prints (the format the AWS CLI and SDKs read).
PROCESS_VERSION = 1


class CacheError(click.ClickException):
    """The cache file is missing, unsafe, or not one this helper wrote for this secret."""


@dataclass(frozen=True, repr=False)
class HeldKey:
    """The key the helper holds for one secret, and when it last looked at the secret. ``repr`` hides the key."""

    secret_id: str  # as given on the command line
    secret_arn: str
    version_id: str
    access_key_id: str
    secret_access_key: str
    checked_at: datetime

    def __repr__(self) -> str:
        return f"HeldKey({self.secret_arn}, {self.access_key_id}, checked at {self.checked_at.isoformat()})"

    def checked(self, moment: datetime) -> HeldKey:
        return replace(self, checked_at=moment)

    def process_output(self) -> str:
        """The ``credential_process`` document: the only place the secret access key is ever printed."""
        return json.dumps(
            {"Version": PROCESS_VERSION, "AccessKeyId": self.access_key_id, "SecretAccessKey": self.secret_access_key}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "secretId": self.secret_id,
            "secretArn": self.secret_arn,
            "versionId": self.version_id,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "checkedAt": self.checked_at.isoformat(),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> HeldKey:
        return cls(
            secret_id=str(document["secretId"]),
            secret_arn=str(document["secretArn"]),
            version_id=str(document["versionId"]),
            access_key_id=str(document["AccessKeyId"]),
            secret_access_key=str(document["SecretAccessKey"]),
            checked_at=datetime.fromisoformat(str(document["checkedAt"])).astimezone(UTC),
        )


def default_path(secret_id: str) -> Path:
    """``$XDG_CACHE_HOME/keyrotation/credentials/<hash of the secret id>.json`` (``~/.cache`` by default)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "keyrotation" / "credentials" / f"{hashlib.sha256(secret_id.encode()).hexdigest()[:32]}.json"


def read(path: Path, secret_id: str) -> HeldKey | None:
    """The key held in ``path`` for ``secret_id``; None when there is no cache file yet."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CacheError(f"cannot open the cache {path}: {error.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as file:
        status = os.fstat(file.fileno())
        if hasattr(os, "getuid") and status.st_uid != os.getuid():
            raise CacheError(f"the cache {path} belongs to another user (uid {status.st_uid}): it is not used")
        if stat.S_IMODE(status.st_mode) & 0o077:
            raise CacheError(
                f"the cache {path} can be read by others (mode {stat.S_IMODE(status.st_mode):04o}): it is not used. "
                f"Delete it, then seed again (keyrotation credentials --seed --secret-id {secret_id})"
            )
        try:
            held = HeldKey.from_json(json.load(file))
        except (ValueError, KeyError, TypeError):
            raise CacheError(
                f"the cache {path} is not a key rotation credentials cache: delete it and seed again"
            ) from None
    if held.secret_id != secret_id:
        raise CacheError(f"the cache {path} holds the key of another secret ({held.secret_id}); give another --cache")
    return held


def write(path: Path, held: HeldKey) -> None:
    """Replace ``path`` with ``held``, atomically; the file is mode 0600 from its creation."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(held.to_json(), file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
