"""The run's files (keyrotation.reports): every action and blocked user, as JSON and CSV, safe in a spreadsheet."""

from __future__ import annotations

import csv
import doctest
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from keyrotation import key_inventory, reports
from keyrotation.errors import InventoryUnreadable
from keyrotation.ledger_records import run_records
from keyrotation.model import AccessKey, KeyStatus

ACCOUNT = "111122223333"


def items() -> list[dict[str, object]]:
    return [
        {
            "kind": "action",
            "accountId": ACCOUNT,
            "type": "rotate",
            "userName": "=1+2",
            "keyId": "AKIAA",
            "status": "done",
            "reason": "old",
            "accountName": "prod",
        },
        {
            "kind": "action",
            "accountId": ACCOUNT,
            "type": "disable",
            "userName": "bob",
            "keyId": "AKIAB",
            "status": "failed",
            "reason": "retired",
            "error": "KeyRotation.Throttled",
            "cause": "slow",
        },
        {
            "kind": "notice",
            "accountId": ACCOUNT,
            "type": "blocked",
            "userName": "@carol",
            "keyId": "-",
            "detail": "a key of unknown origin",
        },
        {
            "kind": "notice",
            "accountId": ACCOUNT,
            "type": "blocked",
            "userName": "dave",
            "keyId": "AKIAD",
            "detail": "the second slot",
            "due": "2026-02-01T00:00:00Z",
        },
        {"kind": "notice", "accountId": ACCOUNT, "type": "exempt", "userName": "erin", "detail": "exempt"},
        {"kind": "email", "accountId": ACCOUNT, "recipient": "x@example.com", "status": "sent"},
    ]


def test_every_action_and_every_blocked_user_is_a_row_and_nothing_else() -> None:
    rows = reports.action_rows(run_records(items()), {ACCOUNT: "fallback"})
    assert [(row["userName"], row["action"], row["result"]) for row in rows] == [
        ("=1+2", "rotate", "done"),
        ("@carol", "blocked", "blocked"),
        ("bob", "disable", "failed"),
        ("dave", "blocked", "blocked until 2026-02-01"),
    ]
    # The name the audit recorded wins; the account list names the others.
    assert [row["accountName"] for row in rows] == ["prod", "fallback", "fallback", "fallback"]
    assert rows[2]["error"] == "KeyRotation.Throttled" and "cause" not in rows[2]
    assert rows[1]["keyId"] == ""


def test_a_hostile_name_is_never_a_formula_and_the_csv_reads_back() -> None:
    rows = reports.action_rows(run_records(items()), {})
    text = reports.csv_text(rows, reports.ACTION_COLUMNS)
    read = list(csv.DictReader(io.StringIO(text)))
    assert [row["userName"] for row in read] == ["'=1+2", "'@carol", "bob", "dave"]
    for row in read:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value
    # The JSON keeps the names as they are: a program reads them, not a spreadsheet.
    assert json.loads(reports.json_text(rows))[0]["userName"] == "=1+2"


def test_the_module_examples_hold() -> None:
    failures, tried = doctest.testmod(reports)
    assert tried and not failures


def test_the_inventory_module_examples_hold() -> None:
    from keyrotation import adoption

    for module in (key_inventory, adoption):
        failures, tried = doctest.testmod(module)
        assert tried and not failures, module.__name__


def test_cis_checks_of_a_key() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)

    def key(age: int, used: int | None = None, active: bool = True) -> AccessKey:
        status = KeyStatus.ACTIVE if active else KeyStatus.INACTIVE
        last = now - timedelta(days=used) if used is not None else None
        return AccessKey("AKIA", status, now - timedelta(days=age), last_used=last)

    unused = key(60, used=46)
    never = key(46)
    assert key_inventory.checks(unused, (unused,), now)["cis112"] == "FAIL"
    assert key_inventory.checks(never, (never,), now)["cis112"] == "FAIL"  # never used: counted from its creation
    assert key_inventory.checks(key(44), (key(44),), now)["cis112"] == "PASS"
    off = key(400, active=False)
    assert set(key_inventory.checks(off, (off, key(1)), now).values()) == {"PASS"}  # Inactive: nothing to fix
    assert key_inventory.checks(key(91), (key(91),), now)["cis114"] == "FAIL"
    assert key_inventory.checks(key(90), (key(90),), now)["iam3"] == "PASS"


class FakeBucket:
    """An S3 client's get_object over a dict: a missing key is NoSuchKey, as S3 says with s3:ListBucket."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str, ExpectedBucketOwner: str) -> dict[str, object]:  # noqa: N803
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "none"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}


def test_fragments_are_read_in_order_and_an_account_without_one_is_left_out() -> None:
    keys = [reports.fragment_key("run-1", f"11112222333{n}") for n in range(5)]
    objects = {key: reports.fragment(key[-17:-5], "", [{"n": n}], {"keys": 1}).encode() for n, key in enumerate(keys)}
    del objects[keys[2]]
    found = list(reports.read_fragments(FakeBucket(objects), "b", ACCOUNT, keys, workers=3))
    assert [document["rows"] for document in found] == [[{"n": 0}], [{"n": 1}], [{"n": 3}], [{"n": 4}]]


def test_a_file_that_is_not_a_fragment_stops_the_summary() -> None:
    key = reports.fragment_key("run-1", ACCOUNT)
    for body in (b"not json", b"[]", b'{"rows": "x"}'):
        with pytest.raises(InventoryUnreadable):
            list(reports.read_fragments(FakeBucket({key: body}), "b", ACCOUNT, [key]))


def test_adoption_counts_only_uses_after_the_delivery_and_hints_follow_the_last_use() -> None:
    from keyrotation.adoption import adoption, hint
    from keyrotation.model import Delivery

    now = datetime(2026, 6, 10, tzinfo=UTC)
    delivered = now - timedelta(days=5)
    old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, now - timedelta(days=80), last_used=now - timedelta(days=1))
    new = AccessKey("AKIANEW", KeyStatus.ACTIVE, delivered, last_used=now - timedelta(hours=2))
    record = Delivery(delivered_key_id="AKIANEW", delivered_at=delivered)
    assert (adoption(new, (old, new), record), adoption(old, (old, new), record)) == ("in use", "still used")
    assert adoption(old, (old, new), Delivery()) == ""  # not rotated by the product
    assert adoption(old, (old,), record) == ""  # the delivered key is gone
    assert hint(AccessKey("AKIA", KeyStatus.INACTIVE, now - timedelta(days=400)), now) == ""
    stale = AccessKey("AKIA", KeyStatus.ACTIVE, now - timedelta(days=90), last_used=now - timedelta(days=45))
    assert hint(stale, now) == "not used in 45 days (CIS 1.12): delete the key"
    assert hint(AccessKey("AKIA", KeyStatus.ACTIVE, now - timedelta(days=3)), now) == ""


def test_the_delivered_key_gets_no_hint_from_the_product_s_own_verification() -> None:
    """Its only recorded use, until someone uses it, is the verification call from inside AWS (sts, a region):
    no workload's, so no "use a role" hint. Once used after the delivery, its last use speaks for itself."""
    from keyrotation.adoption import key_hints, uptake
    from keyrotation.model import Delivery

    now = datetime(2026, 6, 10, tzinfo=UTC)
    delivered = now - timedelta(days=5)
    verified = delivered - timedelta(seconds=20)
    old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, now - timedelta(days=80), now - timedelta(days=1), "s3", "eu-west-1")
    new = AccessKey("AKIANEW", KeyStatus.ACTIVE, verified, verified, "sts", "eu-west-1")
    record = Delivery(delivered_key_id="AKIANEW", delivered_at=delivered)
    assert [key_id for key_id, _ in key_hints((old, new), record, now)] == ["AKIAOLD"]
    used = AccessKey("AKIANEW", KeyStatus.ACTIVE, verified, now - timedelta(hours=1), "ec2", "eu-west-1")
    assert [key_id for key_id, _ in key_hints((old, used), record, now)] == ["AKIAOLD", "AKIANEW"]
    assert [key_id for key_id, _ in key_hints((old, new), Delivery(), now)] == ["AKIAOLD", "AKIANEW"]
    taken = uptake((old, used), record)
    assert taken is not None and taken["deliveredAt"] == delivered.isoformat()
    assert [(key["keyId"], key["adoption"]) for key in taken["keys"]] == [
        ("AKIAOLD", "still used"),
        ("AKIANEW", "in use"),
    ]
    assert uptake((old, new), Delivery()) is None  # a user the product never rotated


def test_the_inventory_row_of_a_delivered_key_not_yet_in_use_has_no_hint() -> None:
    from localaws.defaults import default_lifecycle
    from keyrotation.model import Delivery, UserSnapshot

    now = datetime(2026, 6, 10, tzinfo=UTC)
    delivered = now - timedelta(days=5)
    verified = delivered - timedelta(seconds=20)
    old = AccessKey("AKIAOLD", KeyStatus.ACTIVE, now - timedelta(days=80), now - timedelta(days=6), "s3", "eu-west-1")
    new = AccessKey("AKIANEW", KeyStatus.ACTIVE, verified, verified, "sts", "eu-west-1")
    user = UserSnapshot("app", "arn:aws:iam::111122223333:user/app", (old, new), user_id="AIDAAPP")
    view = key_inventory.UserView(user, True, Delivery(delivered_key_id="AKIANEW", delivered_at=delivered))
    rows = key_inventory.user_rows(view, "111122223333", "prod", now, default_lifecycle(), {}, False)
    by_key = {row["keyId"]: row for row in rows}
    assert (by_key["AKIANEW"]["adoption"], by_key["AKIANEW"]["hint"]) == ("not yet", "")
    assert "IAM role" in by_key["AKIAOLD"]["hint"]
