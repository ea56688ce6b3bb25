"""`make bench`: speed and cost figures of a rotation run, measured on the in-memory AWS.

Prints, for organizations of growing size:
- wall time of a whole run in moto (a measure of our code and the interpreter, not of AWS);
- AWS API calls made, by operation, and per audited user;
- Lambda invocations and Step Functions state transitions per account, and what they would
  cost at list price for a 10,000-account organization.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "layers" / "keyrotation")]

from localaws import KeySeed, LocalAws, Organization  # noqa: E402

PRICE_PER_TRANSITION = 0.025 / 1000  # Standard workflows, USD, us-east-1 list price
PRICE_PER_INVOCATION = 0.20 / 1_000_000
MUTATIONS = ("Create", "Update", "Delete", "Put", "Tag")


def seed(org: Organization, account_id: str, users: int, due_every: int) -> None:
    for n in range(users):
        age = 80 if n % due_every == 0 else 20
        org.create_user(account_id, f"user{n:04d}", [KeySeed(age, used_days_ago=1)])


def scenario(accounts: int, users: int, due_every: int = 5) -> dict[str, float]:
    with LocalAws(quiet=True) as aws:
        org = aws.organization([f"acct{n:04d}" for n in range(accounts)])
        for account_id in org.accounts.values():
            seed(org, account_id, users, due_every)
        stack = aws.deploy({"DryRun": "false", "MaxConcurrency": "10"})
        with aws.calls.record() as calls:
            started = time.perf_counter()
            execution = stack.run({}, timeout=1800)
            elapsed = time.perf_counter() - started
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"the benchmark run ended {execution.status}: {execution.cause}")
        # Transitions of one account with work to do, from the per-account workflow's own history.
        probe = aws.client("organizations").create_account(AccountName="probe", Email="probe@example.com")
        probe_id = probe["CreateAccountStatus"]["AccountId"]
        org.deploy_member_role(probe_id)
        seed(org, probe_id, users, due_every)
        per_account = stack.run_account(probe_id, run_id="bench-transitions")
        transitions = sum(1 for event in per_account.history if event["type"].endswith("StateEntered"))
        invocations = Counter(call.logical_id for call in aws.lambdas.invocations)
    operations = Counter(f"{service}:{operation}" for service, operation in calls)
    iam_calls = sum(count for op, count in operations.items() if op.startswith("iam:"))
    audited = accounts * users
    return {
        "accounts": accounts + 1,
        "users": audited,
        "rotated": execution.output["keys"]["rotated"],
        "seconds": elapsed,
        "iam_calls_per_user": iam_calls / audited,
        "calls": sum(operations.values()),
        "mutations": sum(count for op, count in operations.items() if op.split(":")[1].startswith(MUTATIONS)),
        "transitions_per_account": transitions,
        "parent_events": len(execution.history),
        "invocations": sum(invocations.values()),
        "top": operations.most_common(6),  # type: ignore[dict-item]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller organizations")
    args = parser.parse_args()
    sizes = [(5, 20), (20, 20), (3, 250)] if args.quick else [(10, 20), (50, 20), (100, 10), (3, 500)]
    print(
        f"make bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, moto in process, MaxConcurrency 10, "
        "1 key per user, 1 in 5 due"
    )
    header = (
        f"{'accounts':>8} {'users':>6} {'rotated':>7} {'run s':>6} {'s/acct':>6} {'IAM calls/user':>14} "
        f"{'mutations':>9} {'transitions/acct':>16} {'parent events':>13}"
    )
    print(header)
    for accounts, users in sizes:
        figures = scenario(accounts, users)
        print(
            f"{figures['accounts']:>8} {figures['users']:>6} {figures['rotated']:>7} {figures['seconds']:>6.1f} "
            f"{figures['seconds'] / figures['accounts']:>6.2f} {figures['iam_calls_per_user']:>14.2f} "
            f"{figures['mutations']:>9} {figures['transitions_per_account']:>16} {figures['parent_events']:>13}"
        )
        last = figures
    print("most frequent calls in the last scenario:", ", ".join(f"{op} {n}" for op, n in last["top"]))  # type: ignore[union-attr]
    transitions = last["transitions_per_account"]
    cost = 10_000 * (transitions * PRICE_PER_TRANSITION + (transitions / 3) * PRICE_PER_INVOCATION)
    print(
        f"Projection, 10,000 accounts like the last scenario's: ~{10_000 * transitions:,.0f} state transitions, "
        f"about ${cost:.2f} a run at Step Functions Standard list price (Lambda compute not included); "
        f"the parent execution's history stays at {last['parent_events']} events whatever the account count "
        "(each account has its own child execution)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
