"""The dates an owner is promised are the dates things happen (issue 9, item 6).

Daily runs of the real state machine at the default schedule (06:00 UTC) over users whose keys were
made at different times of day. After every run, the owner digests of the run are built from the
run's ledger items exactly as the Notify function builds them, and the run report as the report
function builds it. Every date a digest promises for a key (the old key's disable and delete dates
in a rotation's email, the disable date of a warning) must be the date of the run that then does
it, as the ledger and IAM show; an exemption's last day is shown as the tag gives it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from keyrotation.events import Account, Run
from keyrotation.ledger_records import run_records
from keyrotation.notifications import NotifySettings, build_digests, build_run_report
from localaws import KeySeed, LocalAws
from localaws.defaults import function_environment, parameter_defaults
from tests.statemachine.invariants import ledger_items

pytestmark = pytest.mark.statemachine

START = datetime(2025, 12, 1, 6, 0, tzinfo=UTC)  # the default schedule's time of day (checked below)
DAYS = 27  # day 0's rotations are disabled 15 days later and deleted 25 days later
EXEMPT_TAG = "key-rotation:exempt"
EXEMPT_LAST_DAY = date(2025, 12, 31)  # within MaxExemptionDays, and ends inside the warning window
SECOND = 1 / 86400

# Every key is due for rotation at the run of day 0 or day 1; its time of day decides which run acts
# on its retired key's disable and delete dates.
USERS: dict[str, list[KeySeed]] = {
    "made-at-03": [KeySeed(74 + 3 / 24)],  # made at 03:00: its dates fall three hours before a run
    "made-at-05": [KeySeed(74 + 1 / 24)],
    "made-at-the-run": [KeySeed(75)],  # made at 06:00:00
    "second-after": [KeySeed(75 - SECOND)],  # made at 06:00:01, as the product's own keys are
    "made-at-07": [KeySeed(75 - 1 / 24)],
    "made-at-18": [KeySeed(75 - 12 / 24)],
    "next-day": [KeySeed(74 - 1 / 24)],  # made at 07:00 a day later: rotated on day 1
    "late": [KeySeed(200)],  # its old key's dates are counted from its replacement, made by the run
}


def test_the_default_schedule_is_daily_at_six() -> None:
    assert parameter_defaults()["ScheduleExpression"] == f"cron({START.minute} {START.hour} * * ? *)"


def _guide() -> Any:
    environment = {**function_environment("NotifyFunction"), "AWS_REGION": "eu-west-1"}
    return NotifySettings.from_env({**environment, "SECURITY_TEAM_EMAIL": "security@example.com"}).guide


def test_every_date_a_digest_promises_is_the_date_of_the_run_that_does_it(aws: LocalAws) -> None:
    with time_machine.travel(START - timedelta(hours=1), tick=True):
        org = aws.organization(["alpha"])
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, "MaxConcurrency": "1"})
        alpha = org.account("alpha")
        for name, keys in USERS.items():
            org.create_user(alpha, name, keys, now=START)
        org.create_user(alpha, "exempt", [KeySeed(80)], tags={EXEMPT_TAG: EXEMPT_LAST_DAY.isoformat()}, now=START)
    table = stack.outputs["LedgerTableName"]
    account = Account(alpha, "alpha", f"{alpha}@example.com")
    guide = _guide()
    promised: dict[tuple[str, str], dict[str, date]] = {}  # (what, key) -> {run id: promised date}
    done: dict[tuple[str, str], date] = {}  # (what, key) -> the date of the run that did it
    exemption_shown: dict[str, date | None] = {}
    for day in range(DAYS):
        today = (START + timedelta(days=day)).date()
        with time_machine.travel(START + timedelta(days=day), tick=True):
            execution = stack.run({})
            assert execution.status == "SUCCEEDED", (day, execution.cause)
        items = [item for item in ledger_items(table, f"RUN#{execution.name}") if item.get("accountId") == alpha]
        assert items, f"no ledger item for run {execution.name}"
        for digest in build_digests(run_records(items), account, Run(execution.name, False), guide, today=today).digests:
            for rotation in digest.rotated:
                assert rotation.disable_on and rotation.delete_on, rotation
                promised.setdefault(("disable", rotation.old_key_id), {})[execution.name] = rotation.disable_on
                promised.setdefault(("delete", rotation.old_key_id), {})[execution.name] = rotation.delete_on
            for warning in digest.disable_soon:
                assert warning.disable_on, warning
                promised.setdefault(("disable", warning.key_id), {})[execution.name] = warning.disable_on
            for expiring in digest.exemption_expiring:
                exemption_shown[f"digest of {today}"] = expiring.last_day
        for item in items:
            if item.get("kind") == "action" and item.get("status") == "done" and item["type"] in ("disable", "delete"):
                assert (item["type"], item["keyId"]) not in done
                done[(item["type"], item["keyId"])] = today
        report = build_run_report(Run(execution.name, False), execution.output or {}, None, run_records(items))
        for row in report.exempt.shown:
            exemption_shown[f"run report of {today}"] = row.due

    assert len({key for _, key in promised}) >= len(USERS), promised  # every user's old key was promised dates
    wrong = []
    for (what, key_id), promises in sorted(promised.items()):
        actual = done.get((what, key_id))
        if actual is None:
            wrong.append(f"{what} of {key_id}: promised {sorted(set(promises.values()))}, not done in {DAYS} days")
        for run_id, when in sorted(promises.items()):
            if when != actual:
                wrong.append(f"{what} of {key_id}: run {run_id} promised {when}, the run of {actual} did it")
    assert not wrong, "\n".join(wrong)
    assert exemption_shown, "the exemption was shown nowhere"
    shown_wrong = {where: day for where, day in exemption_shown.items() if day != EXEMPT_LAST_DAY}
    assert not shown_wrong, f"the tag says {EXEMPT_LAST_DAY}, shown as {shown_wrong}"
