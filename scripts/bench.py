"""`make bench`: what a run costs, measured on the in-memory AWS, beside the per-user audit it replaces.

    make bench QUICK=1       accounts with nothing due at U = 10, 100, 1,000 users; a key's lifecycle step by step
    make bench               the same, a realistic day over 200 accounts, and an account of 5,000 users
    make bench SCALE=10000   one execution over that many accounts of a few users each (about an hour here)

Everything is counted, not timed: AWS calls made by the functions (by operation; the ledger's apart),
the state machine's own service calls, Lambda invocations, state transitions (the parent's and every
account's child execution's, read from moto's Step Functions interpreter), and the largest state
payload anywhere. Lambda time is modelled from the calls (``--latency-ms`` per AWS call, 10 ms per
ledger call) plus what the functions wait for (the credential report); cost is list price (us-east-1:
Step Functions Standard, Lambda arm64 at the template's memory size).

The baseline beside each figure is the per-user audit algorithm run on the same organization, for real:
AssumeRole, then ListUsers (100 a page), ListAccessKeys for every user and GetAccessKeyLastUsed for
every key.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "layers" / "keyrotation")]

from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager  # noqa: E402

from localaws import KeySeed, LocalAws, Organization, cfn, lambdas  # noqa: E402

PRICE_PER_TRANSITION = 0.025 / 1000  # Step Functions Standard, USD
PRICE_PER_REQUEST = 0.20 / 1_000_000  # Lambda
PRICE_PER_GB_SECOND = 0.0000133334  # Lambda, arm64
DAYS_PER_MONTH = 30
LEDGER_LATENCY = 0.010  # seconds per DynamoDB call
OVERHEAD = 0.020  # seconds of a function's own work per invocation
ROTATION_DAYS = 75  # the template's default: a realistic day has 1 key in 75 due
NOTHING_DUE_LIMIT, TRANSITIONS_LIMIT, ROTATION_LIMIT, LEDGER_WRITES_LIMIT = 5, 5, 12, 4
#: A user's first rotation also creates the secret and applies its user-only policy (README, "What a rotation costs").
FIRST_ROTATION_LIMIT = 14
MEMBER = ("iam", "sts", "secretsmanager")


def succeeded(execution: Any) -> None:
    """Stop the benchmark with the execution's cause when a measured run did not succeed."""
    if execution.status != "SUCCEEDED":
        raise SystemExit(f"the benchmark run ended {execution.status}: {execution.cause}")


def memory_gb() -> float:
    """The functions' memory size, from template.yaml's Globals."""
    return float(cfn.load(REPO / "template.yaml")["Globals"]["Function"]["MemorySize"]) / 1024


# -- what moto's Step Functions interpreter does, child executions included ------------------------------------


@dataclass
class Transitions:
    """Every history event of every execution while on: state transitions, and the largest payload."""

    entered: int = 0
    largest: int = 0
    largest_where: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def tapping(self) -> Iterator[Transitions]:
        original = EventManager.add_event
        tap = self

        def add_event(manager: Any, context: Any, event_type: Any, event_details: Any = None, **kwargs: Any) -> int:
            tap.see(str(event_type), event_details)
            return int(original(manager, context, event_type, event_details, **kwargs))

        EventManager.add_event = add_event  # type: ignore[method-assign]
        try:
            yield self
        finally:
            EventManager.add_event = original  # type: ignore[method-assign]

    def see(self, event_type: str, details: Any) -> None:
        sizes = []
        for name, detail in (details or {}).items():
            if isinstance(detail, dict):
                sizes += [
                    (len(str(detail[key]).encode()), f"{name}.{key}") for key in ("input", "output") if key in detail
                ]
        with self.lock:
            if event_type.endswith("StateEntered"):
                self.entered += 1
            for size, where in sizes:
                if size > self.largest:
                    self.largest, self.largest_where = size, where


# -- one account through its workflow ------------------------------------------------------------------------------


@dataclass
class Figures:
    """What running some accounts cost."""

    accounts: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # by "service:Operation", made by the functions
    by_function: dict[str, Counter[str]] = field(default_factory=dict)
    own: Counter[str] = field(default_factory=Counter)  # the state machine's own service calls
    invocations: Counter[str] = field(default_factory=Counter)
    transitions: int = 0
    largest_payload: int = 0
    lambda_seconds: float = 0.0
    slept: float = 0.0

    @property
    def member_calls(self) -> int:
        return sum(n for op, n in self.calls.items() if op.split(":")[0] in MEMBER)

    @property
    def ledger_reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op.split(":")[0] == "dynamodb" and _is_read(op))

    @property
    def ledger_writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op.split(":")[0] == "dynamodb" and not _is_read(op))

    def per_account(self, value: float) -> float:
        return value / max(1, self.accounts)

    audit_seconds: float = 0.0  # the AuditKeys invocations' share of lambda_seconds

    def cost(self, memory: float, audit_seconds: float | None = None) -> float:
        """Step Functions and Lambda, USD; with the audits' Lambda time replaced by ``audit_seconds`` if given."""
        requests = sum(self.invocations.values())
        seconds = self.lambda_seconds
        if audit_seconds is not None:
            seconds += audit_seconds - self.audit_seconds
        return (
            self.transitions * PRICE_PER_TRANSITION
            + requests * PRICE_PER_REQUEST
            + seconds * memory * PRICE_PER_GB_SECOND
        )


def _is_read(op: str) -> bool:
    return op.split(":")[1] in ("GetItem", "Query", "Scan", "BatchGetItem")


def collect(
    invocations: Sequence[lambdas.Invocation],
    all_calls: Sequence[tuple[str, str]],
    transitions: Transitions,
    accounts: int,
    latency: float,
) -> Figures:
    figures = Figures(accounts=accounts, transitions=transitions.entered, largest_payload=transitions.largest)
    for invocation in invocations:
        figures.invocations[invocation.logical_id] += 1
        made = Counter(f"{service}:{op}" for service, op in invocation.calls)
        figures.calls.update(made)
        figures.by_function.setdefault(invocation.logical_id, Counter()).update(made)
        figures.slept += invocation.slept
        seconds = (
            OVERHEAD
            + invocation.slept
            + sum(LEDGER_LATENCY if service == "dynamodb" else latency for service, _ in invocation.calls)
        )
        figures.lambda_seconds += seconds
        if invocation.logical_id == "AuditKeysFunction":
            figures.audit_seconds += seconds
        for payload in (invocation.event, invocation.result):
            figures.largest_payload = max(figures.largest_payload, len(str(payload).encode()))
    by_functions = Counter(f"{service}:{op}" for invocation in invocations for service, op in invocation.calls)
    everything = Counter(f"{service}:{op}" for service, op in all_calls if service != "stepfunctions")
    figures.own = everything - by_functions
    return figures


@contextmanager
def measuring(aws: LocalAws, accounts: int, latency: float) -> Iterator[list[Figures]]:
    """Counts everything inside the block; the Figures are in the list once the block ends."""
    aws.lambdas.invocations.clear()
    found: list[Figures] = []
    with Transitions().tapping() as transitions, aws.calls.record() as calls:
        yield found
    found.append(collect(list(aws.lambdas.invocations), list(calls), transitions, accounts, latency))


def per_user_audit(org: Organization, account_id: str) -> Counter[str]:
    """The baseline: the per-user audit algorithm on ``account_id``, for real; its calls by operation."""
    made: Counter[str] = Counter({"sts:AssumeRole": 1})  # into the member account, as any audit must
    iam = org.client("iam", account_id)
    for page in iam.get_paginator("list_users").paginate():
        made["iam:ListUsers"] += 1
        for user in page["Users"]:
            made["iam:ListAccessKeys"] += 1
            for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]:
                made["iam:GetAccessKeyLastUsed"] += 1
                iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    return made


def baseline_seconds(calls: Counter[str], latency: float) -> float:
    return OVERHEAD + sum(calls.values()) * latency


# -- organizations -------------------------------------------------------------------------------------------------


def seed_users(org: Organization, account_id: str, ages: Sequence[float]) -> None:
    for n, age in enumerate(ages):
        org.create_user(account_id, f"user{n:04d}", [KeySeed(age, used_days_ago=min(age, 1))])


def realistic_ages(first: int, count: int, total: int) -> list[float]:
    """One key each, ages spread evenly over a rotation period and a day: 1 key in 75 is due today."""
    span = ROTATION_DAYS + 1
    return [((first + n) * span / total) % span + 0.01 for n in range(count)]


def nothing_due(latency: float, users: int) -> tuple[Figures, Counter[str]]:
    with LocalAws(quiet=True) as aws:
        org = aws.organization(["bench"])
        account = org.account("bench")
        seed_users(org, account, [20.0] * users)
        stack = aws.deploy({"DryRun": "false"})
        with measuring(aws, 1, latency) as found:
            execution = stack.run_account(account, run_id=f"nothing-due-{users}")
        succeeded(execution)
        return found[0], per_user_audit(org, account)


@dataclass
class Step:
    name: str
    figures: Figures


def lifecycle(latency: float) -> list[Step]:
    """One user's key through a whole cycle, each day's run of its account measured."""
    start = datetime(2030, 1, 1, 6, 0, tzinfo=UTC)
    steps = []
    with time_machine.travel(start, tick=True) as traveller, LocalAws(quiet=True) as aws:
        org = aws.organization(["bench"])
        account = org.account("bench")
        org.create_user(account, "alice", [KeySeed(ROTATION_DAYS + 0.5, used_days_ago=1)])
        stack = aws.deploy({"DryRun": "false"})
        for day, name in [
            (0, "rotate (first: creates the secret)"),
            (8, "warn"),
            (15, "disable"),
            (25, "delete"),
            (ROTATION_DAYS, "rotate"),
        ]:
            traveller.move_to(start + timedelta(days=day, minutes=1 if day else 0))  # a daily run, a minute late
            with measuring(aws, 1, latency) as found:
                execution = stack.run_account(account, run_id=f"day-{day}")
            succeeded(execution)
            steps.append(Step(name, found[0]))
    return steps


def organization_day(
    accounts: int, users: int, latency: float, timeout: float
) -> tuple[Figures, Counter[str], int, int]:
    """One execution over ``accounts`` accounts on a realistic day; with the baseline's calls and parent events."""
    with LocalAws(quiet=True) as aws:
        started = time.perf_counter()
        org = aws.organization([f"acct{n:05d}" for n in range(accounts)])
        total = accounts * users
        for index, account_id in enumerate(org.accounts.values()):
            seed_users(org, account_id, realistic_ages(index * users, users, total))
        seeded = time.perf_counter() - started
        stack = aws.deploy({"DryRun": "false"})
        print(f"  seeded {accounts} accounts x {users} users in {seeded:.0f} s; running one execution...", flush=True)
        started = time.perf_counter()
        with measuring(aws, accounts, latency) as found:
            execution = stack.run({}, timeout=timeout)
        succeeded(execution)
        print(f"  the execution took {time.perf_counter() - started:,.0f} s here", flush=True)
        figures = found[0]
        figures.accounts = execution.output["accounts"]["total"]  # the management account is in scope too
        parent_events = len(execution.history)
        parent_entered = sum(1 for event in execution.history if event["type"].endswith("StateEntered"))
        figures.transitions -= parent_entered  # the accounts' own; the parent's are counted apart
        baseline: Counter[str] = Counter()
        for account_id in [org.management_account, *org.accounts.values()]:
            baseline.update(per_user_audit(org, account_id))
        return figures, baseline, parent_events, execution.output["keys"]["rotated"]


def big_account(users: int, latency: float) -> tuple[Figures, Counter[str]]:
    """One account of ``users`` users, 1 key in 75 due: its audit, one invocation."""
    with LocalAws(quiet=True) as aws:
        org = aws.organization(["big"])
        account = org.account("big")
        seed_users(org, account, realistic_ages(0, users, users))
        stack = aws.deploy({"DryRun": "false"})
        run = {
            "runId": "big",
            "dryRun": True,
            "startedAt": "2030-01-01T06:00:00Z",
            "maxConcurrency": 1,
            "expiresAt": "4102444800",
        }
        with measuring(aws, 1, latency) as found:
            stack.invoke("AuditKeysFunction", {"account": {"id": account, "name": "big", "email": ""}, "run": run})
        return found[0], per_user_audit(org, account)


# -- printing ------------------------------------------------------------------------------------------------------


def ratio(baseline: float, ours: float) -> str:
    return f"{baseline / ours:,.0f}x" if ours else "-"


def ops(counter: Counter[str], services: Sequence[str] | None = None) -> str:
    shown = [(op, n) for op, n in sorted(counter.items()) if services is None or op.split(":")[0] in services]
    return ", ".join(f"{op.split(':')[1]} {n}" for op, n in shown) or "-"


def check(value: float, limit: float) -> str:
    return "ok" if value <= limit else f"OVER {limit:g}"


def print_nothing_due(latency: float, sizes: Sequence[int]) -> None:
    print("\nAn account with nothing due (one key per user, 20 days old), through the per-account workflow:")
    print(
        f"  {'users':>6} {'calls':>6} {'':>5} {'ledger':>6} {'SFN own':>7} {'invocations':>11} {'':>3} "
        f"{'transitions':>11} {'':>3} {'payload':>8} | {'baseline calls':>14} {'ratio':>6} | {'Lambda s':>8} "
        f"{'baseline s':>10}"
    )
    for users in sizes:
        figures, baseline = nothing_due(latency, users)
        calls = figures.member_calls + figures.ledger_reads + figures.ledger_writes
        invocations = sum(figures.invocations.values())
        print(
            f"  {users:>6} {calls:>6} {check(calls, NOTHING_DUE_LIMIT):>5} "
            f"{figures.ledger_reads + figures.ledger_writes:>6} "
            f"{sum(figures.own.values()):>7} {invocations:>11} {check(invocations, 1):>3} {figures.transitions:>11} "
            f"{check(figures.transitions, TRANSITIONS_LIMIT):>3} {figures.largest_payload:>7}B | "
            f"{sum(baseline.values()):>14} {ratio(sum(baseline.values()), calls):>6} | {figures.lambda_seconds:>8.2f} "
            f"{baseline_seconds(baseline, latency):>10.2f}"
        )
        print(f"         calls: {ops(figures.calls)}; the state machine's own: {ops(figures.own)}")
    print(
        "  (calls: by the functions, ledger included; SFN own: the Lambda invoke and the account's result, made by"
        " Step Functions)"
    )


def print_lifecycle(latency: float) -> None:
    print("\nOne key's cycle, each day's run of its account (calls by the functions):")
    for step in lifecycle(latency):
        figures = step.figures
        print(
            f"  {step.name}: {figures.member_calls} member-account calls, ledger {figures.ledger_reads} reads "
            f"{figures.ledger_writes} writes; {sum(figures.invocations.values())} invocations, "
            f"{figures.transitions} transitions, largest payload {figures.largest_payload} B"
        )
        if step.name.startswith("rotate"):
            for function in _ROTATION_FUNCTIONS:
                print(f"      {function.removesuffix('Function'):<12} {_function_calls(figures, function)}")
            rotation = _rotation_calls(figures)
            limit = ROTATION_LIMIT if step.name == "rotate" else FIRST_ROTATION_LIMIT
            print(
                f"      per rotated key: {rotation['member']} member-account calls "
                f"{check(rotation['member'], limit)} (at most {limit}), ledger {rotation['reads']} reads and "
                f"{rotation['writes']} writes {check(rotation['writes'], LEDGER_WRITES_LIMIT)}"
            )


_ROTATION_FUNCTIONS = ("CreateKeyFunction", "VerifyKeyFunction", "StoreSecretFunction")


def _function_calls(figures: Figures, function: str) -> str:
    return ops(figures.by_function.get(function, Counter()))


def _rotation_calls(figures: Figures) -> dict[str, int]:
    member = reads = writes = 0
    for function in _ROTATION_FUNCTIONS:
        for op, n in figures.by_function.get(function, Counter()).items():
            service = op.split(":")[0]
            if service in MEMBER:
                member += n
            elif _is_read(op):
                reads += n
            else:
                writes += n
    return {"member": member, "reads": reads, "writes": writes}


def print_projection(figures: Figures, baseline: Counter[str], users: int, latency: float, memory: float) -> None:
    """Monthly cost at 100, 1,000 and 10,000 accounts like these; and with the baseline's audit in place of ours."""
    baseline_audit_seconds = sum(baseline.values()) * latency + figures.accounts * OVERHEAD
    day = figures.per_account(figures.cost(memory))
    baseline_day = figures.per_account(figures.cost(memory, audit_seconds=baseline_audit_seconds))
    transitions_day = figures.per_account(figures.transitions * PRICE_PER_TRANSITION)
    print(
        f"  projected monthly cost ({DAYS_PER_MONTH} such days; Step Functions Standard + Lambda arm64, list price), "
        "and with the baseline's audit in place of AuditKeys (same workflow):"
    )
    for accounts in (100, 1_000, 10_000):
        month = DAYS_PER_MONTH * accounts
        print(
            f"    {accounts:>6,} accounts x {users} users: ${day * month:,.2f} (of which state transitions "
            f"${transitions_day * month:,.2f}) | baseline ${baseline_day * month:,.2f}"
        )


def print_organization(accounts: int, users: int, latency: float, timeout: float, memory: float) -> None:
    print(
        f"\nA realistic day (1 key in {ROTATION_DAYS} due) over {accounts:,} accounts of {users} users, one execution:"
    )
    figures, baseline, parent_events, rotated = organization_day(accounts, users, latency, timeout)
    calls = figures.member_calls + figures.ledger_reads + figures.ledger_writes
    per = figures.per_account
    print(f"  accounts processed: {figures.accounts:,}; keys rotated: {rotated}")
    print(f"  parent execution: {parent_events} history events (each account runs as a child execution)")
    print(f"  largest payload anywhere: {figures.largest_payload:,} B")
    print(
        f"  per account: {per(figures.transitions):.2f} transitions, {per(sum(figures.invocations.values())):.3f} "
        f"invocations, {per(calls):.2f} calls by the functions | baseline {per(sum(baseline.values())):.2f} calls, "
        f"ratio {ratio(sum(baseline.values()), calls)}"
    )

    def listed(counter: Counter[str], digits: int) -> str:
        return ", ".join(f"{op} {per(n):.{digits}f}" for op, n in sorted(counter.items()))

    print(
        "  calls per account by operation (the run's own, by ListAccounts and Summarize, spread): "
        + listed(figures.calls, 3)
    )
    print(f"  the baseline's: {listed(baseline, 2)}")
    print(f"  the state machine's own per account: {listed(figures.own, 3)}")
    print(
        f"  modelled Lambda time per account: {per(figures.lambda_seconds):.2f} s (waiting {per(figures.slept):.2f} s "
        f"for the report) | baseline audit {per(sum(baseline.values())) * latency + OVERHEAD:.2f} s"
    )
    print_projection(figures, baseline, users, latency, memory)


def print_big_account(users: int, latency: float) -> None:
    print(f"\nAn account of {users:,} users (1 key in {ROTATION_DAYS} due), audited by one invocation:")
    figures, baseline = big_account(users, latency)
    calls = figures.member_calls + figures.ledger_reads + figures.ledger_writes
    print(f"  {calls} calls ({ops(figures.calls)})")
    print(
        f"  implied duration at {latency * 1000:.0f} ms a call: {figures.lambda_seconds:.1f} s (of which "
        f"{figures.slept:.0f} s waiting for the report)"
    )
    print(
        f"  baseline: {sum(baseline.values()):,} calls, {baseline_seconds(baseline, latency):,.0f} s "
        f"(the Lambda limit is 900 s), ratio {ratio(sum(baseline.values()), calls)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the figures `make bench QUICK=1` prints")
    parser.add_argument("--scale", type=int, default=0, help="one execution over this many accounts")
    parser.add_argument("--users", type=int, default=4, help="users per account in the organization runs")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="modelled latency of one AWS call")
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds an organization run may take")
    args = parser.parse_args()
    latency, memory = args.latency_ms / 1000, memory_gb()
    print(
        f"make bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, moto in process; Lambda {memory * 1024:.0f} MB arm64, "
        f"{args.latency_ms:.0f} ms per AWS call ({LEDGER_LATENCY * 1000:.0f} ms per ledger call) modelled"
    )
    if args.scale:
        print_organization(args.scale, args.users, latency, args.timeout, memory)
        return 0
    print_nothing_due(latency, (10, 100, 1_000))
    print_lifecycle(latency)
    if args.quick:
        print('\nThe 10,000-account figures: see README ("What a run costs"); `make bench SCALE=10000` measures them.')
        return 0
    print_organization(200, args.users, latency, args.timeout, memory)
    print_big_account(5_000, latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
