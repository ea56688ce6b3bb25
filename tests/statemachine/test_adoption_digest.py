"""The owner's warning says whether the rotated user took up its new key (issue 11, items 3 and 4).

Daily runs of the real state machine through a rotation. After the day-0 rotation, one user's program
keeps signing with the OLD key, the other's switched to the new key (each a call signed with that key,
which IAM records as the key's last use). The warning digest read back from SES, a few days before the
old keys' disable date, tells the first owner prominently, at the top, that the old key is still in use,
with the ``keyrotation credentials`` setup for the user's secret; the second owner reads that the new
key is in use, and no such warning. Both get the hint the last use gives (a call from inside AWS: a
role could serve it). No run makes an extra AWS call for it: the audit already had the keys' last use.
"""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import boto3
import pytest
import time_machine
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.ses.models import ses_backends

from keyrotation.naming import secret_name
from localaws import REGION, KeySeed, LocalAws
from tests.statemachine.invariants import ledger_items

pytestmark = pytest.mark.statemachine

START = datetime(2026, 4, 6, 6, 0, tzinfo=UTC)
STICKY, SWITCHED = "sticky@example.com", "switched@example.com"
EMAIL = {"SenderEmail": "key-rotation@example.com", "SecurityTeamEmail": "security@example.com"}
WARNING_DAY = 8  # the old keys are disabled 15 days after the rotation; the warning comes 7 days before


def sign_with(account_id: str, key_id: str) -> None:
    """A program's call signed with the key (IAM records it as the key's last use: sts, in REGION)."""
    secret = str(iam_backends[account_id]["aws"].access_keys[key_id].secret_access_key)
    sts = boto3.client("sts", region_name=REGION, aws_access_key_id=key_id, aws_secret_access_key=secret)
    assert str(sts.get_caller_identity()["Account"]) == account_id


def parts_to(address: str) -> list[tuple[str, str]]:
    """(plain text, HTML) of every message SES took for ``address``, in order."""
    found = []
    for recorded in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        message = email.message_from_string(recorded.raw_data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        text, html = message.get_body(("plain",)), message.get_body(("html",))
        if str(message["To"]) == address and text is not None and html is not None:
            found.append((str(text.get_content()).replace("\r\n", "\n"), str(html.get_content())))
    return found


@pytest.fixture
def rotated(aws: LocalAws) -> dict[str, Any]:
    """Day 0: both users' 80-day-old keys are rotated, each owner told."""
    with time_machine.travel(START - timedelta(hours=1), tick=True):
        org = aws.organization(["alpha"])
        aws.verify_sender(EMAIL["SenderEmail"])
        stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, **EMAIL})
        alpha = org.account("alpha")
        seed = KeySeed(80, used_days_ago=1)
        (sticky_old,) = org.create_user(alpha, "sticky", [seed], tags={"email": STICKY})
        (switched_old,) = org.create_user(alpha, "switched", [seed], tags={"email": SWITCHED})
    with time_machine.travel(START, tick=True):
        execution = stack.run({})
        assert execution.status == "SUCCEEDED", execution.cause
    iam = org.client("iam", alpha)

    def new_key(user: str, old: str) -> str:
        (key,) = {k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]} - {old}
        return str(key)

    return {
        "stack": stack,
        "alpha": alpha,
        "sticky": (sticky_old, new_key("sticky", sticky_old)),
        "switched": (switched_old, new_key("switched", switched_old)),
    }


def test_the_warning_says_prominently_that_the_old_key_is_still_in_use_and_how_to_stop_it(
    rotated: dict[str, Any], aws: LocalAws
) -> None:
    stack, alpha = rotated["stack"], rotated["alpha"]
    sticky_old, sticky_new = rotated["sticky"]
    switched_old, switched_new = rotated["switched"]
    told = (len(parts_to(STICKY)), len(parts_to(SWITCHED)))
    assert told == (1, 1), "the rotation's email went to each owner"
    for day in range(1, WARNING_DAY + 1):
        with time_machine.travel(START + timedelta(days=day), tick=True):
            if day == 2:  # after the delivery: one program still signs with the old key, the other switched
                sign_with(alpha, sticky_old)
                sign_with(alpha, switched_new)
            with aws.calls.record() as calls:
                execution = stack.run({})
            assert execution.status == "SUCCEEDED", (day, execution.cause)
        warned = [
            item
            for item in ledger_items(stack.outputs["LedgerTableName"], f"RUN#{execution.name}")
            if item.get("kind") == "notice" and item.get("type") == "disable-soon"
        ]
        if day < WARNING_DAY:
            assert not warned, f"warned on day {day}"
    assert {item["keyId"] for item in warned} == {sticky_old, switched_old}
    # The adoption came from what the audit read anyway: no GetAccessKeyLastUsed for the keys the report shows.
    assert ("iam", "GetAccessKeyLastUsed") not in calls, calls

    (_, (text, html)) = parts_to(STICKY)
    section = text.split("OLD KEYS TO BE DISABLED SOON: ACTION NEEDED")[1]
    line = f"credential_process = keyrotation credentials --secret-id {secret_name(alpha, 'sticky')}"
    assert text.index("OLD KEYS STILL IN USE") < text.index("OLD KEYS TO BE DISABLED SOON"), "told before anything"
    assert section.lstrip().startswith(f"* !! STILL IN USE: key {sticky_old} of user sticky"), section[:300]
    assert line in section and "credentials --seed --secret-id" in section
    assert f"Old key:      {sticky_old} STILL USED after the new key was delivered" in section
    assert f"New key:      {sticky_new} not in use yet" in section, "the product's own verification is no use"
    assert "last used with sts in" in text and "IAM Roles Anywhere" in text, "the hint rides along"
    assert "Still in use: key" in html and line in html and html.index("Still in use") < html.index("Last used")

    (_, (text, html)) = parts_to(SWITCHED)
    assert f"New key:      {switched_new} in use, last used" in text
    assert f"Old key:      {switched_old} not used since the new key was delivered" in text
    assert "STILL" not in text and "credential_process" not in text
    assert "Still in use" not in html and "credential_process" not in html and "<strong>in use</strong>" in html
