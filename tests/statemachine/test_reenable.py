"""A person re-enables a key the product disabled: the real state machine honours it once.

docs/lifecycle.md, "The grace periods": the first re-enable of a key the product disabled is honoured for D-I
days from the day of the run that finds it (the owner and the security team are told), then the key
is disabled again and deleted D-I days later; a second re-enable is not honoured: the next run
disables the key again at once (and says so), and deletes it D-I days later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from localaws import KeySeed, LocalAws, Stack
from tests.statemachine.invariants import Watch, ledger_items

pytestmark = pytest.mark.statemachine

START = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
EMAIL = {"SenderEmail": "key-rotation@example.com", "SecurityTeamEmail": "security@example.com"}


@pytest.fixture
def reenabled(aws: LocalAws) -> dict[str, Any]:
    with time_machine.travel(START - timedelta(hours=1), tick=True):
        org = aws.organization(["alpha"])
        aws.verify_sender(EMAIL["SenderEmail"])
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, **EMAIL})
        alpha = org.account("alpha")
        old, new = org.create_user(alpha, "alice", [KeySeed(95), KeySeed(20)], tags={"email": "alice@example.com"})
        watch = Watch(stack, [alpha])
        watch.start()
    return {"stack": stack, "watch": watch, "alpha": alpha, "old": old, "new": new}


def run_on(stack: Stack, watch: Watch, day: int) -> str:
    with time_machine.travel(START + timedelta(days=day), tick=True):
        execution = stack.run({})
        assert execution.status == "SUCCEEDED", (day, execution.cause)
        watch.check(execution.name, when=f"on day {day}")
        problems = watch.compliance_problems(execution.name)
        assert not problems, f"after the run of day {day}:\n" + "\n".join(problems)
    return execution.name


def reenable(watch: Watch, alpha: str, key_id: str, day: int) -> None:
    with time_machine.travel(START + timedelta(days=day) - timedelta(hours=3), tick=True):
        watch.set_status_by_hand(alpha, "alice", key_id, "Active")


def status(watch: Watch, alpha: str, key_id: str) -> str | None:
    key = watch.last.users[(alpha, "alice")].keys.get(key_id)
    return None if key is None else key.status


def notices(stack: Stack, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [
        item
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{run_id}")
        if item.get("kind") == "notice" and item.get("type") == kind
    ]


def test_the_first_re_enable_is_honoured_for_d_minus_i_days_and_a_second_one_is_not(
    reenabled: dict[str, Any],
) -> None:
    stack, watch, alpha, old = reenabled["stack"], reenabled["watch"], reenabled["alpha"], reenabled["old"]
    quarantine = watch.schedule.delete - watch.schedule.inactive  # D-I, 10 days by default

    run_on(stack, watch, 0)
    assert status(watch, alpha, old) == "Inactive"  # 95 days old, its replacement 20: disabled

    reenable(watch, alpha, old, 1)  # the owner finds it was in use
    found = run_on(stack, watch, 1)
    assert status(watch, alpha, old) == "Active", "the first re-enable is honoured"
    (notice,) = notices(stack, found, "reenabled")
    assert notice["keyId"] == old
    honoured_until = (START + timedelta(days=1 + quarantine)).date().isoformat()
    assert notice["due"].startswith(honoured_until)
    assert honoured_until in notice["detail"] and "not honoured" not in notice["detail"]

    for day in (2, quarantine):  # honoured through the D-I days
        later = run_on(stack, watch, day)
        assert status(watch, alpha, old) == "Active", day
        assert not notices(stack, later, "reenabled"), "told once"

    run_on(stack, watch, 1 + quarantine)
    assert status(watch, alpha, old) == "Inactive", "disabled again once the D-I days are over"

    reenable(watch, alpha, old, 2 + quarantine)  # a second re-enable
    again = run_on(stack, watch, 2 + quarantine)
    assert status(watch, alpha, old) == "Inactive", "a second re-enable is not honoured"
    (refused,) = notices(stack, again, "reenabled")
    assert refused["keyId"] == old and "not honoured" in refused["detail"]

    run_on(stack, watch, 1 + 2 * quarantine)
    assert status(watch, alpha, old) == "Inactive", "kept D-I days after the day it was disabled again"
    run_on(stack, watch, 2 + 2 * quarantine)
    assert status(watch, alpha, old) is None, "deleted D-I days after it was disabled again"
