"""Configuration, read from the environment the template gives each function.

template.yaml is the one place the settings' defaults are written: the template
sets every variable read here on every function that reads it, so a variable
that is missing is a configuration error, never a reason to guess a value.

Every value is validated when it is read; a bad or missing value raises
:class:`~keyrotation.errors.InvalidConfiguration` naming the variable, so a
misconfigured stack fails its first step and changes nothing.

Example:
    >>> env = {
    ...     "ROTATION_PERIOD_DAYS": "75", "INACTIVE_PERIOD_DAYS": "90", "DELETE_PERIOD_DAYS": "100",
    ...     "WARNING_DAYS": "7", "MAX_ACTIONS_PER_ACCOUNT": "50",
    ...     "EXEMPT_TAG_KEY": "key-rotation:exempt", "EXEMPT_GROUP_NAME": "IAMKeyRotationExemptionGroup",
    ...     "SCHEDULE_EXPRESSION": "cron(0 6 * * ? *)",
    ...     "MAX_EXEMPTION_DAYS": "365",
    ... }
    >>> schedule = LifecycleConfig.from_env(env)
    >>> schedule.rotation_days, schedule.disable_grace_days, schedule.quarantine_days, schedule.delete_grace_days
    (75, 15, 10, 25)
    >>> schedule.run_interval
    datetime.timedelta(days=1)
    >>> LifecycleConfig.from_env({**env, "WARNING_DAYS": ""})
    Traceback (most recent call last):
    ...
    keyrotation.errors.InvalidConfiguration: WARNING_DAYS is not set
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from keyrotation.errors import InvalidConfiguration
from keyrotation.ids import ACCOUNT_ID, OU_ID
from keyrotation.schedule import run_interval


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _present(env: Mapping[str, str], name: str) -> str:
    """The variable's value, stripped; it may be empty (a parameter whose empty value means "none")."""
    if name not in env:
        raise InvalidConfiguration(f"{name} is not set")
    return env[name].strip()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise InvalidConfiguration(f"{name} is not set")
    return value


def _int(env: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = _required(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise InvalidConfiguration(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise InvalidConfiguration(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = _required(env, name).lower()
    if raw in ("true", "false"):
        return raw == "true"
    raise InvalidConfiguration(f"{name} must be 'true' or 'false', got {raw!r}")


def _id_list(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> frozenset[str]:
    items = [item.strip() for item in _present(env, name).split(",") if item.strip()]
    bad = [item for item in items if not pattern.match(item)]
    if bad:
        raise InvalidConfiguration(f"{name} has values that are not {what}: {', '.join(bad)}")
    return frozenset(items)


@dataclass(frozen=True)
class LifecycleConfig:
    """The schedule every key follows. Ages are days since the old key was created.

    ``run_interval`` is the longest time between two scheduled runs, read from
    ``SCHEDULE_EXPRESSION`` (:func:`keyrotation.schedule.run_interval`): the
    policy acts at the last run before each deadline. Zero means a run can
    happen at any moment, and the policy acts on each date exactly.

    Invariants (checked on construction): 0 < rotation_days < inactive_days < delete_days, and the run
    interval is shorter than both rotation_days and inactive_days - rotation_days (so a new key is never
    due at once, and an old key is never disabled in the run that replaced it).
    The periods between the schedule's steps (:attr:`disable_grace_days`,
    :attr:`quarantine_days`, :attr:`delete_grace_days`) are derived here, once.
    """

    rotation_days: int
    inactive_days: int
    delete_days: int
    warning_days: int
    max_actions_per_account: int
    exempt_tag_key: str
    exempt_group_name: str
    max_exemption_days: int
    run_interval: timedelta = timedelta(0)
    #: The ScheduleExpression the run interval was read from ("" when none): it says on which day the run
    #: that acts on a date comes (:func:`keyrotation.policy.acting_run`), the day owners are told.
    schedule_expression: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.rotation_days < self.inactive_days < self.delete_days:
            raise InvalidConfiguration(
                "RotationPeriodDays < InactivePeriodDays < DeletePeriodDays must hold with all above 0, got "
                f"{self.rotation_days}, {self.inactive_days}, {self.delete_days}"
            )
        shortest = min(self.rotation_days, self.disable_grace_days)
        if not timedelta(0) <= self.run_interval < timedelta(days=shortest):
            raise InvalidConfiguration(
                f"ScheduleExpression can leave {self.run_interval} between two runs; that must be less than both "
                f"RotationPeriodDays ({self.rotation_days}) and InactivePeriodDays - RotationPeriodDays "
                f"({self.disable_grace_days}) days"
            )
        if self.schedule_expression and run_interval(self.schedule_expression) != self.run_interval:
            raise InvalidConfiguration(
                f"the run interval {self.run_interval} is not that of ScheduleExpression {self.schedule_expression!r}"
            )
        if self.warning_days < 0:
            raise InvalidConfiguration(f"WarningDays must be 0 or more, got {self.warning_days}")
        if self.max_actions_per_account < 1:
            raise InvalidConfiguration(f"MaxActionsPerAccount must be at least 1, got {self.max_actions_per_account}")
        if not self.exempt_tag_key:
            raise InvalidConfiguration("ExemptTagKey must not be empty")
        if self.max_exemption_days < 1:
            raise InvalidConfiguration(f"MaxExemptionDays must be at least 1, got {self.max_exemption_days}")

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
            rotation_days=_int(env, "ROTATION_PERIOD_DAYS", minimum=1),
            inactive_days=_int(env, "INACTIVE_PERIOD_DAYS", minimum=1),
            delete_days=_int(env, "DELETE_PERIOD_DAYS", minimum=1),
            warning_days=_int(env, "WARNING_DAYS"),
            max_actions_per_account=_int(env, "MAX_ACTIONS_PER_ACCOUNT", minimum=1),
            exempt_tag_key=_present(env, "EXEMPT_TAG_KEY"),
            exempt_group_name=_present(env, "EXEMPT_GROUP_NAME"),
            run_interval=run_interval(_required(env, "SCHEDULE_EXPRESSION")),
            max_exemption_days=_int(env, "MAX_EXEMPTION_DAYS", minimum=1),
            schedule_expression=_required(env, "SCHEDULE_EXPRESSION"),
        )


@dataclass(frozen=True)
class ScopeConfig:
    """Which accounts a run covers. Both lists may be empty (every account; no OU limit)."""

    exclude_accounts: frozenset[str]
    include_ous: frozenset[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScopeConfig:
        env = _env(env)
        return cls(
            exclude_accounts=excluded_accounts(env),
            include_ous=_id_list(env, "INCLUDE_OUS", OU_ID, "OU ids (ou-...) or root ids (r-...)"),
        )


def excluded_accounts(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The stack's ExcludeAccounts: never processed, whoever invokes a function."""
    return _id_list(_env(env), "EXCLUDE_ACCOUNTS", ACCOUNT_ID, "12-digit account ids")


def secrets_kms_key_alias(env: Mapping[str, str] | None = None) -> str | None:
    """SecretsKmsKeyAlias: the customer managed key a new secret is encrypted with; None, the AWS managed key."""
    alias = _present(_env(env), "SECRETS_KMS_KEY_ALIAS")
    if alias and not re.fullmatch(r"alias/[a-zA-Z0-9/_-]{1,250}", alias):
        raise InvalidConfiguration(f"SECRETS_KMS_KEY_ALIAS must be an alias (alias/...), got {alias!r}")
    return alias or None


def dry_run(env: Mapping[str, str] | None = None) -> bool:
    """The stack's DryRun parameter. An execution can ask for a dry run, never out of one."""
    return _bool(_env(env), "DRY_RUN")


def dry_run_notify_owners(env: Mapping[str, str] | None = None) -> bool:
    """The stack's DryRunNotifyOwners parameter: whether a dry run's previews also go to the key owners."""
    return _bool(_env(env), "DRY_RUN_NOTIFY_OWNERS")


def member_role_name(env: Mapping[str, str] | None = None) -> str:
    return _required(_env(env), "MEMBER_ROLE_NAME")


def ledger_table(env: Mapping[str, str] | None = None) -> str:
    return _required(_env(env), "LEDGER_TABLE")


def run_bucket(env: Mapping[str, str] | None = None) -> str:
    return _required(_env(env), "RUN_BUCKET")


def periods(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """RotationPeriodDays, InactivePeriodDays, DeletePeriodDays and WarningDays as set, by parameter name
    (read alone, so that a value out of range is named before the lifecycle built from them is judged)."""
    env = _env(env)
    return {
        "RotationPeriodDays": _int(env, "ROTATION_PERIOD_DAYS", minimum=1),
        "InactivePeriodDays": _int(env, "INACTIVE_PERIOD_DAYS", minimum=1),
        "DeletePeriodDays": _int(env, "DELETE_PERIOD_DAYS", minimum=1),
        "WarningDays": _int(env, "WARNING_DAYS"),
    }


def event_bus_arn(env: Mapping[str, str] | None = None) -> str:
    """The default event bus of the stack's account, where the key events go (:mod:`keyrotation.key_events`)."""
    arn = _required(_env(env), "EVENT_BUS_ARN")
    if not re.fullmatch(r"arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/default", arn):
        raise InvalidConfiguration(f"EVENT_BUS_ARN must be the ARN of a default event bus, got {arn!r}")
    return arn


def bucket_owner(env: Mapping[str, str] | None = None, name: str = "RUN_BUCKET_OWNER") -> str:
    """The account that must own a bucket the function reads or writes (every S3 call's ExpectedBucketOwner)."""
    owner = _required(_env(env), name)
    if not ACCOUNT_ID.fullmatch(owner):
        raise InvalidConfiguration(f"{name} must be a 12-digit account id, got {owner!r}")
    return owner


def max_concurrency(env: Mapping[str, str] | None = None) -> int:
    return _int(_env(env), "MAX_CONCURRENCY", minimum=1)


def owner_email_tag_key(env: Mapping[str, str] | None = None) -> str:
    return _required(_env(env), "OWNER_EMAIL_TAG_KEY")
