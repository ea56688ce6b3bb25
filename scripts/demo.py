"""`make demo`: the product's daily job, on an in-memory AWS organization.

Deploys template.yaml into moto (DryRun off), seeds an organization of 9 accounts whose
users have keys of many ages, and runs the real state machine on day 0, day 8, day 15 and day 25,
so the runs show rotation, then the warning before the old keys are disabled (day 8 is inside the
warning window), then disabling, then deletion. Each run lists every action and notice by account,
user and key id. One account has no member role: its run fails, the replay input is printed, the
role is "fixed" and the account replayed.

One user, ``deployer`` in ``ci``, uses ``keyrotation credentials`` as its ``credential_process``
(scripts/demo_credentials.py): configured once on day 0, its CLI calls keep working across its key's
rotation, the old key's disable and its deletion, and the demo prints the key id each call used.

Every email sent is written to ``preview/demo/`` (one .txt and one .html each, and an index) for a
person to open (scripts/demo_emails.py). No AWS account, no Docker; nothing else leaves this process.

``--repeat N`` runs it N times without printing the tables or writing the emails, and checks that every
time the results are the same and only ``legacy`` fails (for its missing role) until it is replayed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "layers" / "keyrotation"), str(REPO / "scripts")]

import demo_emails  # noqa: E402
from demo_credentials import CliCall, HelperUser  # noqa: E402

from keyrotation.ledger_records import (  # noqa: E402
    AccountResult,
    AccountStatus,
    ActionRecord,
    ActionStatus,
    NoticeRecord,
    RunRecord,
    run_records,
)
from localaws import REGION, Execution, KeySeed, LocalAws, Organization, Stack  # noqa: E402
from tests import earlier  # noqa: E402 - the delivery an earlier rotation left, made with the product's code

SENDER, SECURITY = "key-rotation@example.com", "security@example.com"
PREVIEW = REPO / "preview" / "demo"
#: The user whose programs use the credential_process helper, in ci: its key was delivered by an earlier rotation.
HELPER_ACCOUNT, HELPER_USER = "ci", "deployer"
ACCOUNTS = ["payments", "analytics", "web", "data-lake", "sandbox", "logging", "ci", "legacy"]


def seed(org: Organization) -> None:
    """Users with keys of many ages; `legacy` has no member role."""
    payments, analytics, web = org.account("payments"), org.account("analytics"), org.account("web")
    org.create_user(
        payments, "deploy-bot", [KeySeed(80, used_days_ago=1, service="s3")], tags={"email": "platform@example.com"}
    )
    org.create_user(payments, "reporting", [KeySeed(76, used_days_ago=3, service="athena", region="us-west-2")])
    org.create_user(payments, "two-keys", [KeySeed(92, used_days_ago=40), KeySeed(17, used_days_ago=0)])
    org.create_user(
        analytics, "etl", [KeySeed(75, used_days_ago=0, service="glue")], tags={"email": "data@example.com"}
    )
    org.create_user(analytics, "notebook", [KeySeed(30, used_days_ago=2)])
    org.create_user(analytics, "old-inactive", [KeySeed(120, status="Inactive"), KeySeed(20, used_days_ago=1)])
    until = (datetime.now(UTC) + timedelta(days=200)).date().isoformat()  # within MaxExemptionDays
    org.create_user(web, "cdn-purge", [KeySeed(78)], tags={"key-rotation:exempt": until})
    org.create_user(web, "break-glass", [KeySeed(200)], groups=["IAMKeyRotationExemptionGroup"])
    org.create_user(web, "uploader", [KeySeed(5)])
    org.create_user(org.account("data-lake"), "spark", [KeySeed(85, used_days_ago=1, service="s3", region="eu-west-1")])
    org.create_user(org.account("ci"), "runner", [KeySeed(89, used_days_ago=0, service="ecr")])
    org.create_user(
        org.account(HELPER_ACCOUNT),
        HELPER_USER,
        [KeySeed(78, used_days_ago=0, service="sts")],
        tags={"email": "release@example.com"},
    )
    org.create_user(org.account("legacy"), "mainframe", [KeySeed(300, used_days_ago=5)])


@dataclass(frozen=True)
class Row:
    """One account's result in one run, as the ledger records it."""

    name: str
    account_id: str
    status: str
    rotated: int
    disabled: int
    deleted: int
    warned: int
    exempt: int
    error: str


@dataclass(frozen=True)
class Event:
    """One action or notice of a run, as the ledger records it: where, whose key, what, and how it ended."""

    account: str
    user: str
    key_id: str
    what: str
    result: str
    new_key_id: str = ""

    def line(self) -> str:
        new = f"  new key {self.new_key_id}" if self.new_key_id else ""
        return f"    {self.account:<10} {self.user:<13} {self.key_id or '-':<21} {self.what:<19} {self.result}{new}"


@dataclass(frozen=True)
class Run:
    title: str
    execution: Execution
    rows: tuple[Row, ...]
    events: tuple[Event, ...] = ()
    calls: tuple[CliCall, ...] = ()

    def outcome(self) -> tuple[Any, ...]:
        """What must be the same every time the demo runs (account ids, key ids and execution names aside)."""
        accounts = tuple(
            (r.name, r.status, r.rotated, r.disabled, r.deleted, r.warned, r.exempt, r.error) for r in self
        )
        events = tuple((e.account, e.user, e.what, e.result, bool(e.new_key_id)) for e in self.events)
        return (self.title, self.execution.status, self.execution.error, accounts, events, len(self.calls))

    def __iter__(self) -> Any:
        return iter(self.rows)


def account_rows(stack: Stack, org: Organization, execution: Execution) -> tuple[Row, ...]:
    names = {account_id: name for name, account_id in org.accounts.items()}
    names[org.management_account] = "management"
    done: dict[str, Counter[str]] = {}
    status: dict[str, AccountResult] = {}
    for record in _run_records(stack, execution):
        if isinstance(record, ActionRecord) and record.status is ActionStatus.DONE or isinstance(record, NoticeRecord):
            done.setdefault(record.account_id, Counter())[record.type.value] += 1
        elif isinstance(record, AccountResult):
            status[record.account_id] = record
    rows = []
    for account_id in sorted(status, key=lambda a: names.get(a, a)):
        counts = done.get(account_id, Counter())
        rows.append(
            Row(
                names.get(account_id, "?"),
                account_id,
                _status(status[account_id]),
                counts["rotate"],
                counts["disable"],
                counts["delete"],
                counts["disable-soon"],
                counts["exempt"],
                status[account_id].error or "",
            )
        )
    return tuple(rows)


def run_events(stack: Stack, org: Organization, execution: Execution) -> tuple[Event, ...]:
    """Every action (with its result) and notice of the run, by account, user and key id; never a secret."""
    names = {account_id: name for name, account_id in org.accounts.items()}
    names[org.management_account] = "management"
    events = []
    for record in _run_records(stack, execution):
        if isinstance(record, ActionRecord):
            what, result, new_key_id = record.type.value, record.status.value, record.new_key_id or ""
        elif isinstance(record, NoticeRecord):
            what, result, new_key_id = f"notice: {record.type.value}", "told its owner", ""
        else:
            continue
        events.append(
            Event(
                account=names.get(record.account_id, record.account_id),
                user=record.user_name,
                key_id=record.key_id or "",
                what=what,
                result=result,
                new_key_id=new_key_id,
            )
        )
    return tuple(sorted(events, key=lambda e: (e.account, e.user, e.what.startswith("notice"), e.what, e.key_id)))


def _run_records(stack: Stack, execution: Execution) -> list[RunRecord]:
    """The records of the run ``execution`` made, as the ledger holds them."""
    return run_records(item for item in stack.ledger_items() if item["pk"] == f"RUN#{execution.name}")


def _status(result: AccountResult) -> str:
    return result.status.value if result.status else ""


def account_table(rows: tuple[Row, ...]) -> str:
    lines = [
        f"  {'account':<12} {'id':<13} {'result':<10} {'rotated':>7} {'disabled':>8} {'deleted':>7} "
        f"{'warned':>6} {'exempt':>6}  error"
    ]
    for row in rows:
        lines.append(
            f"  {row.name:<12} {row.account_id:<13} {row.status:<10} {row.rotated:>7} {row.disabled:>8} "
            f"{row.deleted:>7} {row.warned:>6} {row.exempt:>6}  {row.error}"
        )
    return "\n".join(lines)


def report(run: Run) -> None:
    execution = run.execution
    print(f"\n=== {run.title}: execution {execution.name} ended {execution.status}")
    print(account_table(run.rows))
    print("  every action and notice (account, user, key id, what, result):")
    for event in run.events:
        print(event.line())
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
    _report_calls(run.calls)


def scenario(show: bool = True, preview: Path | None = None) -> list[Run]:
    """Seed, deploy, run on days 0, 8, 15 and 25, fix the missing role, replay; print each run if ``show``;
    write every email sent into ``preview`` if given."""

    def say(text: str) -> None:
        if show:
            print(text)

    runs: list[Run] = []
    sent_by: list[str] = []  # the title of the run that sent each email, in order

    def run(title: str, document: dict[str, Any], name: str, calls: tuple[str, ...] = ()) -> Execution:
        execution = stack.run(document, name=name)
        sent_by.extend([title] * (len(demo_emails.sent_messages(aws.deployment_account, aws.region)) - len(sent_by)))
        made = tuple(helper_call(when) for when in calls)
        runs.append(Run(title, execution, account_rows(stack, org, execution), run_events(stack, org, execution), made))
        if show:
            report(runs[-1])
        return execution

    day0 = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    with LocalAws(quiet=True) as aws, tempfile.TemporaryDirectory(prefix="keyrotation-demo-") as workdir:
        with time_machine.travel(day0, tick=True):
            org = aws.organization(ACCOUNTS, without_role=["legacy"])
            aws.verify_sender(SENDER)
            seed(org)
            stack = aws.deploy({"DryRun": "false", "SenderEmail": SENDER, "SecurityTeamEmail": SECURITY})
            say(
                f"Organization {org.id}: management account {org.management_account} + {len(ACCOUNTS)} members "
                f"(legacy has no member role). Stack deployed from template.yaml, DryRun=false."
            )
            helper = configure_helper(stack, org, Path(workdir), say)

            def helper_call(when: str) -> CliCall:
                iam = org.client("iam", org.account(HELPER_ACCOUNT))
                listed = iam.list_access_keys(UserName=HELPER_USER)["AccessKeyMetadata"]
                made = helper.call(when)
                keys = ", ".join(f"{key['AccessKeyId']} {key['Status']}" for key in listed)
                return CliCall(made.when, made.key_id, made.arn, made.helper_said, keys)

            first = run("Day 0: keys past 75 days are rotated", {}, "day-000", calls=("right after the run",))
        with time_machine.travel(day0 + timedelta(hours=2), tick=True):
            runs[-1] = _with_calls(runs[-1], helper_call("two hours later (the helper looks at most once an hour)"))
            if show:
                _report_calls(runs[-1].calls[-1:])
        # The schedule fires at the same time each day, and each date is acted on at the last run before it:
        # a key rotated a few seconds after 06:00 on day 0 is 15 days old a few seconds after 06:00 on day 15,
        # so the old key is disabled by the day-15 run, and deleted by the day-25 run. Its owner is warned
        # in the week before (WarningDays 7): the day-8 run is inside that window.
        for day, title in (
            (8, "Day 8: owners are warned, in the week before, that the replaced keys are disabled on day 15"),
            (15, "Day 15: old keys are disabled by the last run before they are 90 days old and 15 days replaced"),
            (25, "Day 25: disabled keys are deleted by the last run before they are 100 days old, 10 days disabled"),
        ):
            with time_machine.travel(day0 + timedelta(days=day), tick=True):
                run(title, {}, f"day-{day:03d}", calls=(f"day {day}, after the run",))
        with time_machine.travel(day0 + timedelta(days=25, hours=1), tick=True):
            replay_input = first.cause_json["replayInput"] if first.status == "FAILED" else {}
            org.deploy_member_role(org.account("legacy"))
            say("\nThe operator deploys member-account/role.yaml to legacy and replays it.")
            run("Replay of the failed account", replay_input, "day-025-replay")
        messages = demo_emails.sent_messages(aws.deployment_account, aws.region)
        say(f"\nEmails sent through SES over the five runs: {len(messages)} (owners' digests, one run report per run).")
        if preview is not None:
            demo_emails.write(demo_emails.read_sent(messages, sent_by), preview)
            say(f"Every one of them, as sent: {preview / 'index.html'} (and index.txt), one .txt and one .html each.")
    return runs


def configure_helper(stack: Stack, org: Organization, workdir: Path, say: Any) -> HelperUser:
    """The helper user, configured once: an earlier rotation delivered its key (made with the product's own code),
    its AWS config gets the credential_process line, and the helper's cache is seeded with the key it has today."""
    from moto.iam.models import iam_backends

    account_id = org.account(HELPER_ACCOUNT)
    (key,) = iam_backends[account_id]["aws"].users[HELPER_USER].access_keys
    earlier.delivered_before(stack.admin, stack.outputs["LedgerTableName"], account_id, HELPER_USER, key.access_key_id)
    helper = HelperUser(account_id, HELPER_USER, workdir, REGION)
    said = helper.seed(key.access_key_id, key.secret_access_key)
    say(
        f"\n{HELPER_USER} ({HELPER_ACCOUNT}) is configured once, with the key it has today ({key.access_key_id}):"
        f"\n  [profile deployer]\n  credential_process = {helper.command()}\n"
        + "\n".join(f"      {line}" for line in said.splitlines())
    )
    call = helper.call("before the first run")
    say(f"  {HELPER_USER}'s CLI call, {call.when}: signed with key {call.key_id}, as {call.arn}")
    return helper


def _with_calls(run: Run, *calls: CliCall) -> Run:
    return Run(run.title, run.execution, run.rows, run.events, run.calls + calls)


def _report_calls(calls: tuple[CliCall, ...]) -> None:
    for call in calls:
        print(f"  {HELPER_USER}'s CLI call, {call.when}: signed with key {call.key_id}, as {call.arn}")
        print(f"      its keys: {call.keys}" + (f"; the helper said: {call.helper_said}" if call.helper_said else ""))


def unexpected(runs: list[Run]) -> list[str]:
    """What no run of the demo may show: an account failing but ``legacy`` before its role is deployed, or
    failing for another reason than its missing role, or a replay that does not succeed."""
    problems = []
    for run in runs:
        replay = run.title.startswith("Replay")
        for row in run:
            if row.status != AccountStatus.SUCCEEDED and (replay or row.name != "legacy"):
                problems.append(f"{run.title}: {row.name} {row.status} {row.error}")
            elif row.status != AccountStatus.SUCCEEDED and row.error != "KeyRotation.MemberRoleUnavailable":
                problems.append(f"{run.title}: legacy failed with {row.error}")
        if replay and run.execution.status != "SUCCEEDED":
            problems.append(f"{run.title}: {run.execution.status} {run.execution.error}")
    return problems


def repeat(times: int) -> int:
    """Run the demo ``times`` times; every run must show the same results and no unexpected failure."""
    first: list[tuple[Any, ...]] | None = None
    failed = 0
    for n in range(1, times + 1):
        started = time.perf_counter()
        runs = scenario(show=False)
        outcome = [run.outcome() for run in runs]
        problems = unexpected(runs)
        if first is None:
            first = outcome
        elif outcome != first:
            differing = [mine[0] for mine, theirs in zip(outcome, first, strict=False) if mine != theirs]
            problems.append(f"differs from the first demo in: {', '.join(differing) or 'the number of runs'}")
        failed += bool(problems)
        verdict = "as expected" if not problems else "UNEXPECTED: " + "; ".join(problems)
        print(f"demo {n}/{times} ({time.perf_counter() - started:.1f}s): {verdict}", flush=True)
    print(f"{times - failed} of {times} demos as expected")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repeat", type=int, metavar="N", help="run the demo N times, quietly, and check each shows the same results"
    )
    args = parser.parse_args(argv)
    if args.repeat:
        return repeat(args.repeat)
    scenario(show=True, preview=PREVIEW)
    return 0


if __name__ == "__main__":
    sys.exit(main())
