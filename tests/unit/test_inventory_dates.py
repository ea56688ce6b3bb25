"""The inventory's next-action date is the day of the first run at which the policy acts on the key.

The truth is found the slow way: the policy asked at every daily run from now on, the keys as they stand.
The inventory (keyrotation.key_inventory) asks the policy only at the moments its verdict can change
(:func:`keyrotation.policy.decision_moments`, which triage's quiet mark uses too), so a moment missing
from that list shows here as a date later than the runs'.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from keyrotation import key_inventory, policy
from keyrotation.key_inventory import UserView
from keyrotation.model import AccessKey, Delivery, KeyStatus, UserSnapshot
from localaws.defaults import default_lifecycle

CONFIG = default_lifecycle()  # daily runs
NOW = datetime(2030, 6, 1, 6, 0, tzinfo=UTC)
ARN = "arn:aws:iam::111122223333:user/alice"


def first_action(user: UserSnapshot, key_id: str) -> tuple[str, date] | None:
    """What the first daily run from tomorrow on does to ``key_id``, and that run's day (3 years ahead at most)."""
    for day in range(1, key_inventory.HORIZON_DAYS):
        moment = NOW + timedelta(days=day)
        for action in policy.decide(user, Delivery(), moment, CONFIG).actions:
            if action.key_id == key_id:
                return action.type.value, moment.date()
    return None


def next_action(user: UserSnapshot) -> tuple[str, str]:
    decision = policy.decide(user, Delivery(), NOW, CONFIG)
    view = UserView(user, read=True, delivery=Delivery(), decision=decision)
    (row,) = key_inventory.user_rows(view, "111122223333", "prod", NOW, CONFIG, {}, dry_run=False)
    return row["nextAction"], row["nextActionDate"]


@pytest.mark.parametrize("beyond", [1, 30, 200])
def test_a_key_held_back_by_a_tag_too_far_ahead_is_rotated_the_day_after_the_tag_names(beyond: int) -> None:
    """A dated tag beyond MaxExemptionDays exempts no one and lets nothing happen (an invalid tag) until it is
    near enough to exempt; the exemption then ends after the tag's day, and the overdue key is rotated."""
    key = AccessKey("AKIAOLD", KeyStatus.ACTIVE, NOW - timedelta(days=CONFIG.rotation_days + 5))
    last_day = NOW.date() + timedelta(days=CONFIG.max_exemption_days + beyond)
    user = UserSnapshot("alice", ARN, keys=(key,), tags={CONFIG.exempt_tag_key: last_day.isoformat()})
    assert not policy.decide(user, Delivery(), NOW, CONFIG).actions  # held back today

    expected = first_action(user, key.key_id)

    assert expected == ("rotate", last_day + timedelta(days=1))
    assert next_action(user) == (expected[0], expected[1].isoformat())


def test_a_young_key_gets_the_day_its_rotation_is_due() -> None:
    """The common case, which the shortcut always got right: the last run before the key is R days old."""
    key = AccessKey("AKIANEW", KeyStatus.ACTIVE, NOW - timedelta(days=10))
    user = UserSnapshot("alice", ARN, keys=(key,))

    expected = first_action(user, key.key_id)

    assert expected is not None
    assert next_action(user) == (expected[0], expected[1].isoformat())
