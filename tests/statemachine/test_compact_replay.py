"""A run started with ``{"replayOf": "<runId>"}`` says so: in its output, its failure cause and its run report."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from localaws import REGION, LocalAws

pytestmark = pytest.mark.statemachine

EMAIL = {"SenderEmail": "key-rotation@example.com", "SecurityTeamEmail": "security@example.com"}


def report_texts() -> list[str]:
    """The plain-text part of every run report sent to the security team, in order."""
    texts = []
    for recorded in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        message = email.message_from_string(recorded.raw_data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        if str(message["To"]) == EMAIL["SecurityTeamEmail"] and body is not None:
            texts.append(str(body.get_content()))
    return texts


def test_a_compact_replay_names_the_run_it_replays_in_its_cause_and_its_report(aws: LocalAws) -> None:
    org = aws.organization(["alpha", "norole"], without_role=["norole"])
    aws.verify_sender(EMAIL["SenderEmail"])
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, **EMAIL})
    norole = org.account("norole")

    first = stack.run({})
    assert first.status == "FAILED", first.cause
    assert "replayOf" not in first.cause_json, "a run that replays nothing says nothing of it"
    assert "replay of run" not in report_texts()[-1]

    replay = stack.run({"replayOf": first.name})

    assert replay.status == "FAILED" and replay.error == "KeyRotation.AccountsFailed"
    cause = replay.cause_json
    assert cause["replayOf"] == first.name
    assert [failure["accountId"] for failure in cause["failedAccounts"]] == [norole]
    text = report_texts()[-1]
    assert f"This run is a replay of run {first.name}" in text, text
