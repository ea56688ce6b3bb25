"""A year of daily runs of the real state machine over a small organization, with every invariant checked after each.

The clock is moved forward with time-machine; moto and the functions both read it. Every run is at
06:00 UTC. A day on which no lifecycle date can fall (computed from the keys as they are, see
:func:`lifecycle_dates`) is skipped, but never more than three in a row: about 130 run days in the year,
each checked with :class:`~tests.statemachine.invariants.Watch`. Once a week, a day that acted is run a
second time at the very same moment, which must act on nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine

from localaws import KeySeed, LocalAws, Organization, Stack
from tests.statemachine.invariants import Watch, delivered_key_id, ledger_items, start_of_day

pytestmark = pytest.mark.statemachine

START = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)  # every run at 06:00 UTC, like the default schedule
SEEDED = START - timedelta(hours=1)  # seeded ages fall between runs, never inside one
DAYS = 365
EXEMPT_TAG = "key-rotation:exempt"
EXEMPT_UNTIL = (START + timedelta(days=100)).date()  # the dated exemption ends after day 100
HAND_MADE_FROM = 110  # the first day a user adds a key of their own (once they have a free slot)
REFUSED_ON = 5  # the day a service control policy refuses a rotation; minutes later the user makes a key by hand
TAG_FIXED_ON = 200  # the day the unreadable exemption tag is removed
LEFTOVERS_GONE_BY = 100 + (100 - 75) + 2  # D + (D-R) + 2 days


def population(org: Organization) -> dict[str, tuple[str, str]]:
    """Users covering docs/lifecycle.md, "Every case"; returns name -> (account, name)."""
    alpha, beta = org.account("alpha"), org.account("beta")
    users: dict[str, dict[str, tuple[list[KeySeed], dict[str, str], list[str]]]] = {
        alpha: {
            "fresh": ([KeySeed(10, used_days_ago=1)], {}, []),
            "due": ([KeySeed(80, used_days_ago=2)], {}, []),
            "ancient": ([KeySeed(400)], {}, []),
            "pair": ([KeySeed(95, used_days_ago=30), KeySeed(20, used_days_ago=1)], {}, []),
            "spare-blocks": ([KeySeed(60, used_days_ago=1), KeySeed(50, status="Inactive")], {}, []),
            "lone-inactive": ([KeySeed(30, status="Inactive")], {}, []),
            "never-used": ([KeySeed(74)], {}, []),
            "makes-own-key": ([KeySeed(30, used_days_ago=1)], {}, []),
            "refused-once": ([KeySeed(69, used_days_ago=1)], {}, []),  # rotated by the run of day REFUSED_ON
            "no-keys": ([], {}, []),
        },
        beta: {
            "exempt-true": ([KeySeed(200)], {EXEMPT_TAG: "TRUE"}, []),  # not an exemption: unreadable, reported
            "exempt-until": ([KeySeed(150)], {EXEMPT_TAG: EXEMPT_UNTIL.isoformat()}, []),
            "exempt-group": ([KeySeed(300), KeySeed(120, status="Inactive")], {}, ["IAMKeyRotationExemptionGroup"]),
            "bad-tag": ([KeySeed(120)], {EXEMPT_TAG: "yes"}, []),
            "late-pair": ([KeySeed(400), KeySeed(300)], {}, []),
        },
    }
    names = {}
    for account_id, specs in users.items():
        for name, (keys, tags, groups) in specs.items():
            org.create_user(account_id, name, keys, tags=tags, groups=groups, now=SEEDED)
            names[name] = (account_id, name)
    return names


def lifecycle_dates(watch: Watch) -> Iterator[datetime]:
    """Every moment at which a key action of docs/lifecycle.md can fall due, for the keys and users as they are now.

    A superset: each moment the policy acts from is the later of some of these (for each key, its creation
    plus R, I, D, I-R or D-R, less one run interval, as it acts at the last run before each; D-I days after
    the day the product disabled it; the day after a dated exemption). Warnings are notices, not key
    actions, and are left out.
    """
    s = watch.schedule
    for user in watch.last.users.values():
        for key in user.keys.values():
            for offset in (s.R, s.I, s.D, s.I - s.R, s.D - s.R):
                yield key.created + offset - s.interval
            if key.key_id in watch.disabled_by_product:
                yield start_of_day(watch.disabled_by_product[key.key_id]) + (s.D - s.I)
        value = next((v for k, v in user.tags.items() if k.lower() == s.exempt_tag_key.lower()), "")
        try:
            yield datetime.combine(date.fromisoformat(value.strip()) + timedelta(days=1), time(), tzinfo=UTC)
        except ValueError:
            continue


def next_run_day(watch: Watch, day: int) -> int:
    """The first day whose run comes at or after the next lifecycle date (at least one run every four days, and the
    days the test itself acts). Skipped days are days on which no key action can fall due."""
    candidates = [day + 4, REFUSED_ON, HAND_MADE_FROM, TAG_FIXED_ON, DAYS]
    for moment in lifecycle_dates(watch):
        candidates.append(-((START - moment) // timedelta(days=1)))  # ceil: the first run at or after it
    return min(c for c in candidates if c > day)


def action_statuses(stack: Stack, run_id: str) -> Counter[tuple[str, str]]:
    return Counter(
        (item["type"], item["status"])
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{run_id}")
        if item.get("kind") == "action"
    )


def failed_actions(stack: Stack, run_id: str) -> list[tuple[str, str, str, str, str]]:
    """What went wrong in a run, for the failure message (the ledger holds key ids, never a secret)."""
    return [
        (item["type"], item["userName"], item["keyId"], item.get("error", ""), item.get("cause", ""))
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{run_id}")
        if item.get("kind") == "action" and item.get("status") == "failed"
    ]


def keys_of(org: Organization, account_id: str, user: str) -> dict[str, str]:
    listed = org.client("iam", account_id).list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in listed}


@pytest.fixture
def year(aws: LocalAws) -> dict[str, Any]:
    with time_machine.travel(SEEDED, tick=True):
        org = aws.organization(["alpha", "beta"])
        # The management account has no users; excluding it, as many organizations do, keeps each run short.
        # MaxConcurrency is the template's default: both accounts run at once, as they would in AWS.
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})
        users = population(org)
        watch = Watch(stack, [org.account("alpha"), org.account("beta")])
        watch.start()
    return {"org": org, "stack": stack, "users": users, "watch": watch}


def test_a_year_of_daily_runs_keeps_every_promise(aws: LocalAws, year: dict[str, Any]) -> None:
    org: Organization = year["org"]
    stack: Stack = year["stack"]
    watch: Watch = year["watch"]
    users: dict[str, tuple[str, str]] = year["users"]
    rotations: Counter[str] = Counter()
    first_changed: dict[str, int] = {}
    run_days: list[int] = []
    repeated_days: list[int] = []
    own_key: str | None = None
    refused_own_key: str | None = None
    own_key_current_while_secret_key_dead = False
    before_the_product = set(watch.hand_made)
    checked_leftovers = False

    day = 0
    while day <= DAYS:
        moment = START + timedelta(days=day)
        with time_machine.travel(moment, tick=True):
            if own_key is None and day >= HAND_MADE_FROM and len(keys_of(org, *users["makes-own-key"])) == 1:
                own_key = watch.add_hand_made_key(*users["makes-own-key"])
            if day == TAG_FIXED_ON:
                org.client("iam", users["bad-tag"][0]).untag_user(UserName="bad-tag", TagKeys=[EXEMPT_TAG])
            before = watch.last
            if day == REFUSED_ON:
                refused = users["refused-once"][1]
                aws.faults.add(
                    "iam",
                    "CreateAccessKey",
                    "AccessDenied",
                    times=100,
                    status=403,
                    when=lambda params, user=refused: params.get("UserName") == user,
                )
            execution = stack.run({})
            if day == REFUSED_ON:
                aws.faults.clear()
                failed = failed_actions(stack, execution.name)
                assert execution.status == "FAILED" and [f[:2] for f in failed] == [("rotate", "refused-once")], failed
                watch.check(execution.name, settled=False, when=f"on day {day} (a rotation refused)")
                refused_own_key = watch.add_hand_made_key(*users["refused-once"])  # within minutes of the refusal
            else:
                assert execution.status == "SUCCEEDED", (day, failed_actions(stack, execution.name))
                watch.check(execution.name, when=f"on day {day}")
                problems = watch.compliance_problems(execution.name)
                assert not problems, f"after the run of day {day} (what Prowler would report):\n" + "\n".join(problems)
        run_days.append(day)
        for where, after in watch.last.users.items():
            added = set(after.keys) - set(before.users[where].keys)
            if (
                added
                or set(after.keys) != set(before.users[where].keys)
                or any(after.keys[k].status != before.users[where].keys[k].status for k in after.keys if k not in added)
            ):
                first_changed.setdefault(where[1], day)
            rotations[where[1]] += len(added - watch.hand_made)
        if not checked_leftovers and day >= LEFTOVERS_GONE_BY:
            # docs/lifecycle.md, "What the tests check": with a daily run, anything left over from before the
            # product is gone by then.
            for name in ("fresh", "due", "ancient", "pair", "spare-blocks", "lone-inactive", "never-used", "late-pair"):
                left = set(watch.last.users[users[name]].keys) & before_the_product
                assert not left, f"day {day}: {name} still has keys from before the product: {sorted(left)}"
            checked_leftovers = True
        if own_key is not None:
            maker = watch.last.users[users["makes-own-key"]]
            held = maker.keys.get(maker.secret_key_id or "")
            if own_key in maker.keys and maker.keys[own_key].active and (held is None or not held.active):
                own_key_current_while_secret_key_dead = True

        acted = any(status in ("done", "created") for _, status in action_statuses(stack, execution.name))
        if acted and (not repeated_days or repeated_days[-1] // 7 != day // 7):
            # Once a week, a day that acted runs again at the same moment (the clock held still):
            # the plan is a fixed point, so nothing more is done.
            with time_machine.travel(moment, tick=False):
                again = stack.run({})
                assert again.status == "SUCCEEDED", (day, "again", failed_actions(stack, again.name))
                watch.check(again.name, when=f"(the second run of day {day})")
            redone = {key: n for key, n in action_statuses(stack, again.name).items() if key[1] in ("done", "created")}
            assert redone == {}, f"day {day}: the second run at the same moment acted again: {redone}"
            repeated_days.append(day)
        day = next_run_day(watch, day)

    # The year did what the lifecycle says, not just nothing.
    assert run_days[-1] == DAYS and len(run_days) > 100
    assert "exempt-true" not in first_changed and "exempt-group" not in first_changed
    assert first_changed["exempt-until"] == (EXEMPT_UNTIL - START.date()).days + 1, (
        "rotated the day its exemption ended"
    )
    assert first_changed["bad-tag"] == TAG_FIXED_ON, "untouched while its tag was unreadable, rotated once fixed"
    # lone-inactive's key is D days old at 05:00 on day 70: the last run before that is day 69's.
    assert first_changed["late-pair"] == 0 and first_changed["lone-inactive"] == 69
    for name in ("fresh", "due", "ancient", "pair", "never-used", "late-pair", "spare-blocks"):
        assert rotations[name] >= 4, (name, rotations[name])
    assert rotations["lone-inactive"] == 0 and keys_of(org, *users["lone-inactive"]) == {}
    assert keys_of(org, *users["no-keys"]) == {}
    assert checked_leftovers
    assert own_key is not None and own_key_current_while_secret_key_dead
    assert rotations["refused-once"] >= 3
    assert refused_own_key not in watch.last.users[users["refused-once"]].keys, "rotated away in time, never discarded"
    assert watch.counts.get("blocked-survivals", 0) > 0, "a blocked rotation of a key older than I was seen"
    assert watch.counts["disabled"] >= 30 and watch.counts["deleted"] >= 30
    assert len(repeated_days) >= 30
    for name in ("fresh", "due", "ancient", "pair", "spare-blocks", "never-used", "late-pair", "bad-tag"):
        holds = watch.last.users[users[name]]
        assert holds.secret_matches and delivered_key_id(*users[name]) == holds.secret_key_id, name
