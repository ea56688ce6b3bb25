"""The two email functions end to end, in process, against moto: what SES recorded is the proof.

Each test writes the ledger items audit and the key actions would have left,
calls ``functions/notify/app.py``'s handler (the digests) or
``functions/send_run_report/app.py``'s (the run report) with the event the state
machine sends, and reads the messages moto's SES accepted (raw MIME, parsed here).
"""

from __future__ import annotations

import doctest
import email
import importlib.util
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from markupsafe import escape
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from keyrotation import events, key_events, ledger_records, observability
from keyrotation.errors import InvalidInput, Throttled
from keyrotation.ledger import Ledger, RecordKind
from keyrotation.ledger_records import (
    AccountResult,
    AccountStatus,
    ActionRecord,
    ActionStatus,
    EmailRecord,
    EmailStatus,
    NoticeRecord,
    OverdueRecord,
    OwedRecord,
    run_record,
)
from keyrotation.model import Action, ActionType, Notice, NoticeKind
from localaws.defaults import function_environment

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
REGION = "us-east-1"
TABLE = "key-rotation-ledger"
SENDER = "key-rotation@example.com"
SECURITY = "security@example.com"
BUCKET = "email-template-overrides"
PREFIX = "email-templates/"
ACCOUNT = {"id": "111122223333", "name": "prod", "email": "aws-prod@example.com"}
RUN: dict[str, Any] = {
    "runId": "2026-01-15T06-00-00Z",
    "dryRun": False,
    "startedAt": "2026-01-15T06:00:00Z",
    "maxConcurrency": 10,
    "expiresAt": 1800000000,
}
ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:Account_111122223333_User_alice_AccessKey-AbCdEf"
SECRET_VALUE = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # what create_key stores; notify never sees it
SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
HOSTILE = '<script>alert("x")</script>'


def load_app(function: str) -> ModuleType:
    """functions/<function>/app.py under a name of its own (every function has an app.py)."""
    spec = importlib.util.spec_from_file_location(f"{function}_function_app", FUNCTIONS / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notify_app = load_app("notify")
report_app = load_app("send_run_report")


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "key-rotation-notify"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:key-rotation-notify"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Sent:
    """One message moto's SES accepted, parsed."""

    message_id: str
    to: str
    sender: str
    subject: str
    text: str
    html: str

    @classmethod
    def parse(cls, recorded: Any) -> Sent:
        message = email.message_from_string(recorded.raw_data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        return cls(
            message_id=recorded.id,
            to=str(message["To"]),
            sender=recorded.source,
            subject=" ".join(str(message["Subject"]).split()),  # unfolded, as a mail client shows it
            text=part(message, "plain"),
            html=part(message, "html"),
        )

    @property
    def bodies(self) -> tuple[str, str]:
        return self.html, self.text


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None, f"no text/{subtype} part"
    return str(body.get_content()).replace("\r\n", "\n")  # SMTP line ends


def sent() -> list[Sent]:
    return [Sent.parse(message) for message in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages]


def sent_to(recipient: str) -> Sent:
    (message,) = [message for message in sent() if message.to == recipient]
    return message


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """moto with the ledger table, a verified sender and the email functions' environment (the same for both)."""
    environment = {
        **function_environment("NotifyFunction"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "notify",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "KeyRotation",
        "LEDGER_TABLE": TABLE,
        "DRY_RUN": "false",
        "OWNER_EMAIL_TAG_KEY": "email",
        "SENDER_EMAIL": SENDER,
        "SECURITY_TEAM_EMAIL": SECURITY,
        "DRY_RUN_NOTIFY_OWNERS": "false",
        "TEMPLATE_BUCKET": "",
        "TEMPLATE_PREFIX": PREFIX,
        "TEMPLATE_BUCKET_OWNER": "123456789012",  # the template's default: the stack's own account (moto's)
        "EVENT_BUS_ARN": f"arn:aws:events:{REGION}:123456789012:event-bus/default",  # the key events' bus
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(observability.metrics, "namespace", "KeyRotation")
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
        yield Ledger(TABLE)


def test_both_email_functions_get_the_same_settings_from_the_template() -> None:
    # The ledger fixture's environment stands for both functions' (only their service names differ), but for
    # DryRunNotifyOwners: only Notify sends previews.
    notify_environment = function_environment("NotifyFunction")
    assert notify_environment.pop("DRY_RUN_NOTIFY_OWNERS") == "false"
    assert function_environment("SendRunReportFunction") == notify_environment


def notify(run: dict[str, Any] = RUN, account: dict[str, Any] = ACCOUNT) -> dict[str, Any]:
    """What the state machine's Notify state sends, once per account."""
    return notify_app.lambda_handler({"account": account, "run": run}, LambdaContext())


def send_report(report: dict[str, Any], replay: Any = None, run: dict[str, Any] = RUN) -> dict[str, Any]:
    """What the state machine's SendRunReport state sends, once per execution (its function's own service name)."""
    with mock.patch.dict(os.environ, {"POWERTOOLS_SERVICE_NAME": "send_run_report"}):
        return report_app.lambda_handler({"run": run, "report": report, "replayInput": replay}, LambdaContext())


def emails(ledger: Ledger, run: dict[str, Any] = RUN) -> dict[str, dict[str, Any]]:
    return {item["recipient"]: item for item in ledger.run_items(run["runId"]) if item.get("kind") == "email"}


# -- what audit and the key actions leave in the ledger ------------------------------------------


def rotated(
    ledger: Ledger,
    user: str = "alice",
    owner: str | None = "alice@example.com",
    run: dict[str, Any] = RUN,
    reason: str = "Key AKIAOLD is 80 days old; rotation is due after 75 days.",
) -> None:
    action = Action(ActionType.ROTATE, user, f"AKIAOLD{user.upper()[:10]}", reason)
    ledger.record_action(run["runId"], ACCOUNT["id"], action, status="planned", dryRun=run["dryRun"], ownerEmail=owner)
    if not run["dryRun"]:
        ledger.record_action(
            run["runId"],
            ACCOUNT["id"],
            action,
            status="done",
            newKeyId=f"AKIANEW{user.upper()[:10]}",
            secretName=f"Account_111122223333_User_{user}_AccessKey",
            secretArn=ARN.replace("alice", user),
            disableOn="2026-01-30T06:00:00Z",
            deleteOn="2026-02-09T06:00:00Z",
        )


def acted(
    ledger: Ledger,
    kind: ActionType,
    key_id: str,
    user: str = "alice",
    owner: str | None = "alice@example.com",
    run: dict[str, Any] = RUN,
) -> None:
    action = Action(kind, user, key_id, f"{kind.value} because it was replaced 15 days ago.")
    status = "planned" if run["dryRun"] else "done"
    ledger.record_action(run["runId"], ACCOUNT["id"], action, status=status, dryRun=run["dryRun"], ownerEmail=owner)


def noticed(
    ledger: Ledger,
    kind: NoticeKind,
    user: str = "alice",
    key_id: str | None = "AKIASOON",
    owner: str | None = "alice@example.com",
    detail: str | None = None,
    run: dict[str, Any] = RUN,
    **extra: Any,
) -> None:
    notice = Notice(
        kind, user, key_id, detail or f"{kind.value}: detail for {user}.", due=datetime(2026, 1, 20, 6, tzinfo=UTC)
    )
    ledger.record_notice(run["runId"], ACCOUNT["id"], notice, dryRun=run["dryRun"], ownerEmail=owner, **extra)


def a_day_of_events(ledger: Ledger, run: dict[str, Any] = RUN) -> None:
    """alice owns alice and bob; carol has no owner tag (the account's email); dave is exempt."""
    rotated(ledger, run=run)
    acted(ledger, ActionType.DISABLE, "AKIADISABLED", run=run)
    acted(ledger, ActionType.DELETE, "AKIADELETED", run=run)
    noticed(
        ledger,
        NoticeKind.DISABLE_SOON,
        run=run,
        lastUsed="2026-01-13T10:05:00+00:00",
        lastUsedService="s3",
        lastUsedRegion="eu-west-1",
        keyCreated="2025-10-22T00:00:00+00:00",
    )
    noticed(
        ledger,
        NoticeKind.BLOCKED,
        "bob",
        "AKIABOB",
        run=run,
        detail="Key AKIABOB is due for rotation, but the user already has two keys. "
        "To rotate sooner, delete key AKIABOB2.",
    )
    noticed(ledger, NoticeKind.EXEMPTION_EXPIRING, "carol", None, owner=None, run=run)
    noticed(ledger, NoticeKind.EXEMPT, "dave", None, owner="dave@example.com", run=run)
    noticed(ledger, NoticeKind.DEFERRED, "erin", "AKIAERIN", owner="erin@example.com", run=run)


# --------------------------------------------------------------------------
# Digests
# --------------------------------------------------------------------------


def test_each_person_gets_one_digest_with_all_their_events(ledger: Ledger) -> None:
    a_day_of_events(ledger)

    assert notify() == {"sent": 2, "failed": 0, "skipped": 0, "invalid": 0}

    assert sorted(message.to for message in sent()) == ["alice@example.com", "aws-prod@example.com"]
    alice = sent_to("alice@example.com")
    assert alice.sender == SENDER
    assert alice.subject == "IAM access key changes in AWS account prod (111122223333)"
    for body in alice.bodies:
        for expected in (
            # rotated: the secret's name and ARN, the command that reads it, both dates
            "AKIAOLDALICE",
            "AKIANEWALICE",
            "Account_111122223333_User_alice_AccessKey",
            ARN,
            f"aws secretsmanager get-secret-value --secret-id {ARN} --region us-east-1 "
            "--query SecretString --output text",
            "2026-01-30 (Friday)",
            "2026-02-09 (Monday)",
            # disabled soon: when, last used when, by which service, where
            "AKIASOON",
            "2026-01-20 (Tuesday)",
            "2026-01-13 10:05 UTC",
            "s3",
            "eu-west-1",
            # disabled, deleted
            "AKIADISABLED",
            "AKIADELETED",
            # blocked (bob is alice's too): why, and what to do
            "bob",
            "To rotate sooner, delete key AKIABOB2.",
            "What you can do",
            "key-rotation:exempt",
        ):
            assert expected in body, expected
        assert "carol" not in body and "dave" not in body and "erin" not in body
    account_contact = sent_to("aws-prod@example.com")
    for body in account_contact.bodies:
        assert "carol" in body and "exemption-expiring: detail for carol." in body and "alice" not in body


def test_every_digest_is_recorded_and_warnings_are_marked(ledger: Ledger) -> None:
    a_day_of_events(ledger)
    notify()

    recorded = emails(ledger)
    ids = {message.to: message.message_id for message in sent()}
    assert {recipient: item["status"] for recipient, item in recorded.items()} == {
        "alice@example.com": "sent",
        "aws-prod@example.com": "sent",
    }
    assert {recipient: item["messageId"] for recipient, item in recorded.items()} == ids
    assert recorded["alice@example.com"]["users"] == ["alice", "bob"]
    assert recorded["alice@example.com"]["events"]["rotated"] == 1
    assert ledger.delivery(ACCOUNT["id"], "alice").warned == {("AKIASOON", "disable-soon")}
    assert ledger.delivery(ACCOUNT["id"], "carol").warned == {("", "exemption-expiring")}
    assert ledger.delivery(ACCOUNT["id"], "bob").warned == frozenset()  # blocked is not a one-time warning


def test_a_retried_or_replayed_invocation_sends_nothing_twice(ledger: Ledger) -> None:
    a_day_of_events(ledger)
    notify()
    assert notify() == {"sent": 0, "failed": 0, "skipped": 2, "invalid": 0}
    assert notify() == {"sent": 0, "failed": 0, "skipped": 2, "invalid": 0}
    assert len(sent()) == 2


def test_a_new_run_sends_a_new_digest(ledger: Ledger) -> None:
    rotated(ledger)
    notify()
    tomorrow = {**RUN, "runId": "2026-01-16T06-00-00Z"}
    acted(ledger, ActionType.DISABLE, "AKIAOLDALICE", run=tomorrow)
    assert notify(run=tomorrow)["sent"] == 1
    assert len(sent()) == 2


def test_a_dry_run_sends_the_same_digests_marked_as_a_preview(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRY_RUN_NOTIFY_OWNERS", "true")
    dry = {**RUN, "dryRun": True}
    a_day_of_events(ledger, run=dry)

    assert notify(run=dry)["sent"] == 2

    alice = sent_to("alice@example.com")
    assert alice.subject.startswith("[PREVIEW] ")
    for body in alice.bodies:
        assert "PREVIEW" in body and "dry run" in body
        assert (
            "would be replaced by a new key" in body and "would be set Inactive" in body and "would be deleted" in body
        )
        assert "--secret-id Account_111122223333_User_alice_AccessKey --region us-east-1" in body
        assert "AKIANEW" not in body  # nothing was created
    assert {item["status"] for item in emails(ledger, dry).values()} == {"preview"}
    assert ledger.delivery(ACCOUNT["id"], "alice").warned == frozenset()  # a preview warns nobody for real
    assert notify(run=dry)["skipped"] == 2 and len(sent()) == 2


def test_a_dry_run_previews_the_whole_account_to_the_security_team_only_by_default(ledger: Ledger) -> None:
    dry = {**RUN, "dryRun": True}
    a_day_of_events(ledger, run=dry)

    assert notify(run=dry) == {"sent": 1, "failed": 0, "skipped": 0, "invalid": 0}

    (preview,) = sent()
    assert preview.to == SECURITY and preview.subject.startswith("[PREVIEW] ")
    for body in preview.bodies:
        assert "as the security team" in body and "DryRunNotifyOwners" in body
        for user in ("alice", "bob", "carol"):  # every user with something to tell, whoever owns them
            assert user in body
        assert "dave" not in body  # exempt: the run report's business, as in the owners' digests
    assert {recipient: item["status"] for recipient, item in emails(ledger, dry).items()} == {SECURITY: "preview"}


def test_the_same_preview_is_not_mailed_again_the_next_day_unless_something_changed(ledger: Ledger) -> None:
    first = {**RUN, "dryRun": True}
    second = {**first, "runId": "2026-01-16T06-00-00Z"}
    third = {**first, "runId": "2026-01-17T06-00-00Z"}
    fourth = {**first, "runId": "2026-01-18T06-00-00Z"}
    rotated(ledger, run=first)
    assert notify(run=first)["sent"] == 1

    # The next day the same key is still due: its reason now says one day more, which is no news.
    rotated(ledger, run=second, reason="Key AKIAOLD is 81 days old; rotation is due after 75 days.")
    assert notify(run=second) == {"sent": 0, "failed": 0, "skipped": 1, "invalid": 0}
    assert len(sent()) == 1
    assert emails(ledger, second)[SECURITY]["status"] == "unchanged"

    # Then one more key is due: that is news, and the whole preview goes out again.
    rotated(ledger, run=third)
    rotated(ledger, "bob", run=third)
    assert notify(run=third)["sent"] == 1
    assert len(sent()) == 2 and "bob" in sent()[-1].text

    # And a key no longer due is news too.
    rotated(ledger, run=fourth)
    assert notify(run=fourth)["sent"] == 1
    assert len(sent()) == 3 and "bob" not in sent()[-1].text


def test_owners_included_in_a_dry_run_each_get_their_preview_once(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRY_RUN_NOTIFY_OWNERS", "true")
    first = {**RUN, "dryRun": True}
    second = {**first, "runId": "2026-01-16T06-00-00Z"}
    rotated(ledger, run=first)
    assert notify(run=first)["sent"] == 1 and sent()[0].to == "alice@example.com"

    rotated(ledger, run=second)
    acted(ledger, ActionType.DISABLE, "AKIACAROL", user="carol", owner="carol@example.com", run=second)
    assert notify(run=second) == {"sent": 1, "failed": 0, "skipped": 1, "invalid": 0}
    assert [message.to for message in sent()] == ["alice@example.com", "carol@example.com"]


def test_a_real_run_after_a_preview_mails_its_digest(ledger: Ledger) -> None:
    """The fingerprint quiets previews only: a real run tells what was done, whatever was previewed."""
    rotated(ledger, run={**RUN, "dryRun": True})
    notify(run={**RUN, "dryRun": True})
    real = {**RUN, "runId": "2026-01-16T06-00-00Z"}
    rotated(ledger, run=real)
    assert notify(run=real)["sent"] == 1 and sent()[-1].to == "alice@example.com"


def test_a_dry_run_neither_carries_nor_settles_what_earlier_runs_owe(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preview tells no owner anything for real: owed news waits for a real run's digest."""
    monkeypatch.setenv("DRY_RUN_NOTIFY_OWNERS", "true")
    earlier = {**RUN, "runId": "2026-01-14T06-00-00Z"}
    dry = {**RUN, "dryRun": True}
    rotated(ledger, run=earlier)
    ledger.record_undelivered(ACCOUNT["id"], "alice", earlier["runId"])
    rotated(ledger, run=dry)
    ledger.record_owed(dry["runId"], ACCOUNT["id"], "alice", [earlier["runId"]])  # as if the audit had written it

    assert notify(run=dry)["sent"] == 1

    (preview,) = sent()
    assert preview.to == "alice@example.com"
    for body in preview.bodies:
        assert earlier["runId"] not in body and "AKIANEWALICE" not in body  # the earlier rotation is not carried
    assert ledger.account_records(ACCOUNT["id"]).owed == {"alice": frozenset({earlier["runId"]})}


def test_the_run_identity_and_owed_items_have_a_record_kind(ledger: Ledger) -> None:
    run_id = ledger.claim_run("nightly", "2026-01-15T06:00:00.000Z")
    ledger.record_owed(run_id, ACCOUNT["id"], "alice", ["an-earlier-run"])

    kinds = {item["sk"].rpartition("#")[0] or item["sk"]: item["kind"] for item in ledger.run_items(run_id)}
    assert kinds == {"RUN": RecordKind.RUN, f"ACCOUNT#{ACCOUNT['id']}#OWED": RecordKind.OWED}


def test_every_item_a_run_holds_reads_back_as_its_typed_record(ledger: Ledger) -> None:
    """What the ledger writes in a run comes back from run_records as one record per item, enums for statuses;
    the run's own items (its identity, its replay) are no account's record."""
    run_id = ledger.claim_run("nightly", "2026-01-15T06:00:00.000Z")
    account = ACCOUNT["id"]
    rotate = Action(ActionType.ROTATE, "alice", "AKIAOLDALICE", "due")
    ledger.record_action(run_id, account, rotate, status=ActionStatus.DONE, newKeyId="AKIANEWALICE", ownerEmail="a@x.io")
    ledger.record_notice(run_id, account, Notice(NoticeKind.EXEMPT, "bob", None, "in the group"))
    ledger.record_email(run_id, account, "a@x.io", status="failed", users=["alice"], errorCode="MessageRejected")
    ledger.record_overdue(run_id, account, ["AKIAOLDALICE"], unread=2)
    ledger.record_owed(run_id, account, "alice", ["an-earlier-run"])
    ledger.record_replay(run_id, [account])

    records = {type(record): record for record in ledger.run_records(run_id)}

    assert set(records) == {ActionRecord, NoticeRecord, EmailRecord, OverdueRecord, OwedRecord}
    action = records[ActionRecord]
    assert isinstance(action, ActionRecord)
    assert (action.type, action.status, action.new_key_id, action.owner_email) == (
        ActionType.ROTATE, ActionStatus.DONE, "AKIANEWALICE", "a@x.io"
    )
    notice = records[NoticeRecord]
    assert isinstance(notice, NoticeRecord)
    assert (notice.user_name, notice.key_id, notice.type, notice.detail) == ("bob", None, NoticeKind.EXEMPT, "in the group")
    email_record = records[EmailRecord]
    assert isinstance(email_record, EmailRecord)
    assert (email_record.status, email_record.users, email_record.error_code) == (
        EmailStatus.FAILED, ("alice",), "MessageRejected"
    )
    assert records[OverdueRecord] == OverdueRecord(account, ("AKIAOLDALICE",), 2)
    assert records[OwedRecord] == OwedRecord(account, "alice", frozenset({"an-earlier-run"}))
    assert ledger.run_records(run_id, "444455556666") == []


def test_an_account_result_the_state_machine_wrote_reads_back_with_its_status() -> None:
    written = {"pk": "RUN#r", "sk": "ACCOUNT#111122223333", "kind": "account", "accountId": "111122223333"}
    failed = run_record({**written, "status": "FAILED", "error": "KeyRotation.Throttled", "cause": "slow"})
    assert failed == AccountResult("111122223333", AccountStatus.FAILED, "KeyRotation.Throttled", "slow")
    # RecordNotifyFailure may write before RecordAccountSuccess: no status or account id yet, the key names it.
    notify_only = {"pk": "RUN#r", "sk": "ACCOUNT#111122223333", "kind": "account", "notifyError": "E"}
    assert run_record(notify_only) == AccountResult("111122223333", notify_error="E")


def test_the_ledger_record_examples_hold() -> None:
    for module in (ledger_records, key_events):
        failures, tried = doctest.testmod(module)
        assert tried and not failures, module.__name__


def test_a_dry_run_without_security_team_email_mails_no_preview(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECURITY_TEAM_EMAIL", "")
    dry = {**RUN, "dryRun": True}
    a_day_of_events(ledger, run=dry)
    assert notify(run=dry) == {"sent": 0, "failed": 0, "skipped": 0, "invalid": 0}
    assert sent() == [] and emails(ledger, dry) == {}


def test_nothing_to_tell_sends_nothing(ledger: Ledger) -> None:
    noticed(ledger, NoticeKind.EXEMPT, "dave", None)
    acted(ledger, ActionType.DISABLE, "AKIAX", run={**RUN, "dryRun": True})  # planned, in a real run: not done
    assert notify() == {"sent": 0, "failed": 0, "skipped": 0, "invalid": 0}
    assert sent() == []


# --------------------------------------------------------------------------
# Addresses and hostile input
# --------------------------------------------------------------------------


def test_an_invalid_owner_tag_is_reported_not_sent_to(ledger: Ledger) -> None:
    rotated(ledger, owner="alice at example dot com")

    assert notify() == {"sent": 1, "failed": 0, "skipped": 0, "invalid": 1}

    assert [message.to for message in sent()] == ["aws-prod@example.com"]
    for body in sent()[0].bodies:
        assert "alice at example dot com" in body and "not hold a valid email address" in body
    problem = emails(ledger)["alice at example dot com"]
    assert (problem["status"], problem["users"]) == ("invalid-address", ["alice"])


def test_hostile_names_and_tags_are_escaped(ledger: Ledger) -> None:
    long_user = "svc-" + "x" * 56 + "-end"
    account = {**ACCOUNT, "name": f"prod {HOSTILE} 本番 🚀"}
    rotated(ledger, long_user, owner="owner@example.com", reason=f"Because {HOSTILE}")
    noticed(
        ledger,
        NoticeKind.BLOCKED,
        long_user,
        "AKIAB",
        owner="owner@example.com",
        detail=f"<img src=x onerror=alert(1)> {HOSTILE}",
    )
    rotated(ledger, "bob", owner='"><a href="javascript:alert(1)">x</a>')

    notify(account=account)

    for message in sent():
        assert "<script" not in message.html and "<img" not in message.html and 'href="javascript' not in message.html
        assert str(escape(HOSTILE)) in message.html
        assert "本番 🚀" in message.subject and "本番 🚀" in message.html and HOSTILE in message.text
    owner = sent_to("owner@example.com")
    assert long_user in owner.html and long_user in owner.text
    assert str(escape('"><a href="javascript:alert(1)">x</a>')) in sent_to("aws-prod@example.com").html


# --------------------------------------------------------------------------
# SES failures
# --------------------------------------------------------------------------


def test_the_sandbox_rejection_is_recorded_and_does_not_fail_the_run(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDER_EMAIL", "unverified@example.com")
    rotated(ledger)

    assert notify() == {"sent": 0, "failed": 1, "skipped": 0, "invalid": 0}

    assert sent() == []
    failure = emails(ledger)["alice@example.com"]
    assert (failure["status"], failure["errorCode"], failure["transient"]) == ("failed", "MessageRejected", False)
    assert ledger.delivery(ACCOUNT["id"], "alice").warned == frozenset()


def throttle_once(monkeypatch: pytest.MonkeyPatch, recipient: str) -> list[str]:
    """SES throttles the first message to ``recipient``; returns the recipients it throttled."""
    throttled: list[str] = []
    real = BaseClient._make_api_call

    def flaky(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "SendRawEmail":
            to = email.message_from_bytes(params["RawMessage"]["Data"])["To"]
            if to == recipient and not throttled:
                throttled.append(to)
                raise ClientError(
                    {"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}}, operation
                )
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", flaky)
    return throttled


def test_a_transient_error_is_retried_by_the_state_machine_without_resending(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_day_of_events(ledger)
    throttled = throttle_once(monkeypatch, "alice@example.com")

    with pytest.raises(Throttled) as raised:
        notify()
    assert type(raised.value).__name__ == "KeyRotation.Throttled"  # the name the ASL's Retry matches
    assert throttled == ["alice@example.com"]
    assert [message.to for message in sent()] == ["aws-prod@example.com"]  # the others were served first
    assert emails(ledger)["alice@example.com"]["transient"] is True

    assert notify() == {"sent": 1, "failed": 0, "skipped": 1, "invalid": 0}  # the state machine's retry
    assert sorted(message.to for message in sent()) == ["alice@example.com", "aws-prod@example.com"]
    assert emails(ledger)["alice@example.com"]["status"] == "sent"


def test_without_a_sender_nothing_is_sent_and_what_would_have_been_is_recorded(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDER_EMAIL", "")
    a_day_of_events(ledger)
    assert notify() == {"sent": 0, "failed": 0, "skipped": 2, "invalid": 0}
    assert sent() == []
    assert {item["status"] for item in emails(ledger).values()} == {"not-configured"}
    assert send_report({"accounts": {"total": 1}}) == {"sent": 0, "failed": 0, "skipped": 1, "invalid": 0}


# --------------------------------------------------------------------------
# Template overrides in S3
# --------------------------------------------------------------------------


@pytest.fixture
def overrides(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TEMPLATE_BUCKET", BUCKET)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_an_s3_override_is_used(ledger: Ledger, overrides: Any) -> None:
    overrides.put_object(
        Bucket=BUCKET,
        Key=f"{PREFIX}digest.txt.j2",
        Body=b"ACME KEYS for {{ digest.recipient }}: {{ digest.rotated | length }} rotated",
    )
    rotated(ledger)
    notify()
    message = sent_to("alice@example.com")
    assert message.text.strip() == "ACME KEYS for alice@example.com: 1 rotated"
    assert ARN in message.html  # the HTML has no override: packaged
    fallbacks = {f["template"]: f["reason"] for f in emails(ledger)["alice@example.com"]["templateFallbacks"]}
    assert fallbacks == {
        "digest.html.j2": f"s3://{BUCKET}/{PREFIX}digest.html.j2: no such object",
        "layout.html.j2": f"s3://{BUCKET}/{PREFIX}layout.html.j2: no such object",
    }


def test_a_broken_override_falls_back_and_is_in_the_run_report(ledger: Ledger, overrides: Any) -> None:
    overrides.put_object(Bucket=BUCKET, Key=f"{PREFIX}digest.html.j2", Body=b"{% if digest.rotated %}<p>unclosed")
    overrides.put_object(Bucket=BUCKET, Key=f"{PREFIX}digest.txt.j2", Body=b"{{ digest.no_such_field }}")
    rotated(ledger)

    assert notify()["sent"] == 1

    message = sent_to("alice@example.com")
    for body in message.bodies:
        assert ARN in body  # the packaged templates
    reasons = {f["template"]: f["reason"] for f in emails(ledger)["alice@example.com"]["templateFallbacks"]}
    assert reasons["digest.html.j2"].startswith(f"syntax error in s3://{BUCKET}/{PREFIX}digest.html.j2")
    assert reasons["digest.txt.j2"].startswith("UndefinedError")

    send_report({"accounts": {"total": 1, "succeeded": 1, "failed": 0}})
    report = sent_to(SECURITY)
    for body in report.bodies:
        assert "Email template overrides not used" in body or "EMAIL TEMPLATE OVERRIDES NOT USED" in body
        assert "digest.html.j2" in body and "digest.txt.j2" in body and "UndefinedError" in body


def test_a_missing_bucket_falls_back_without_stopping_anything(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPLATE_BUCKET", "no-such-bucket")
    rotated(ledger)
    assert notify()["sent"] == 1
    assert ARN in sent_to("alice@example.com").html
    reasons = [f["reason"] for f in emails(ledger)["alice@example.com"]["templateFallbacks"]]
    assert reasons and all("NoSuchBucket" in reason for reason in reasons)


# --------------------------------------------------------------------------
# The run report
# --------------------------------------------------------------------------

SUMMARY = {
    "runId": RUN["runId"],
    "accounts": {"total": 3, "succeeded": 1, "failed": 2},
    "keys": {"rotated": 1, "disabled": 1, "deleted": 1, "warned": 1},
    "failedAccounts": [
        {
            "accountId": "444455556666",
            "error": "KeyRotation.MemberRoleUnavailable",
            "cause": "cannot assume arn:aws:iam::444455556666:role/IAMKeyRotationMemberRole (AccessDenied)",
        },
        {"accountId": "777788889999", "error": "KeyRotation.ActionsFailed", "cause": f"key actions failed {HOSTILE}"},
    ],
    "notices": {"deferred": 205, "exempt": 1},
}
REPLAY = {"accounts": ["444455556666", "777788889999"], "dryRun": False}


def test_the_security_team_gets_one_report_per_execution(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    a_day_of_events(ledger)
    for number in range(204):
        noticed(ledger, NoticeKind.DEFERRED, f"user{number:03d}", f"AKIADEFER{number:03d}", owner=None)
    noticed(ledger, NoticeKind.BLOCKED, "frank", "AKIAF", owner="frank@example.com")
    rejected = frank_rejected(monkeypatch)
    notify()
    assert rejected == ["frank@example.com"]

    assert send_report(SUMMARY, REPLAY) == {"sent": 1, "failed": 0, "skipped": 0, "invalid": 0}

    report = sent_to(SECURITY)
    assert report.subject == f"2 of 3 accounts failed in IAM access key rotation run {RUN['runId']}"
    for body in report.bodies:
        for expected in (
            "2 of 3 accounts failed",
            "444455556666",
            "KeyRotation.MemberRoleUnavailable",
            "IAMKeyRotationMemberRole (AccessDenied)",
            "777788889999",
            "Deferred actions (205)" if body is report.html else "DEFERRED ACTIONS (205)",
            "user000",
            "and 5 more",
            "dave",
            "exempt: detail for dave.",
            "frank@example.com",
            "MessageRejected",
        ):
            assert expected in body, expected
        assert "user203" not in body  # beyond the 200 listed
    assert json.dumps(REPLAY, indent=2, sort_keys=True) in report.text
    assert "<script" not in report.html and str(escape(HOSTILE)) in report.html
    assert len(sent()) == 3  # two digests (frank's was refused) and one report


def frank_rejected(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """SES refuses every message to frank (as the sandbox refuses an unverified recipient)."""
    rejected: list[str] = []
    real = BaseClient._make_api_call

    def refuse(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if (
            operation == "SendRawEmail"
            and email.message_from_bytes(params["RawMessage"]["Data"])["To"] == "frank@example.com"
        ):
            rejected.append("frank@example.com")
            raise ClientError(
                {"Error": {"Code": "MessageRejected", "Message": "Email address is not verified."}}, operation
            )
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    return rejected


def test_a_dry_run_report_is_a_preview(ledger: Ledger) -> None:
    send_report(SUMMARY, REPLAY, run={**RUN, "dryRun": True})
    report = sent_to(SECURITY)
    assert report.subject.startswith("[PREVIEW] ")
    assert "PREVIEW" in report.html and "PREVIEW" in report.text


def test_a_dry_run_report_counts_what_would_have_been_done(ledger: Ledger) -> None:
    would = {"wouldRotate": 7, "wouldDisable": 5, "wouldDelete": 3, "wouldWarn": 2, "overdue": 4}
    send_report({**SUMMARY, "dryRun": True, "keys": would}, REPLAY, run={**RUN, "dryRun": True})
    text = sent_to(SECURITY).text
    assert "7 rotated, 5 disabled, 3 deleted, 2 warned; 4 Active older than 90 days" in text
    assert "the key counts are what would have been done" in text


@pytest.mark.parametrize(
    ("state", "run", "preview"),
    [
        ("ListAccounts", {"runId": RUN["runId"], "startedAt": RUN["startedAt"]}, False),  # no dryRun yet: the stack's
        ("Summarize", {**RUN, "dryRun": True}, True),
    ],
)
def test_a_run_that_failed_before_or_after_its_accounts_is_reported(
    ledger: Ledger, state: str, run: dict[str, Any], preview: bool
) -> None:
    cause = json.dumps({"errorType": "KeyRotation.InvalidInput", "errorMessage": f"no such field {HOSTILE}"})
    summary = {"runId": RUN["runId"], "failure": {"state": state, "error": "KeyRotation.InvalidInput", "cause": cause}}

    assert send_report(summary, {}, run=run) == {"sent": 1, "failed": 0, "skipped": 0, "invalid": 0}

    report = sent_to(SECURITY)
    assert report.subject == ("[PREVIEW] " if preview else "") + (
        f"IAM access key rotation run {RUN['runId']} failed in {state} (KeyRotation.InvalidInput)"
    )
    assert f"THE RUN FAILED in its {state} step: KeyRotation.InvalidInput" in report.text
    assert f"no such field {HOSTILE}" in report.text and f"no such field {escape(HOSTILE)}" in report.html
    assert ("No account was processed" in report.text) is (state == "ListAccounts")
    assert ("the counts below are incomplete" in report.text) is (state == "Summarize")


def test_without_a_security_team_no_report_is_sent(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECURITY_TEAM_EMAIL", "")
    assert send_report(SUMMARY, REPLAY) == {"sent": 0, "failed": 0, "skipped": 1, "invalid": 0}
    assert sent() == []


def test_a_rejected_report_is_counted_not_raised(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDER_EMAIL", "unverified@example.com")
    assert send_report(SUMMARY, REPLAY) == {"sent": 0, "failed": 1, "skipped": 0, "invalid": 0}


def test_a_throttled_report_is_left_to_the_state_machines_retry(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttled = throttle_once(monkeypatch, SECURITY)

    with pytest.raises(Throttled) as raised:
        send_report(SUMMARY, REPLAY)
    assert type(raised.value).__name__ == "KeyRotation.Throttled"  # the name the ASL's Retry matches
    assert throttled == [SECURITY] and sent() == []

    assert send_report(SUMMARY, REPLAY) == {"sent": 1, "failed": 0, "skipped": 0, "invalid": 0}  # the retry
    assert [message.to for message in sent()] == [SECURITY]


# --------------------------------------------------------------------------
# Secrets and logs
# --------------------------------------------------------------------------


def test_no_secret_and_no_body_leaves_the_function(
    ledger: Ledger, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    boto3.client("secretsmanager").create_secret(
        Name="Account_111122223333_User_alice_AccessKey",
        SecretString=json.dumps({"AccessKeyId": "AKIANEWALICE", "SecretAccessKey": SECRET_VALUE}),
    )
    a_day_of_events(ledger)
    notify()
    send_report(SUMMARY, REPLAY)

    messages = sent()
    assert len(messages) == 3
    for message in messages:
        for part in (message.subject, *message.bodies):
            assert SECRET_VALUE not in part
            assert not SECRET_LIKE.search(part), SECRET_LIKE.search(part)
    for recorded in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        assert SECRET_VALUE not in recorded.raw_data
    assert SECRET_VALUE not in json.dumps(ledger.run_items(RUN["runId"]), default=str)

    records = [json.dumps(record.__dict__, default=str) for record in caplog.records]  # every field, extras too
    logs = "\n".join(records) + capsys.readouterr().out  # and the metrics (EMF, on stdout)
    assert any(
        '"digest sent"' in line and '"key_ids": [' in line and '"account_id": "111122223333"' in line
        for line in records
    )
    assert SECRET_VALUE not in logs
    assert "What you can do" not in logs and "get-secret-value" not in logs  # no body, not even a part of one
    assert '"EmailsSent"' in logs  # the metric


# --------------------------------------------------------------------------
# One function, one role: each refuses the other's event
# --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"run": RUN}, id="run-only"),
        pytest.param({"run": RUN, "report": SUMMARY, "replayInput": REPLAY}, id="the-run-reports-event"),
        pytest.param({"run": RUN, "account": "111122223333"}, id="account-not-an-object"),
        pytest.param({"account": ACCOUNT}, id="no-run"),
    ],
)
def test_notify_refuses_an_event_without_an_account_and_run(ledger: Ledger, event: dict[str, Any]) -> None:
    a_day_of_events(ledger)
    with pytest.raises(InvalidInput):
        notify_app.lambda_handler(event, LambdaContext())
    assert sent() == [] and emails(ledger) == {}


def test_the_event_documents_examples_hold() -> None:
    failures, tried = doctest.testmod(events)
    assert tried and not failures


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"run": RUN}, id="run-only"),
        pytest.param({"run": RUN, "account": ACCOUNT}, id="the-digests-event"),
        pytest.param({"run": RUN, "report": "2 of 3 accounts failed"}, id="report-not-an-object"),
        pytest.param({"report": SUMMARY, "replayInput": REPLAY}, id="no-run"),
    ],
)
def test_send_run_report_refuses_an_event_without_a_report_and_run(ledger: Ledger, event: dict[str, Any]) -> None:
    a_day_of_events(ledger)
    with pytest.raises(InvalidInput):
        report_app.lambda_handler(event, LambdaContext())
    assert sent() == [] and emails(ledger) == {}
