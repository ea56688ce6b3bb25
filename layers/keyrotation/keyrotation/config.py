"""Configuration, read from the environment the template gives each function.

Every value is validated when it is read; a bad value raises
:class:`~keyrotation.errors.InvalidConfiguration` naming the variable, so a
misconfigured stack fails its first step and changes nothing.

Example:
    >>> import os
    >>> env = {"ROTATION_PERIOD_DAYS": "75", "INACTIVE_PERIOD_DAYS": "90", "DELETE_PERIOD_DAYS": "100"}
    >>> LifecycleConfig.from_env(env).rotation_days
    75
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from keyrotation.errors import InvalidConfiguration
from keyrotation.ids import ACCOUNT_ID, OU_ID


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise InvalidConfiguration(f"{name} is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int | None = None, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        if default is None:
            raise InvalidConfiguration(f"{name} is not set")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidConfiguration(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise InvalidConfiguration(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise InvalidConfiguration(f"{name} must be 'true' or 'false', got {raw!r}")


def _id_list(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> frozenset[str]:
    items = [item.strip() for item in env.get(name, "").split(",") if item.strip()]
    bad = [item for item in items if not pattern.match(item)]
    if bad:
        raise InvalidConfiguration(f"{name} has values that are not {what}: {', '.join(bad)}")
    return frozenset(items)


@dataclass(frozen=True)
class LifecycleConfig:
    """The schedule every key follows. Ages are days since the old key was created.

    Invariant (checked on construction): 0 < rotation_days < inactive_days < delete_days.
    The periods between the schedule's steps (:attr:`disable_grace_days`,
    :attr:`quarantine_days`, :attr:`delete_grace_days`) are derived here, once.
    """

    rotation_days: int = 75
    inactive_days: int = 90
    delete_days: int = 100
    warning_days: int = 7
    max_actions_per_account: int = 50
    exempt_tag_key: str = "key-rotation:exempt"
    exempt_group_name: str = "IAMKeyRotationExemptionGroup"

    def __post_init__(self) -> None:
        if not 0 < self.rotation_days < self.inactive_days < self.delete_days:
            raise InvalidConfiguration(
                "RotationPeriodDays < InactivePeriodDays < DeletePeriodDays must hold with all above 0, got "
                f"{self.rotation_days}, {self.inactive_days}, {self.delete_days}"
            )
        if self.warning_days < 0:
            raise InvalidConfiguration(f"WarningDays must be 0 or more, got {self.warning_days}")
        if self.max_actions_per_account < 1:
            raise InvalidConfiguration(f"MaxActionsPerAccount must be at least 1, got {self.max_actions_per_account}")
        if not self.exempt_tag_key:
            raise InvalidConfiguration("ExemptTagKey must not be empty")

    @property
    def disable_grace_days(self) -> int:
        """I-R: days a user always gets between receiving a new key and the old one being disabled."""
        return self.inactive_days - self.rotation_days

    @property
    def quarantine_days(self) -> int:
        """D-I: days a key the product disabled stays Inactive, at least, before it is deleted."""
        return self.delete_days - self.inactive_days

    @property
    def delete_grace_days(self) -> int:
        """D-R: days a user always gets between receiving a new key and the old one being deleted."""
        return self.delete_days - self.rotation_days

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LifecycleConfig:
        env = _env(env)
        return cls(
            rotation_days=_int(env, "ROTATION_PERIOD_DAYS", 75, minimum=1),
            inactive_days=_int(env, "INACTIVE_PERIOD_DAYS", 90, minimum=1),
            delete_days=_int(env, "DELETE_PERIOD_DAYS", 100, minimum=1),
            warning_days=_int(env, "WARNING_DAYS", 7),
            max_actions_per_account=_int(env, "MAX_ACTIONS_PER_ACCOUNT", 50, minimum=1),
            exempt_tag_key=env.get("EXEMPT_TAG_KEY", "key-rotation:exempt").strip(),
            exempt_group_name=env.get("EXEMPT_GROUP_NAME", "IAMKeyRotationExemptionGroup").strip(),
        )


@dataclass(frozen=True)
class ScopeConfig:
    """Which accounts a run covers."""

    exclude_accounts: frozenset[str] = frozenset()
    include_ous: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScopeConfig:
        env = _env(env)
        return cls(
            exclude_accounts=_id_list(env, "EXCLUDE_ACCOUNTS", ACCOUNT_ID, "12-digit account ids"),
            include_ous=_id_list(env, "INCLUDE_OUS", OU_ID, "OU ids (ou-...) or root ids (r-...)"),
        )


def dry_run(env: Mapping[str, str] | None = None) -> bool:
    """The stack's DryRun parameter. An execution can ask for a dry run, never out of one."""
    return _bool(_env(env), "DRY_RUN", True)


def member_role_name(env: Mapping[str, str] | None = None) -> str:
    return _required(_env(env), "MEMBER_ROLE_NAME")


def ledger_table(env: Mapping[str, str] | None = None) -> str:
    return _required(_env(env), "LEDGER_TABLE")


def run_bucket(env: Mapping[str, str] | None = None) -> str:
    return _required(_env(env), "RUN_BUCKET")


def max_concurrency(env: Mapping[str, str] | None = None) -> int:
    return _int(_env(env), "MAX_CONCURRENCY", 10, minimum=1)


def owner_email_tag_key(env: Mapping[str, str] | None = None) -> str:
    return _env(env).get("OWNER_EMAIL_TAG_KEY", "email").strip() or "email"
