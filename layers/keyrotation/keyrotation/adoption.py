"""Is a rotated user's new key in use yet, is the old one still used, and could the key go away altogether?

Two questions the inventory answers for each key (issue 11), from the keys' last use as IAM records it.
Pure: no AWS call, no clock.

- **Adoption.** For a user the product rotated (its ledger record names the key it delivered and
  when), the new key is ``in use`` once IAM records a use after the delivery: the product's own
  verification (a GetCallerIdentity signed with the new key) comes just before the delivery, so it is
  never counted. The older key is ``still used`` when IAM records a use of it after the delivery:
  something still holds the old key, and breaks on the old key's disable date.
- **Hints off long-lived keys.** A key unused for :data:`UNUSED_DAYS` days or more (CIS 1.12) can be
  deleted. A key whose last use names an AWS service and region is one a role could serve: inside AWS,
  the workload's IAM role (EC2 instance profile, ECS task role, Lambda execution role); outside AWS,
  IAM Roles Anywhere. IAM records only a key's last use, not where it came from, so the hint says both.
  A delivered key not in use yet gets no hint: its only use is the product's own verification.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from keyrotation.model import AccessKey, Delivery, KeyStatus
    >>> delivered = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    >>> later, verified = delivered + timedelta(days=2), delivered - timedelta(seconds=20)
    >>> old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, delivered - timedelta(days=75), last_used=later)
    >>> new = AccessKey("AKIANEW", KeyStatus.ACTIVE, delivered - timedelta(seconds=30), last_used=verified)
    >>> record = Delivery(delivered_key_id="AKIANEW", delivered_at=delivered)
    >>> adoption(new, (old, new), record), adoption(old, (old, new), record)
    ('not yet', 'still used')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from keyrotation import clock
from keyrotation.model import AccessKey, Delivery

#: CIS 1.12: a credential unused for this many days should go.
UNUSED_DAYS = 45
IN_USE, NOT_YET, STILL_USED, NOT_USED = "in use", "not yet", "still used", "not used since"


def adoption(key: AccessKey, keys: Sequence[AccessKey], delivery: Delivery) -> str:
    """For a rotated user's key: the new key ``in use`` or ``not yet``; an older key ``still used`` or
    ``not used since`` (the delivery); empty when the product delivered no key of these to the user."""
    delivered = next((other for other in keys if other.key_id == delivery.delivered_key_id), None)
    if delivered is None or delivery.delivered_at is None:
        return ""
    since = delivery.delivered_at
    used = key.last_used is not None and key.last_used > since
    if key.key_id == delivered.key_id:
        return IN_USE if used else NOT_YET
    if key.created < delivered.created:
        return STILL_USED if used else NOT_USED
    return ""


def hint(key: AccessKey, now: datetime) -> str:
    """What would do away with a long-lived key, or empty (an Inactive key is on its way out already).

    >>> from datetime import UTC, datetime, timedelta
    >>> from keyrotation.model import AccessKey, KeyStatus
    >>> now = datetime(2026, 6, 1, tzinfo=UTC)
    >>> hint(AccessKey("AKIA", KeyStatus.ACTIVE, now - timedelta(days=60)), now)
    'never used in 45 days (CIS 1.12): delete the key'
    >>> used = AccessKey("AKIA", KeyStatus.ACTIVE, now - timedelta(days=60), now, "s3", "eu-west-1")
    >>> hint(used, now)
    "last used with s3 in eu-west-1: inside AWS use the workload's IAM role; outside AWS, IAM Roles Anywhere"
    """
    if not key.active:
        return ""
    last = key.last_used or key.created
    if clock.age_days(last, now) >= UNUSED_DAYS:
        never = "never used" if key.last_used is None else "not used"
        return f"{never} in {UNUSED_DAYS} days (CIS 1.12): delete the key"
    if key.last_used_service and key.last_used_region:
        return (
            f"last used with {key.last_used_service} in {key.last_used_region}: inside AWS use the workload's IAM "
            "role; outside AWS, IAM Roles Anywhere"
        )
    return ""


def key_hints(keys: Sequence[AccessKey], delivery: Delivery, now: datetime) -> list[tuple[str, str]]:
    """(key id, hint) for each of a user's keys that has one, as the inventory and the owner digest show them.

    The key the product delivered is left out while it is ``not yet`` in use: the only use IAM records
    for it is the product's own verification, which is no workload's.

    >>> from datetime import UTC, datetime, timedelta
    >>> from keyrotation.model import AccessKey, Delivery, KeyStatus
    >>> now = datetime(2026, 6, 1, tzinfo=UTC)
    >>> old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, now - timedelta(days=80), now - timedelta(days=50))
    >>> made = now - timedelta(days=2)
    >>> new = AccessKey("AKIANEW", KeyStatus.ACTIVE, made, made, "sts", "eu-west-1")
    >>> key_hints((old, new), Delivery(delivered_key_id="AKIANEW", delivered_at=now - timedelta(days=1)), now)
    [('AKIAOLD', 'not used in 45 days (CIS 1.12): delete the key')]
    """
    found = []
    for key in keys:
        if adoption(key, keys, delivery) == NOT_YET:
            continue
        text = hint(key, now)
        if text:
            found.append((key.key_id, text))
    return found


def uptake(keys: Sequence[AccessKey], delivery: Delivery) -> dict[str, Any] | None:
    """A rotated user's adoption as a ledger item's field (for the owner digest), or None when not rotated.

    ``{"deliveredAt", "keys": [{"keyId", "adoption", "lastUsed"}]}``: the delivered key and the older
    ones, each with its last use (ISO, or None); never more than the user's two keys.

    >>> from datetime import UTC, datetime, timedelta
    >>> from keyrotation.model import AccessKey, Delivery, KeyStatus
    >>> delivered = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    >>> old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, delivered - timedelta(days=75), delivered + timedelta(days=3))
    >>> new = AccessKey("AKIANEW", KeyStatus.ACTIVE, delivered - timedelta(seconds=30))
    >>> uptake((old, new), Delivery(delivered_key_id="AKIANEW", delivered_at=delivered))["keys"]
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'keyId': 'AKIAOLD', 'adoption': 'still used', 'lastUsed': '2026-06-04T06:00:00+00:00'},
     {'keyId': 'AKIANEW', 'adoption': 'not yet', 'lastUsed': None}]
    """
    found = [(key, adoption(key, keys, delivery)) for key in keys]
    shown = [
        {"keyId": key.key_id, "adoption": state, "lastUsed": key.last_used.isoformat() if key.last_used else None}
        for key, state in found
        if state
    ]
    if not shown or delivery.delivered_at is None:
        return None
    return {"deliveredAt": delivery.delivered_at.isoformat(), "keys": shown}
