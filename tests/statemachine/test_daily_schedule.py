"""Over 200 daily runs of the real state machine at the default schedule: no Active key reaches 90 days.

Every run is at 06:00 UTC, as the template's default ScheduleExpression starts it, and nothing is
skipped: after every run, :class:`~tests.statemachine.invariants.Watch` checks every invariant and
what Prowler's ``iam_rotate_access_key_90_days`` and ``iam_user_two_active_access_key`` would report
(less the exceptions of docs/lifecycle.md, "The 90-day promise (CIS 1.14, Security Hub IAM.3)").
The users' first keys were made at different times of day, around the run's: before it, at it, a
second after it (like a key the product makes in a run), an hour after, in the evening; one user's key is first seen long past its rotation age, another user has two keys.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from localaws.defaults import parameter_defaults
from localaws import KeySeed, LocalAws, Stack
from tests.statemachine.invariants import Watch

pytestmark = pytest.mark.statemachine

START = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)  # the time of day of the default schedule (checked below)
RUNS = 210
SECOND = 1 / 86400  # a second, in days

# name -> the user's keys, as (age in days at START, status); an age's fraction sets the time of day.
USERS: dict[str, list[KeySeed]] = {
    "before-the-run": [KeySeed(30 + 1 / 24)],  # made at 05:00
    "at-the-run": [KeySeed(40)],  # made at 06:00:00
    "second-after": [KeySeed(50 - SECOND)],  # made at 06:00:01, as the product's own keys are
    "hour-after": [KeySeed(60 - 1 / 24)],  # made at 07:00
    "evening": [KeySeed(70 - 12 / 24)],  # made at 18:00
    "due-now": [KeySeed(74.5)],  # rotated by the first run, before it is 75 days old
    "late": [KeySeed(200)],  # first seen long past its rotation age: the late-rotation grace
    "pair": [KeySeed(85), KeySeed(10)],  # an old key and a newer one made by hand
}


def test_the_default_schedule_is_daily_at_six() -> None:
    """START's time of day is the default schedule's (the template is the one source of the default)."""
    assert parameter_defaults()["ScheduleExpression"] == f"cron({START.minute} {START.hour} * * ? *)"


@pytest.fixture
def daily(aws: LocalAws) -> dict[str, Any]:
    with time_machine.travel(START - timedelta(hours=1), tick=True):
        org = aws.organization(["alpha"])
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, "MaxConcurrency": "1"})
        alpha = org.account("alpha")
        for name, keys in USERS.items():
            org.create_user(alpha, name, keys, now=START)
        watch = Watch(stack, [alpha])
        watch.start()
    return {"stack": stack, "watch": watch}


def test_over_200_daily_runs_no_active_key_reaches_90_days(daily: dict[str, Any]) -> None:
    stack: Stack = daily["stack"]
    watch: Watch = daily["watch"]
    for day in range(RUNS):
        with time_machine.travel(START + timedelta(days=day), tick=True):
            execution = stack.run({})
            assert execution.status == "SUCCEEDED", (day, execution.cause)
            watch.check(execution.name, when=f"on day {day}")
            problems = watch.compliance_problems(execution.name)
            assert not problems, f"after the run of day {day}:\n" + "\n".join(problems)
    # The runs did what the lifecycle says, not just nothing.
    assert watch.runs == RUNS
    assert watch.counts["rotated"] >= 2 * len(USERS) and watch.counts["disabled"] >= 2 * len(USERS)
    assert watch.counts["deleted"] >= 2 * len(USERS)
