"""The notify function's settings: who sends, who gets the run report, what the emails tell people.

:class:`NotifySettings` is read once per invocation from the environment the
template gives the function; :class:`Guide` is the part of it the emails quote
(tag names, grace periods, whom to ask).

Every value of a :class:`Guide` comes from the function's environment (the template's
parameters): the grace periods are the lifecycle configuration's derived periods.

Example:
    >>> env = {
    ...     "AWS_REGION": "eu-west-1", "OWNER_EMAIL_TAG_KEY": "owner",
    ...     "ROTATION_PERIOD_DAYS": "30", "INACTIVE_PERIOD_DAYS": "40", "DELETE_PERIOD_DAYS": "45",
    ...     "WARNING_DAYS": "3", "MAX_ACTIONS_PER_ACCOUNT": "50",
    ...     "EXEMPT_TAG_KEY": "exempt", "EXEMPT_GROUP_NAME": "Exempt", "SCHEDULE_EXPRESSION": "rate(1 day)",
    ...     "MAX_EXEMPTION_DAYS": "365", "ALLOWED_EMAIL_DOMAINS": "example.com",
    ... }
    >>> guide = NotifySettings.from_env(env).guide
    >>> guide.owner_tag_key, guide.disable_grace_days, guide.delete_grace_days, guide.allowed_domains
    ('owner', 10, 15, ('example.com',))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from keyrotation.config import LifecycleConfig, bucket_owner, owner_email_tag_key
from keyrotation.errors import InvalidConfiguration
from keyrotation.notifications.addresses import normalize_address, normalize_domain

#: The product's name, as its emails sign and title themselves.
PRODUCT = "IAM access key rotation"


@dataclass(frozen=True)
class Guide:
    """What an email tells people about the product's settings (what to do, whom to ask).

    ``region`` is where the users' secrets are (the region the functions run in).
    ``allowed_domains``: an owner tag's address is mailed only in these domains (or their
    subdomains); empty, in any domain.
    """

    region: str
    owner_tag_key: str
    exempt_tag_key: str
    exempt_group_name: str
    security_team: str | None
    disable_grace_days: int
    delete_grace_days: int
    allowed_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotifySettings:
    """The notify function's configuration, from the environment the template gives it.

    ``sender`` None means SenderEmail is empty: nothing is sent, every digest is
    recorded ``not-configured``.

    >>> env = {
    ...     "SENDER_EMAIL": "keys@example.com", "AWS_REGION": "eu-west-1", "OWNER_EMAIL_TAG_KEY": "email",
    ...     "ROTATION_PERIOD_DAYS": "75", "INACTIVE_PERIOD_DAYS": "90", "DELETE_PERIOD_DAYS": "100",
    ...     "WARNING_DAYS": "7", "MAX_ACTIONS_PER_ACCOUNT": "50",
    ...     "EXEMPT_TAG_KEY": "key-rotation:exempt", "EXEMPT_GROUP_NAME": "IAMKeyRotationExemptionGroup",
    ...     "SCHEDULE_EXPRESSION": "cron(0 6 * * ? *)",
    ...     "MAX_EXEMPTION_DAYS": "365", "ALLOWED_EMAIL_DOMAINS": "",
    ... }
    >>> settings = NotifySettings.from_env(env)
    >>> settings.sender, settings.security_team, settings.template_bucket, settings.guide.region
    ('keys@example.com', None, None, 'eu-west-1')
    """

    sender: str | None
    security_team: str | None
    template_bucket: str | None
    template_prefix: str
    template_bucket_owner: str | None
    guide: Guide

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifySettings:
        env = os.environ if env is None else env
        lifecycle = LifecycleConfig.from_env(env)
        security_team = _configured_address(env, "SECURITY_TEAM_EMAIL")
        template_bucket = env.get("TEMPLATE_BUCKET", "").strip() or None
        region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
        if not region:
            raise InvalidConfiguration("AWS_REGION is not set")
        guide = Guide(
            region=region,
            owner_tag_key=owner_email_tag_key(env),
            exempt_tag_key=lifecycle.exempt_tag_key,
            exempt_group_name=lifecycle.exempt_group_name,
            security_team=security_team,
            disable_grace_days=lifecycle.disable_grace_days,
            delete_grace_days=lifecycle.delete_grace_days,
            allowed_domains=_domains(env, "ALLOWED_EMAIL_DOMAINS"),
        )
        return cls(
            sender=_configured_address(env, "SENDER_EMAIL"),
            security_team=security_team,
            template_bucket=template_bucket,
            template_prefix=env.get("TEMPLATE_PREFIX", "").strip(),
            template_bucket_owner=bucket_owner(env, "TEMPLATE_BUCKET_OWNER") if template_bucket else None,
            guide=guide,
        )


def _domains(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of domains (the template sets it; empty means any domain)."""
    if name not in env:
        raise InvalidConfiguration(f"{name} is not set")
    domains = []
    for raw in (item.strip() for item in env[name].split(",")):
        if not raw:
            continue
        domain = normalize_domain(raw.removeprefix("@"))
        if domain is None:
            raise InvalidConfiguration(f"{name} has a value that is not a domain: {raw!r}")
        domains.append(domain)
    return tuple(domains)


def _configured_address(env: Mapping[str, str], name: str) -> str | None:
    """The address as configured, checked but not rewritten: the IAM policy matches SenderEmail exactly."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if normalize_address(raw) is None:
        raise InvalidConfiguration(f"{name} must be a single email address, got {raw!r}")
    return raw
