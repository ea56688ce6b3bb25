"""`make demo`: the product's daily job, on an in-memory AWS organization.

Deploys template.yaml into moto (DryRun off), seeds an organization of 9 accounts whose
users have keys of many ages, and runs the real state machine on day 0, day 16 and day 26,
so the runs show rotation, then disabling, then deletion. One account has no member role:
its run fails, the replay input is printed, the role is "fixed" and the account replayed.
No AWS account, no Docker; nothing leaves this process.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "layers" / "keyrotation")]

from localaws import LocalAws  # noqa: E402
from localaws.environment import Execution, Stack, organization  # noqa: E402
from localaws.organization import KeySeed, Organization, create_user, deploy_member_role, verify_sender  # noqa: E402

SENDER, SECURITY = "key-rotation@example.com", "security@example.com"
ACCOUNTS = ["payments", "analytics", "web", "data-lake", "sandbox", "logging", "ci", "legacy"]


def seed(org: Organization) -> None:
    """Users with keys of many ages; `legacy` has no member role."""
    payments, analytics, web = org.account("payments"), org.account("analytics"), org.account("web")
    create_user(
        payments, "deploy-bot", [KeySeed(80, used_days_ago=1, service="s3")], tags={"email": "platform@example.com"}
    )
    create_user(payments, "reporting", [KeySeed(76, used_days_ago=3, service="athena", region="us-west-2")])
    create_user(payments, "two-keys", [KeySeed(92, used_days_ago=40), KeySeed(17, used_days_ago=0)])
    create_user(analytics, "etl", [KeySeed(75, used_days_ago=0, service="glue")], tags={"email": "data@example.com"})
    create_user(analytics, "notebook", [KeySeed(30, used_days_ago=2)])
    create_user(analytics, "old-inactive", [KeySeed(120, status="Inactive"), KeySeed(20, used_days_ago=1)])
    until = (datetime.now(UTC) + timedelta(days=200)).date().isoformat()  # within MaxExemptionDays
    create_user(web, "cdn-purge", [KeySeed(78)], tags={"key-rotation:exempt": until})
    create_user(web, "break-glass", [KeySeed(200)], groups=["IAMKeyRotationExemptionGroup"])
    create_user(web, "uploader", [KeySeed(5)])
    create_user(org.account("data-lake"), "spark", [KeySeed(85, used_days_ago=1, service="s3", region="eu-west-1")])
    create_user(org.account("ci"), "runner", [KeySeed(89, used_days_ago=0, service="ecr")])
    create_user(org.account("legacy"), "mainframe", [KeySeed(300, used_days_ago=5)])


def account_table(stack: Stack, org: Organization, execution: Execution) -> str:
    names = {account_id: name for name, account_id in org.accounts.items()}
    names[org.management_account] = "management"
    items = [item for item in stack.ledger_items() if item["pk"] == f"RUN#{execution.name}"]
    done: dict[str, Counter[str]] = {}
    status: dict[str, dict[str, Any]] = {}
    for item in items:
        kind = item.get("kind")
        if kind == "action" and item.get("status") == "done" or kind == "notice":
            done.setdefault(item["accountId"], Counter())[item["type"]] += 1
        elif kind is None:  # an account's result (the run's replay list has kind "replay")
            status[item["accountId"]] = item
    rows = [
        f"  {'account':<12} {'id':<13} {'result':<10} {'rotated':>7} {'disabled':>8} {'deleted':>7} "
        f"{'warned':>6} {'exempt':>6}  error"
    ]
    for account_id in sorted(status, key=lambda a: names.get(a, a)):
        counts = done.get(account_id, Counter())
        error = status[account_id].get("error", "")
        rows.append(
            f"  {names.get(account_id, '?'):<12} {account_id:<13} {status[account_id]['status']:<10} "
            f"{counts['rotate']:>7} {counts['disable']:>8} {counts['delete']:>7} {counts['disable-soon']:>6} "
            f"{counts['exempt']:>6}  {error}"
        )
    return "\n".join(rows)


def report(title: str, stack: Stack, org: Organization, execution: Execution) -> None:
    print(f"\n=== {title}: execution {execution.name} ended {execution.status}")
    print(account_table(stack, org, execution))
    if execution.status == "SUCCEEDED":
        print("  summary:", json.dumps(execution.output))
    else:
        cause = execution.cause_json
        print(f"  error: {execution.error}")
        for failure in cause["failedAccounts"]:
            message = (
                json.loads(failure["cause"]).get("errorMessage", failure["cause"])
                if failure["cause"].startswith("{")
                else failure["cause"]
            )
            print(f"  failed account {failure['accountId']}: {failure['error']}: {message}")
        print("  replay input (paste into Start execution):", json.dumps(cause["replayInput"]))


def main() -> int:
    day0 = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    with LocalAws(quiet=True) as aws:
        with time_machine.travel(day0, tick=True):
            org = organization(ACCOUNTS, missing_role=("legacy",))
            verify_sender(SENDER)
            seed(org)
            stack = aws.deploy({"DryRun": "false", "SenderEmail": SENDER, "SecurityTeamEmail": SECURITY})
            print(
                f"Organization {org.id}: management account {org.management_account} + {len(ACCOUNTS)} members "
                f"(legacy has no member role). Stack deployed from template.yaml, DryRun=false."
            )
            first = stack.run({}, name="day-000")
        report("Day 0: keys past 75 days are rotated", stack, org, first)
        # The schedule fires at the same time each day; a key rotated a few seconds after 06:00 on day 0
        # reaches its 15 days of grace just after 06:00 on day 15, so it is disabled by the day-16 run.
        for day, title in (
            (16, "Day 16: old keys are disabled once 90 days old and 15 days after their replacement"),
            (26, "Day 26: disabled keys are deleted once 100 days old and 10 days after disabling"),
        ):
            with time_machine.travel(day0 + timedelta(days=day), tick=True):
                report(title, stack, org, stack.run({}, name=f"day-{day:03d}"))
        with time_machine.travel(day0 + timedelta(days=26, hours=1), tick=True):
            replay_input = first.cause_json["replayInput"] if first.status == "FAILED" else {}
            deploy_member_role(org.account("legacy"), org)
            print("\nThe operator deploys member-account/role.yaml to legacy and replays it.")
            replay = stack.run(replay_input, name="day-026-replay")
            report("Replay of the failed account", stack, org, replay)
        sent = _sent_emails()
        print(f"\nEmails sent through SES over the four runs: {sent} (digests to owners, one run report per run).")
    return 0


def _sent_emails() -> int:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return len(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


if __name__ == "__main__":
    sys.exit(main())
