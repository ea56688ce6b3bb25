"""The IAM credential report: reading AWS's CSV, and fetching it the way AWS serves it (localaws.reports)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from keyrotation import credential_report
from keyrotation.errors import ReportNotReady, ReportUnreadable
from localaws import KeySeed, LocalAws, Organization

HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,"
    "mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
    "access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,"
    "access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
ROOT = (
    "<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,not_supported,2025-01-01T00:00:00+00:00,"
    "not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
)


def row(user: str, key1: str = "false,N/A,N/A,N/A,N/A", key2: str = "false,N/A,N/A,N/A,N/A") -> str:
    return (
        f"{user},arn:aws:iam::111122223333:user/{user},2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,"
        f"{key1},{key2},false,N/A,false,N/A"
    )


def test_the_root_row_is_left_out_and_each_key_read_from_its_columns() -> None:
    text = "\n".join(
        [
            HEADER,
            ROOT,
            row("alice", "true,2025-02-01T10:00:00+00:00,2025-05-01T08:00:00+00:00,eu-west-1,s3"),
            row("bob", "TRUE,2025-03-01T10:00:00+00:00,N/A,N/A,N/A", "FALSE,2024-12-01T10:00:00+00:00,N/A,N/A,N/A"),
            row("carol"),
        ]
    )
    users = {user.user_name: user for user in credential_report.parse(text)}
    assert set(users) == {"alice", "bob", "carol"}
    [alice_key] = users["alice"].keys
    assert (alice_key.active, alice_key.created, alice_key.last_used_region, alice_key.last_used_service) == (
        True,
        datetime(2025, 2, 1, 10, tzinfo=UTC),
        "eu-west-1",
        "s3",
    )
    assert [(key.slot, key.active) for key in users["bob"].keys] == [(2, False), (1, True)]  # oldest first
    assert users["bob"].keys[1].last_used is None
    assert users["carol"].keys == ()


def test_quoted_fields_and_windows_line_ends_are_read() -> None:
    text = "\r\n".join([HEADER, ROOT, '"dave",' + row("dave").split(",", 1)[1]]) + "\r\n"
    assert [user.user_name for user in credential_report.parse(text)] == ["dave"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user,arn\nalice,arn:aws:iam::111122223333:user/alice", "has no column access_key_1_active"),
        ("\n".join([HEADER, row("alice", "maybe,2025-02-01T10:00:00+00:00,N/A,N/A,N/A")]), "access_key_1_active"),
        ("\n".join([HEADER, row("alice", "true,yesterday,N/A,N/A,N/A")]), "not a date"),
        ("\n".join([HEADER, row("alice", "true,2025-02-01T10:00:00,N/A,N/A,N/A")]), "no time zone"),
    ],
)
def test_a_report_unlike_aws_documents_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ReportUnreadable, match=message):
        list(credential_report.parse(text))


# -- fetching it, from the in-memory AWS --------------------------------------------------------------------------


class Calls:
    def __init__(self, iam: object) -> None:
        self.iam, self.names = iam, []

    def __getattr__(self, name: str) -> object:
        method = getattr(self.iam, name)

        def call(**kwargs: object) -> object:
            self.names.append(name)
            return method(**kwargs)

        return call


def now() -> datetime:
    return datetime.now(UTC)


def no_wait(seconds: float) -> None:
    assert seconds <= max(credential_report.WAITS)


def test_a_new_report_costs_two_calls_when_it_is_ready_after_the_first_wait(aws: LocalAws, org: Organization) -> None:
    org.create_user(member(org), "alice", [KeySeed(10)])
    iam = Calls(org.client("iam", member(org)))
    slept: list[float] = []
    report = credential_report.fetch(iam, now, sleep=slept.append)
    assert iam.names == ["generate_credential_report", "get_credential_report"]
    assert slept == [credential_report.WAITS[0]]  # STARTED: a report takes a moment, asking at once would waste a call
    assert [user.user_name for user in report.users] == ["alice"]


def test_while_the_report_is_made_the_function_waits_a_little_then_leaves_it_to_the_state_machine(
    aws: LocalAws, org: Organization
) -> None:
    reports(aws).in_progress_polls = 2
    iam = org.client("iam", member(org))
    slept: list[float] = []
    credential_report.fetch(iam, now, sleep=slept.append)
    assert slept == list(credential_report.WAITS[:3])

    reports(aws).reports.clear()
    reports(aws).in_progress_polls = len(credential_report.WAITS)
    slept.clear()
    with pytest.raises(ReportNotReady, match="still being generated"):
        credential_report.fetch(iam, now, sleep=slept.append)
    assert slept == list(credential_report.WAITS)


def test_a_report_is_a_picture_of_its_moment_kept_for_four_hours(aws: LocalAws, org: Organization) -> None:
    org.create_user(member(org), "alice", [KeySeed(10)])
    iam = Calls(org.client("iam", member(org)))
    with time_machine.travel(datetime(2030, 1, 1, 6, tzinfo=UTC), tick=False) as traveller:
        first = credential_report.fetch(iam, now, sleep=no_wait)
        org.create_user(member(org), "bob", [KeySeed(0)])  # made since: not in the report
        traveller.shift(timedelta(hours=3, minutes=59))
        iam.names.clear()
        again = credential_report.fetch(iam, now, sleep=no_wait)
        assert iam.names == ["generate_credential_report", "get_credential_report"]  # COMPLETE: the same report
        assert again == first and [user.user_name for user in again.users] == ["alice"]
        traveller.shift(timedelta(minutes=2))  # now more than four hours old: expired, a new one is made
        with pytest.raises(Exception, match="ReportExpired"):
            iam.iam.get_credential_report()
        fresh = credential_report.fetch(iam, now, sleep=no_wait)
        assert [user.user_name for user in fresh.users] == ["alice", "bob"]
        assert fresh.generated == datetime(2030, 1, 1, 10, 1, tzinfo=UTC)


def test_localaws_writes_the_report_as_aws_does(aws: LocalAws, org: Organization) -> None:
    org.create_user(member(org), "alice", [KeySeed(30, used_days_ago=2, service="sts", region="us-east-1")])
    org.create_user(member(org), "bob", [KeySeed(120, status="Inactive"), KeySeed(5)])
    iam = org.client("iam", member(org))
    with pytest.raises(Exception, match="ReportNotPresent"):
        iam.get_credential_report()
    assert iam.generate_credential_report()["State"] == "STARTED"
    response = iam.get_credential_report()
    lines = response["Content"].decode().splitlines()
    assert lines[0] == HEADER and lines[1].startswith(f"<root_account>,arn:aws:iam::{member(org)}:root,")
    assert response["GeneratedTime"].microsecond == 0
    alice = next(line for line in lines if line.startswith("alice,")).split(",")
    assert alice[8:13][0] == "true" and alice[11:13] == ["us-east-1", "sts"] and alice[13:18] == ["false"] + ["N/A"] * 4
    bob = next(line for line in lines if line.startswith("bob,")).split(",")
    assert bob[8] == "false" and bob[9] != "N/A" and bob[10:13] == ["N/A"] * 3  # an Inactive key keeps its date


def reports(aws: LocalAws):  # type: ignore[no-untyped-def]
    return aws.awslike.reports


def member(org: Organization) -> str:
    """The member account the tests read reports in."""
    return next(iter(org.accounts.values()))
