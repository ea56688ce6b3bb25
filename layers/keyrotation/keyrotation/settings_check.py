"""Every setting of the stack, checked once, in ListAccounts, before any account is touched.

The template's constraints catch a malformed parameter; this module catches the
ones the template cannot: numbers too large to mean anything (3,000,000 days
overflows every date the audit computes), OUs that do not exist, two tag keys
that are the same key, and email addresses that pass the template's pattern but
cannot be delivered, or a sender SES has not verified. A bad setting raises
:class:`~keyrotation.errors.InvalidConfiguration` (or
:class:`~keyrotation.errors.SenderNotVerified`) naming the parameter, its value
and the rule, so the run fails in its first step and changes nothing.

Example:
    >>> env = {
    ...     "ROTATION_PERIOD_DAYS": "75", "INACTIVE_PERIOD_DAYS": "90", "DELETE_PERIOD_DAYS": "100",
    ...     "WARNING_DAYS": "7", "MAX_ACTIONS_PER_ACCOUNT": "50", "MAX_CONCURRENCY": "10",
    ...     "EXEMPT_TAG_KEY": "key-rotation:exempt", "EXEMPT_GROUP_NAME": "", "MAX_EXEMPTION_DAYS": "365",
    ...     "OWNER_EMAIL_TAG_KEY": "email",
    ...     "EXCLUDE_ACCOUNTS": "", "INCLUDE_OUS": "", "SENDER_EMAIL": "", "SECURITY_TEAM_EMAIL": "",
    ...     "SCHEDULE_EXPRESSION": "cron(0 6 * * ? *)", "DRY_RUN_NOTIFY_OWNERS": "false", "ALERT_EMAIL": "",
    ... }
    >>> check_settings(env).sender is None
    True
    >>> check_settings({**env, "DRY_RUN_NOTIFY_OWNERS": "yes"})
    Traceback (most recent call last):
    ...
    keyrotation.errors.InvalidConfiguration: DRY_RUN_NOTIFY_OWNERS must be 'true' or 'false', got 'yes'
    >>> check_settings({**env, "WARNING_DAYS": "999999999"})
    Traceback (most recent call last):
    ...
    keyrotation.errors.InvalidConfiguration: WarningDays is 999999999: it must be at most 365 (days)
    >>> check_settings({**env, "EXEMPT_TAG_KEY": "Email"})
    Traceback (most recent call last):
    ...
    keyrotation.errors.InvalidConfiguration: ExemptTagKey is 'Email' and OwnerEmailTagKey is 'email': \
they must be different tag keys (IAM tag keys ignore case), or no user with an owner tag is ever rotated
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from keyrotation import config
from keyrotation.config import LifecycleConfig, ScopeConfig
from keyrotation.errors import InvalidConfiguration, SenderNotVerified
from keyrotation.limits import quote, some
from keyrotation.notifications.addresses import normalize_address

#: The longest period (RotationPeriodDays, InactivePeriodDays, DeletePeriodDays), in days: ten years.
MAX_PERIOD_DAYS = 3650
#: The most days before a disable that a user can be warned: one year.
MAX_WARNING_DAYS = 365
#: The template's own MaxValue of MaxActionsPerAccount and MaxConcurrency, checked again here.
MAX_ACTIONS_PER_ACCOUNT = 500
MAX_CONCURRENCY = 1000

_NOT_FOUND_CODES = frozenset({"ParentNotFoundException", "OrganizationalUnitNotFoundException"})


@dataclass(frozen=True)
class Settings:
    """The run's settings, each checked. ``sender`` None means SenderEmail is empty: no email is sent."""

    lifecycle: LifecycleConfig
    scope: ScopeConfig
    sender: str | None
    security_team: str | None
    alert_email: str | None
    dry_run_notify_owners: bool


def _at_most(parameter: str, value: int, limit: int, unit: str) -> None:
    if value > limit:
        raise InvalidConfiguration(f"{parameter} is {value}: it must be at most {limit} ({unit})")


def _address(env: Mapping[str, str], name: str, parameter: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if normalize_address(raw) is None:
        raise InvalidConfiguration(
            f"{parameter} is {quote(raw)}: it is not one deliverable address (a plain local@domain, no leading, "
            f"trailing or double dot in either part); correct the stack parameter, or set it empty to send no email"
        )
    return raw


def check_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings that need no AWS call, checked; raise :class:`InvalidConfiguration` on the first bad one."""
    env = os.environ if env is None else env
    for parameter, days in config.periods(env).items():  # each in range before they are judged together
        _at_most(parameter, days, MAX_WARNING_DAYS if parameter == "WarningDays" else MAX_PERIOD_DAYS, "days")
    lifecycle = LifecycleConfig.from_env(env)  # present, whole numbers, Rotation < Inactive < Delete, a schedule
    _at_most("MaxActionsPerAccount", lifecycle.max_actions_per_account, MAX_ACTIONS_PER_ACCOUNT, "actions")
    _at_most("MaxConcurrency", config.max_concurrency(env), MAX_CONCURRENCY, "accounts")
    owner_tag_key = config.owner_email_tag_key(env)
    if lifecycle.exempt_tag_key.casefold() == owner_tag_key.casefold():
        raise InvalidConfiguration(
            f"ExemptTagKey is {quote(lifecycle.exempt_tag_key)} and OwnerEmailTagKey is {quote(owner_tag_key)}: "
            "they must be different tag keys (IAM tag keys ignore case), or no user with an owner tag is ever rotated"
        )
    return Settings(
        lifecycle=lifecycle,
        scope=ScopeConfig.from_env(env),
        sender=_address(env, "SENDER_EMAIL", "SenderEmail"),
        security_team=_address(env, "SECURITY_TEAM_EMAIL", "SecurityTeamEmail"),
        alert_email=_address(env, "ALERT_EMAIL", "AlertEmail"),
        dry_run_notify_owners=config.dry_run_notify_owners(env),
    )


def check_units_exist(org: Any, scope: ScopeConfig) -> None:
    """Every IncludeOUs entry is an OU or root of this organization; name the ones that are not."""
    missing = []
    for unit in sorted(scope.include_ous):
        try:
            org.list_organizational_units_for_parent(ParentId=unit, MaxResults=1)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _NOT_FOUND_CODES:
                raise
            missing.append(unit)
    if missing:
        raise InvalidConfiguration(
            f"IncludeOUs names {some(missing, quoted=False)}, which does not exist in this organization: "
            "every entry must be the id of an OU (ou-...) or root (r-...) of the organization; correct the parameter"
        )


def check_sender_verified(ses: Any, sender: str | None, region: str) -> None:
    """SES has verified ``sender`` (the address, or its domain) in this region; no sender, nothing to check."""
    if sender is None:
        return
    domain = sender.rpartition("@")[2]
    found = ses.get_identity_verification_attributes(Identities=[sender, domain])["VerificationAttributes"]
    statuses = {
        identity: found.get(identity, {}).get("VerificationStatus", "not requested") for identity in (sender, domain)
    }
    if "Success" in statuses.values():
        return
    raise SenderNotVerified(
        f"SenderEmail {quote(sender)} is not verified in SES in {region} (address: {statuses[sender]}, "
        f"domain {quote(domain)}: {statuses[domain]}), so no owner and no security team could be told of a rotation: "
        f"verify the address or its domain in SES in {region} (aws ses verify-email-identity --email-address "
        f"{sender} --region {region}), or set SenderEmail empty to send no email"
    )
