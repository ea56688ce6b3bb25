"""A notice lost to an SES outage is sent by a later run, until it is delivered, and then never again.

With WarningDays 0 the rotation's email is the only warning before the old key is disabled: if SES
lost it and nothing sent it again, the owner heard first of the new key when the old one stopped
working. Here SES refuses every email to the owner (503, the state machine's retries included) on the
runs of the outage, and takes them after it. The security team's report lists the owners who could not
be told before their key was disabled.
"""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
import time_machine
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from localaws import REGION, KeySeed, LocalAws, Stack
from tests.statemachine.invariants import Watch, ledger_items

pytestmark = pytest.mark.statemachine

START = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
OWNER = "alice@example.com"
SECURITY = "security@example.com"
EMAIL = {"SenderEmail": "key-rotation@example.com", "SecurityTeamEmail": SECURITY}


def to(address: str) -> Callable[[dict[str, Any]], bool]:
    """A fault's ``when``: the message is addressed to ``address``."""
    header = f"To: {address}\r\n".encode()
    return lambda params: header in params["RawMessage"]["Data"]


def outage(aws: LocalAws, address: str) -> None:
    """SES is unavailable for every message to ``address`` until the faults are cleared."""
    aws.faults.add("ses", "SendRawEmail", "ServiceUnavailable", times=10_000, when=to(address), status=503)


def texts_to(address: str) -> list[str]:
    """The plain-text part of every message SES took for ``address``, in order."""
    found = []
    for recorded in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        message = email.message_from_string(recorded.raw_data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        if str(message["To"]) == address and body is not None:
            found.append(str(body.get_content()).replace("\r\n", "\n"))
    return found


def digest_statuses(stack: Stack, run_id: str, address: str) -> list[str]:
    return [
        item["status"]
        for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{run_id}")
        if item.get("kind") == "email" and item.get("recipient") == address
    ]


@pytest.fixture
def alice(aws: LocalAws) -> dict[str, Any]:
    """alice's only key is due for rotation; WarningDays 0: no disable-soon warning, the rotation email is all."""
    with time_machine.travel(START - timedelta(hours=1), tick=True):
        org = aws.organization(["alpha"])
        aws.verify_sender(EMAIL["SenderEmail"])
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, "WarningDays": "0", **EMAIL})
        alpha = org.account("alpha")
        (old,) = org.create_user(alpha, "alice", [KeySeed(80, used_days_ago=1)], tags={"email": OWNER})
        watch = Watch(stack, [alpha])
        watch.start()
    return {"aws": aws, "stack": stack, "watch": watch, "alpha": alpha, "old": old}


def run_on(alice: dict[str, Any], day: int) -> str:
    stack, watch = alice["stack"], alice["watch"]
    with time_machine.travel(START + timedelta(days=day), tick=True):
        execution = stack.run({})
        assert execution.status == "SUCCEEDED", (day, execution.cause)
        watch.check(execution.name, when=f"on day {day}")
    return execution.name


def key_status(alice: dict[str, Any], key_id: str) -> str | None:
    key = alice["watch"].last.users[(alice["alpha"], "alice")].keys.get(key_id)
    return None if key is None else key.status


def test_a_rotation_email_lost_to_an_outage_is_sent_by_the_next_run_and_only_once(alice: dict[str, Any]) -> None:
    aws, stack, old = alice["aws"], alice["stack"], alice["old"]
    outage(aws, OWNER)
    lost = run_on(alice, 0)
    assert digest_statuses(stack, lost, OWNER) == ["failed"]
    assert texts_to(OWNER) == []

    aws.faults.clear()
    again = run_on(alice, 1)

    assert digest_statuses(stack, again, OWNER) == ["sent"], "the next run sends what the outage lost"
    (text,) = texts_to(OWNER)
    assert old in text and "aws secretsmanager get-secret-value" in text, (
        "it tells of the rotation, and how to read the key"
    )
    assert lost in text, "it says which run's email it carries"
    assert key_status(alice, old) == "Active", "told days before the old key is disabled"

    later = run_on(alice, 2)
    assert digest_statuses(stack, later, OWNER) == [] and len(texts_to(OWNER)) == 1, "once delivered, never again"


def test_owners_not_told_before_their_key_was_disabled_are_in_the_run_report(alice: dict[str, Any]) -> None:
    aws, stack, old = alice["aws"], alice["stack"], alice["old"]
    outage(aws, OWNER)
    first = run_on(alice, 0)
    disabling = run_on(alice, 15)  # the outage lasts: the old key is disabled, its owner never told
    assert key_status(alice, old) == "Inactive"
    assert digest_statuses(stack, disabling, OWNER) == ["failed"]

    report = texts_to(SECURITY)[-1]
    assert "OWNERS NOT TOLD BEFORE THEIR KEY WAS DISABLED (1)" in report, report
    section = report.split("OWNERS NOT TOLD BEFORE THEIR KEY WAS DISABLED", 1)[1]
    assert "alice" in section and old in section and OWNER in section and first in section

    aws.faults.clear()
    after = run_on(alice, 16)
    assert digest_statuses(stack, after, OWNER) == ["sent"]
    (text,) = texts_to(OWNER)
    assert old in text and "aws secretsmanager get-secret-value" in text, "the rotation, from the first run"
    assert "disabled" in text.lower(), "and the disable, from the second"
    assert "OWNERS NOT TOLD" not in texts_to(SECURITY)[-1], "a report lists the disables of its own run"
