"""A dry run plans, records and previews everything, and changes nothing.

Every AWS call made during the run is recorded; none in IAM, Secrets Manager or STS may be anything but a
read. Its plan, as the ledger records it, must be exactly what a real run at the same moment then does.
"""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from localaws import KeySeed, LocalAws, Organization, Stack
from tests import earlier
from tests.statemachine.invariants import ledger_items, snapshot

pytestmark = pytest.mark.statemachine

MOMENT = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
SENDER = "key-rotation@example.com"
EMAIL = {"SenderEmail": SENDER, "SecurityTeamEmail": "security@example.com"}
READS = ("Get", "List", "Describe", "AssumeRole", "GenerateCredentialReport")  # a report changes nothing in IAM
# What else a dry run may call: its ledger writes, the run's account list, the previews, the workflow itself.
ALLOWED = {
    "dynamodb": {"UpdateItem", "PutItem", "BatchWriteItem", "Query", "GetItem", "Scan"},
    "s3": {"PutObject", "GetObject", "HeadObject"},
    "ses": {"SendRawEmail", "SendEmail", "GetIdentityVerificationAttributes"},  # the sender check, a read
    "organizations": None,  # reads only (checked below)
    "stepfunctions": {"StartExecution", "DescribeExecution", "GetExecutionHistory", "ListExecutions"},
    "lambda": {"Invoke"},
}


def population(org: Organization, alpha: str) -> dict[str, list[str]]:
    """Every kind of action, and users that get none."""
    owner = {"email": "owner@example.com"}
    users = {
        "rotates": org.create_user(alpha, "rotates", [KeySeed(80, used_days_ago=1)], owner),
        "retires": org.create_user(alpha, "retires", [KeySeed(95, used_days_ago=9), KeySeed(20, used_days_ago=1)], owner),
        "deletes": org.create_user(alpha, "deletes", [KeySeed(110, status="Inactive"), KeySeed(30)], owner),
        "deletes-then-rotates": org.create_user(
            alpha, "deletes-then-rotates", [KeySeed(120, status="Inactive"), KeySeed(80)], owner
        ),
        "undelivered": org.create_user(alpha, "undelivered", [KeySeed(80, used_days_ago=1), KeySeed(0.01)], owner),
        "exempt": org.create_user(alpha, "exempt", [KeySeed(200)], owner, groups=["IAMKeyRotationExemptionGroup"]),
        "fresh": org.create_user(alpha, "fresh", [KeySeed(10, used_days_ago=1)], owner),
    }
    return users


def left_by_a_crashed_rotation(stack: Stack, alpha: str, user: str, key_id: str) -> None:
    """The ledger of a rotation that died after CreateAccessKey: the new key is the product's, undelivered."""
    earlier.left_by_a_crashed_rotation(stack.admin, stack.outputs["LedgerTableName"], alpha, user, key_id)


def actions(stack: Stack, run_id: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (item["type"], item["userName"], item["keyId"]): item
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{run_id}")
        if item.get("kind") == "action"
    }


def keys_and_secrets(alpha: str) -> dict[str, Any]:
    return {
        name: (sorted((k.key_id, k.status) for k in user.keys.values()), user.secret_key_id)
        for (_, name), user in snapshot([alpha]).users.items()
    }


@pytest.mark.parametrize("how", ["stack-default", "execution-input"])
def test_a_dry_run_makes_no_change_and_plans_exactly_what_a_real_run_then_does(aws: LocalAws, how: str) -> None:
    with time_machine.travel(MOMENT, tick=False):
        org = aws.organization(["alpha"])
        alpha = org.account("alpha")
        aws.verify_sender(SENDER)
        excluded = {"ExcludeAccounts": org.management_account}
        if how == "stack-default":
            dry = aws.deploy({**EMAIL, **excluded})  # DryRun is "true" unless said otherwise
            real = aws.deploy({**EMAIL, **excluded, "DryRun": "false"}, stack_name="real")
            document: dict[str, Any] = {}
        else:
            dry = real = aws.deploy({**EMAIL, **excluded, "DryRun": "false"})
            document = {"dryRun": True}
        users = population(org, alpha)
        for stack in {id(dry): dry, id(real): real}.values():
            left_by_a_crashed_rotation(stack, alpha, "undelivered", users["undelivered"][1])
        before = keys_and_secrets(alpha)

        with aws.calls.record() as recorded:
            rehearsal = dry.run(document)
            calls = list(recorded)

        assert rehearsal.status == "SUCCEEDED", rehearsal.cause
        assert keys_and_secrets(alpha) == before, "the dry run changed keys or secrets"
        made = Counter(calls)
        mutations = sorted(
            {
                f"{service} {op}"
                for service, op in made
                if service in ("iam", "secretsmanager", "sts") and not op.startswith(READS)
            }
        )
        assert mutations == [], mutations
        for service, op in made:
            if service in ("iam", "secretsmanager", "sts"):
                continue  # reads only, checked above
            allowed = ALLOWED.get(service, set())
            assert op.startswith(READS) if allowed is None else op in allowed, f"{service} {op} in a dry run"
        assert made[("iam", "GetCredentialReport")] and made[("iam", "ListAccessKeys")] and made[("sts", "AssumeRole")]
        assert made[("ses", "SendRawEmail")], "the previews were sent"
        planned = actions(dry, rehearsal.name)
        assert {item["status"] for item in planned.values()} == {"planned"}
        assert all(item["dryRun"] is True for item in planned.values())
        previews = [
            i for i in ledger_items(dry.outputs["LedgerTableName"], f"RUN#{rehearsal.name}") if i.get("kind") == "email"
        ]
        assert previews and {i["status"] for i in previews} == {"preview"}

        performed_run = real.run({})

        assert performed_run.status == "SUCCEEDED", performed_run.cause
        performed = actions(real, performed_run.name)
        assert {key: item["status"] for key, item in performed.items()} == {key: "done" for key in performed}
        assert set(performed) == set(planned)
        old, new = users["undelivered"]
        assert set(planned) == {
            ("rotate", "rotates", users["rotates"][0]),
            ("disable", "retires", users["retires"][0]),
            ("delete", "deletes", users["deletes"][0]),
            ("delete", "deletes-then-rotates", users["deletes-then-rotates"][0]),
            ("rotate", "deletes-then-rotates", users["deletes-then-rotates"][1]),
            ("disable", "undelivered", new),
            ("delete", "undelivered", new),
            ("rotate", "undelivered", old),
        }
        assert keys_and_secrets(alpha) != before


# -- a quiet, honest dry run (issue 9, item 3) ----------------------------------------------------------------------

SECURITY = EMAIL["SecurityTeamEmail"]


def mailed_to(address: str) -> list[str]:
    """Subjects of the messages SES accepted for ``address``, in order."""
    from moto.ses.models import ses_backends

    subjects = []
    for regions in ses_backends.values():
        for backend in regions.values():
            for message in backend.sent_messages:
                parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
                if str(parsed["To"]) == address:
                    subjects.append(" ".join(str(parsed["Subject"]).split()))
    return subjects


def test_a_dry_run_previews_to_the_security_team_once_until_something_changes(aws: LocalAws) -> None:
    with time_machine.travel(MOMENT, tick=False):
        org = aws.organization(["alpha"])
        alpha = org.account("alpha")
        aws.verify_sender(SENDER)
        dry = aws.deploy({**EMAIL, "ExcludeAccounts": org.management_account})  # DryRun and DryRunNotifyOwners defaults
        owner = {"email": "owner@example.com"}
        org.create_user(alpha, "rotates", [KeySeed(80, used_days_ago=1)], owner)
        org.create_user(alpha, "retires", [KeySeed(95, used_days_ago=9), KeySeed(20, used_days_ago=1)], owner)

        first = dry.run({})

    assert first.status == "SUCCEEDED", first.cause
    # The output says it was a dry run, and counts what would happen under names no one can take for real actions.
    assert first.output["dryRun"] is True
    assert first.output["keys"] == {"wouldRotate": 1, "wouldDisable": 1, "wouldDelete": 0, "wouldWarn": 0, "overdue": 1}
    assert mailed_to("owner@example.com") == []
    previews = [subject for subject in mailed_to(SECURITY) if subject.startswith("[PREVIEW] IAM access key changes")]
    assert previews == [f"[PREVIEW] IAM access key changes that would be made in AWS account alpha ({alpha})"]

    # The next day the same preview is not mailed again: only the run report goes out.
    with time_machine.travel(MOMENT + timedelta(days=1), tick=False):
        second = dry.run({})
    assert second.status == "SUCCEEDED", second.cause
    assert second.output["keys"]["wouldRotate"] == 1
    assert len(mailed_to(SECURITY)) == 3 and mailed_to(SECURITY)[-1].startswith("[PREVIEW] All 1 accounts succeeded")
    statuses = [i["status"] for i in ledger_items(dry.outputs["LedgerTableName"], f"RUN#{second.name}") if i.get("kind") == "email"]
    assert statuses == ["unchanged"]

    # Something changed (one more user due): the preview goes out again.
    with time_machine.travel(MOMENT + timedelta(days=2), tick=False):
        org.create_user(alpha, "newly-due", [KeySeed(78, used_days_ago=1)], owner)
        third = dry.run({})
    assert third.status == "SUCCEEDED", third.cause
    assert third.output["keys"]["wouldRotate"] == 2
    assert sum(subject.startswith("[PREVIEW] IAM access key changes") for subject in mailed_to(SECURITY)) == 2
    assert mailed_to("owner@example.com") == []


def test_dry_run_notify_owners_mails_the_owners_their_preview(aws: LocalAws) -> None:
    with time_machine.travel(MOMENT, tick=False):
        org = aws.organization(["alpha"])
        alpha = org.account("alpha")
        aws.verify_sender(SENDER)
        dry = aws.deploy({**EMAIL, "ExcludeAccounts": org.management_account, "DryRunNotifyOwners": "true"})
        org.create_user(alpha, "rotates", [KeySeed(80, used_days_ago=1)], {"email": "owner@example.com"})

        execution = dry.run({})

    assert execution.status == "SUCCEEDED", execution.cause
    assert mailed_to("owner@example.com") == [
        f"[PREVIEW] IAM access key changes that would be made in AWS account alpha ({alpha})"
    ]
    assert [subject for subject in mailed_to(SECURITY) if "IAM access key changes" in subject] == []


def test_a_real_run_keeps_its_counts_names_and_says_it_was_not_dry(stack: Stack, org: Organization) -> None:
    org.create_user(org.account("alpha"), "rotates", [KeySeed(80)])
    execution = stack.run({"accounts": [org.account("alpha")]})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["dryRun"] is False
    assert execution.output["keys"] == {"rotated": 1, "disabled": 0, "deleted": 0, "warned": 0, "overdue": 0}
