"""Every key action reaches the default event bus of the stack's account, for teams' own automation (issue 11).

A rule on the default bus (source ``iam-key-rotation``) sends to an SQS queue, as a team's pickup would
subscribe; moto delivers PutEvents to a rule's SQS target. A real run rotates one user's key, disables
another's, deletes a third's, warns a fourth and is blocked on a fifth: the queue receives one event of
each, whose details agree with IAM, the ledger and the user's secret, and hold no secret (the leak check
of this folder reads every SQS message). A dry run publishes nothing; a retried Notify publishes the same
events again with the same ``eventId``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from keyrotation import naming
from keyrotation.key_events import DETAIL_TYPES, SOURCE
from localaws import KeySeed, LocalAws
from tests.leaks import LeakCheck
from tests.statemachine.invariants import delivered_key_id, ledger_items

pytestmark = pytest.mark.statemachine


def _subscribe(aws: LocalAws) -> str:
    """A queue that a rule on the default bus fills with this product's events, as a team would set it up."""
    sqs, events = aws.client("sqs"), aws.client("events")
    queue_url = sqs.create_queue(QueueName="key-rotation-pickup")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="key-rotation-pickup", EventPattern=json.dumps({"source": [SOURCE]}), State="ENABLED")
    events.put_targets(Rule="key-rotation-pickup", Targets=[{"Id": "pickup", "Arn": queue_arn}])
    return str(queue_url)


def _received(aws: LocalAws, queue_url: str) -> list[dict[str, Any]]:
    """Every event in the queue (received, never deleted: the leak check reads them too)."""
    sqs, found = aws.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
        fresh = [json.loads(message["Body"]) for message in messages]
        fresh = [event for event in fresh if event["id"] not in {seen["id"] for seen in found}]
        if not fresh:
            return found
        found += fresh


def test_a_real_run_publishes_every_key_action_and_no_secret(aws: LocalAws, leak_check: LeakCheck) -> None:
    org = aws.organization(["alpha"])
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})
    alpha = org.account("alpha")
    (alice_old,) = org.create_user(alpha, "alice", [KeySeed(80, used_days_ago=1)])  # rotated
    bob_old, _ = org.create_user(alpha, "bob", [KeySeed(95, used_days_ago=3), KeySeed(20, used_days_ago=1)])  # disabled
    carol_old, _ = org.create_user(alpha, "carol", [KeySeed(110, status="Inactive"), KeySeed(30)])  # deleted
    erin_old, _ = org.create_user(alpha, "erin", [KeySeed(85, used_days_ago=1), KeySeed(10)])  # disabled in 5 days
    frank_key, _ = org.create_user(alpha, "frank", [KeySeed(80), KeySeed(50, status="Inactive")])  # blocked
    queue_url = _subscribe(aws)

    execution = stack.run({})
    assert execution.status == "SUCCEEDED", execution.cause
    received = _received(aws, queue_url)

    assert {event["source"] for event in received} == {SOURCE}
    # (The rule is on the default bus of the deployment account: receiving them proves the bus.)
    by_type = {(event["detail-type"], event["detail"]["userName"]): event for event in received}
    assert sorted(by_type) == sorted(
        [
            (DETAIL_TYPES["rotated"], "alice"),
            (DETAIL_TYPES["disabled"], "bob"),
            (DETAIL_TYPES["deleted"], "carol"),
            (DETAIL_TYPES["warning"], "erin"),
            (DETAIL_TYPES["blocked"], "frank"),
        ]
    ), sorted(by_type)
    run_id = execution.name
    for event in received:
        detail = event["detail"]
        assert detail["runId"] == run_id and detail["account"] == {"id": alpha, "name": "alpha"}
        assert len(detail["eventId"]) == 32
    assert len({event["detail"]["eventId"] for event in received}) == len(received)

    # What each says is what IAM, the user's secret and the ledger say.
    rotated = by_type[(DETAIL_TYPES["rotated"], "alice")]["detail"]
    keys = org.client("iam", alpha).list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert rotated["keyId"] == alice_old and rotated["newKeyId"] == delivered_key_id(alpha, "alice")
    assert {key["AccessKeyId"] for key in keys} == {alice_old, rotated["newKeyId"]}
    assert rotated["secretName"] == naming.secret_name(alpha, "alice")
    secret = org.client("secretsmanager", alpha).describe_secret(SecretId=rotated["secretName"])
    assert rotated["secretArn"] == secret["ARN"]
    assert by_type[(DETAIL_TYPES["rotated"], "alice")]["resources"] == [secret["ARN"]]
    items = {
        (item["type"], item["userName"]): item
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{run_id}")
        if item.get("kind") in ("action", "notice")
    }
    action = items[("rotate", "alice")]
    assert (rotated["oldKeyDisableOn"], rotated["oldKeyDeleteOn"]) == (action["disableOn"], action["deleteOn"])
    assert by_type[(DETAIL_TYPES["disabled"], "bob")]["detail"]["keyId"] == bob_old
    assert org.client("iam", alpha).list_access_keys(UserName="bob")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assert by_type[(DETAIL_TYPES["deleted"], "carol")]["detail"]["keyId"] == carol_old
    carol_keys = org.client("iam", alpha).list_access_keys(UserName="carol")["AccessKeyMetadata"]
    assert carol_old not in {key["AccessKeyId"] for key in carol_keys}
    warning = by_type[(DETAIL_TYPES["warning"], "erin")]["detail"]
    assert (warning["warning"], warning["keyId"]) == ("disable-soon", erin_old)
    assert warning["disableOn"] == items[("disable-soon", "erin")]["due"]
    blocked = by_type[(DETAIL_TYPES["blocked"], "frank")]["detail"]
    assert blocked["keyId"] == frank_key and blocked["retryOn"] == items[("blocked", "frank")]["due"]

    # No event holds a secret: not the rotated key's, nor any other the test's IAM made.
    assert leak_check.find_in("the key events", json.dumps(received)) == []

    # Notify retried (a transient error after the emails): the same events again, under the same ids.
    account = {"id": alpha, "name": "alpha", "email": f"{alpha}@example.com"}
    stack.invoke("NotifyFunction", {"account": account, "run": {"runId": run_id, "dryRun": False}})
    again = _received(aws, queue_url)
    ids = Counter(event["detail"]["eventId"] for event in again)
    assert set(ids) == {event["detail"]["eventId"] for event in received} and set(ids.values()) == {2}


def test_a_dry_run_publishes_nothing(aws: LocalAws) -> None:
    org = aws.organization(["alpha"])
    stack = aws.deploy({"DryRun": "true", "ExcludeAccounts": org.management_account})
    alpha = org.account("alpha")
    org.create_user(alpha, "alice", [KeySeed(80, used_days_ago=1)])
    org.create_user(alpha, "bob", [KeySeed(95, used_days_ago=3), KeySeed(20, used_days_ago=1)])
    queue_url = _subscribe(aws)

    execution = stack.run({})

    assert execution.status == "SUCCEEDED", execution.cause
    planned = [
        item
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{execution.name}")
        if item.get("kind") == "action"
    ]
    assert len(planned) == 2  # it would rotate and disable: a dry run changes nothing, and says so to no bus
    assert _received(aws, queue_url) == []
