"""The key events: which ledger items become which events, and PutEvents batched, checked and retried, in moto.

moto's EventBridge takes every valid entry; where a test needs EventBridge to refuse some entries
(``FailedEntryCount``), moto's backend is wrapped to answer for those entries as AWS does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.events.models import EventsBackend

from keyrotation.errors import EventsNotPublished, Throttled
from keyrotation.events import Account, Run
from keyrotation.key_events import DETAIL_TYPES, MAX_ENTRIES_PER_CALL, SOURCE, KeyEvent, Publisher, key_events
from keyrotation.ledger_records import run_records

REGION = "us-east-1"
BUS = f"arn:aws:events:{REGION}:{DEFAULT_ACCOUNT_ID}:event-bus/default"
ACCOUNT = Account("111122223333", "prod", "aws@example.com")
RUN = Run("run-1", False)


def item(kind: str, type_: str, user: str, key_id: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "type": type_, "userName": user, "keyId": key_id, **fields}


ITEMS = run_records([
    item(
        "action",
        "rotate",
        "alice",
        "AKIAOLD",
        status="done",
        reason="Due.",
        newKeyId="AKIANEW",
        secretName="Account_111122223333_User_alice_AccessKey",
        secretArn="arn:aws:secretsmanager:us-east-1:111122223333:secret:Account_111122223333_User_alice_AccessKey-Ab12Cd",
        disableOn="2026-01-30T06:00:00Z",
        deleteOn="2026-02-09T06:00:00Z",
    ),
    item("action", "disable", "bob", "AKIABOB", status="done", reason="Replaced."),
    item("action", "delete", "carol", "AKIACAROL", status="done", reason="Inactive."),
    item("action", "rotate", "dave", "AKIADAVE", status="failed", reason="Due."),  # not done: no event
    item("action", "disable", "erin", "AKIAERIN", status="planned", reason="Due."),  # not done: no event
    item("notice", "blocked", "frank", "AKIAFRANK", detail="Two keys.", due="2026-01-20T06:00:00Z"),
    item("notice", "disable-soon", "gina", "AKIAGINA", detail="Soon.", due="2026-01-20T06:00:00Z"),
    item("notice", "exemption-expiring", "hank", None, detail="Ends.", due="2026-01-20T23:59:59Z"),
    item("notice", "exempt", "ivan", None, detail="In the group."),  # the security team's, not an event
    item("notice", "deferred", "judy", "AKIAJUDY", detail="Later."),
    {"kind": "email", "recipient": "alice@example.com", "status": "sent"},
])


def test_each_done_action_blocked_user_and_warning_is_one_event() -> None:
    found = {(event.detail_type, event.detail["userName"]) for event in key_events(ITEMS, ACCOUNT, RUN)}
    assert found == {
        (DETAIL_TYPES["rotated"], "alice"),
        (DETAIL_TYPES["disabled"], "bob"),
        (DETAIL_TYPES["deleted"], "carol"),
        (DETAIL_TYPES["blocked"], "frank"),
        (DETAIL_TYPES["warning"], "gina"),
        (DETAIL_TYPES["warning"], "hank"),
    }
    by_user = {event.detail["userName"]: event.detail for event in key_events(ITEMS, ACCOUNT, RUN)}
    assert by_user["alice"]["newKeyId"] == "AKIANEW" and by_user["alice"]["oldKeyDisableOn"] == "2026-01-30T06:00:00Z"
    assert by_user["frank"]["retryOn"] == "2026-01-20T06:00:00Z"
    assert (by_user["gina"]["warning"], by_user["gina"]["disableOn"]) == ("disable-soon", "2026-01-20T06:00:00Z")
    assert (by_user["hank"]["warning"], by_user["hank"]["exemptUntil"]) == ("exemption-expiring", "2026-01-20T23:59:59Z")
    assert key_events(ITEMS, ACCOUNT, Run("run-1", True)) == []  # a dry run publishes nothing


def test_the_event_id_is_stable_and_differs_between_runs_and_actions() -> None:
    first, again = key_events(ITEMS, ACCOUNT, RUN), key_events(list(reversed(ITEMS)), ACCOUNT, RUN)
    assert [event.detail["eventId"] for event in first] == [event.detail["eventId"] for event in again]
    assert len({event.detail["eventId"] for event in first}) == len(first)
    other_run = {event.detail["eventId"] for event in key_events(ITEMS, ACCOUNT, Run("run-2", False))}
    assert not other_run & {event.detail["eventId"] for event in first}


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs, events = boto3.client("sqs"), boto3.client("events")
        url = sqs.create_queue(QueueName="pickup")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="pickup", EventPattern=json.dumps({"source": [SOURCE]}), State="ENABLED")
        events.put_targets(Rule="pickup", Targets=[{"Id": "queue", "Arn": arn}])
        yield url


def delivered(url: str) -> list[dict[str, Any]]:
    sqs, found = boto3.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(message["Body"]) for message in messages]
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def many(count: int) -> list[KeyEvent]:
    items = [item("action", "delete", f"user{n:03d}", f"AKIA{n:016d}", status="done", reason="x" * 5000) for n in range(count)]
    return key_events(run_records(items), ACCOUNT, RUN)


def refusing(monkeypatch: pytest.MonkeyPatch, code: str, times: int) -> list[int]:
    """EventBridge refuses the first entry of the next ``times`` PutEvents calls with ``code``; returns the calls' sizes."""
    original, sizes = EventsBackend.put_events, []

    def put_events(backend: EventsBackend, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sizes.append(len(entries))
        if len(sizes) > times:
            return original(backend, entries)
        return [{"ErrorCode": code, "ErrorMessage": "refused"}, *original(backend, entries[1:])]

    monkeypatch.setattr(EventsBackend, "put_events", put_events)
    return sizes


def test_events_go_in_calls_of_at_most_ten_and_each_reaches_the_rule(queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = refusing(monkeypatch, "none", times=0)
    events = many(23)
    assert Publisher(boto3.client("events"), BUS, pause_seconds=0).publish(events) == 23
    assert sizes == [MAX_ENTRIES_PER_CALL, MAX_ENTRIES_PER_CALL, 3]
    received = delivered(queue)
    assert sorted(event["detail"]["eventId"] for event in received) == sorted(e.detail["eventId"] for e in events)
    assert all(len(event["detail"]["reason"]) <= 2000 for event in received)  # a long reason is cut: events stay small


def test_an_entry_eventbridge_did_not_take_is_sent_again(queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = refusing(monkeypatch, "ThrottlingException", times=1)
    events = many(3)
    Publisher(boto3.client("events"), BUS, pause_seconds=0).publish(events)
    assert sizes == [3, 1]  # the refused entry alone, again
    assert len(delivered(queue)) == 3


def test_entries_still_throttled_raise_throttled_for_the_state_machine_retry(
    queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = refusing(monkeypatch, "ThrottlingException", times=99)
    with pytest.raises(Throttled, match="1 key events not published"):
        Publisher(boto3.client("events"), BUS, pause_seconds=0).publish(many(2))
    assert sizes == [2, 1, 1]  # three attempts in the invocation


def test_entries_refused_for_good_raise_events_not_published(queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = refusing(monkeypatch, "AccessDeniedException", times=99)
    with pytest.raises(EventsNotPublished, match="AccessDeniedException"):
        Publisher(boto3.client("events"), BUS, pause_seconds=0).publish(many(2))
    assert sizes == [2]  # not retried: a retry would not cure it


def test_notify_may_put_events_on_its_own_account_default_bus_only() -> None:
    """Least privilege, read from template.yaml in another partition: the default bus of the stack's account."""
    from localaws import cfn
    from localaws.defaults import TEMPLATE
    from tests.iam_evaluator import Request, decide

    template = cfn.load(TEMPLATE)
    pseudo = {"AWS::Partition": "aws-us-gov", "AWS::Region": "us-gov-west-1", "AWS::AccountId": "111122223333"}
    ledger = ("LedgerTable", "Arn")
    resolver = cfn.Resolver(
        parameters={},
        pseudo=pseudo,
        attributes={ledger: "arn:aws-us-gov:dynamodb:us-gov-west-1:111122223333:table/ledger"},
        conditions={"HasSenderEmail": False, "HasTemplateBucket": False},
    )
    notify = template["Resources"]["NotifyFunction"]["Properties"]
    policies = [resolver.resolve(policy) for policy in notify["Policies"]]
    identity = [policy for policy in policies if isinstance(policy, dict) and policy.get("Statement")]
    role = "arn:aws-us-gov:iam::111122223333:role/key-rotation/notify"
    default_bus = "arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/default"
    assert resolver.resolve(notify["Environment"]["Variables"]["EVENT_BUS_ARN"]) == default_bus

    def allowed(resource: str, action: str = "events:PutEvents") -> bool:
        return decide(Request(role, action, resource), identity=identity).allowed

    assert allowed(default_bus)
    assert not allowed("arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/other")
    assert not allowed("arn:aws-us-gov:events:us-gov-west-1:444455556666:event-bus/default")
    assert not allowed("arn:aws-us-gov:events:us-gov-east-1:111122223333:event-bus/default")
    assert not allowed(default_bus, "events:PutRule")
