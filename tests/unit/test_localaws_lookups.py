"""moto's two lookups that grow with the organization answer the same when made direct (localaws.lookups).

Each test asks moto the same questions with its own lookups and with the direct ones, and compares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict
from moto.dynamodb.models.table import Table
from moto.iam.models import iam_backends

from localaws.lookups import direct_lookups


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")


PARTITIONS = ("ACCOUNT#111111111111", "ACCOUNT#222222222222", "RUN#1")


def _table() -> Any:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="ledger",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byKind",
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for pk in PARTITIONS:
        for n in range(25):
            kind = "action" if n % 3 else "notice"
            item = {"pk": {"S": pk}, "sk": {"S": f"{kind.upper()}#{n:03d}"}, "kind": {"S": kind}, "n": {"N": str(n)}}
            dynamodb.put_item(TableName="ledger", Item=item)
    return dynamodb


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "RUN#1"}}},
    {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
        "ExpressionAttributeValues": {":pk": {"S": "ACCOUNT#222222222222"}, ":sk": {"S": "ACTION#"}},
        "ScanIndexForward": False,
    },
    {
        "KeyConditionExpression": "pk = :pk",
        "FilterExpression": "n > :n",
        "ExpressionAttributeValues": {":pk": {"S": "ACCOUNT#111111111111"}, ":n": {"N": "10"}},
        "Limit": 4,
    },
    {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "ACCOUNT#333333333333"}}},
    {
        "IndexName": "byKind",
        "KeyConditionExpression": "kind = :k",
        "ExpressionAttributeValues": {":k": {"S": "notice"}},
    },
]


def _all_pages(dynamodb: Any, query: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages = dynamodb.get_paginator("query").paginate(TableName="ledger", **query)
    return [[*page["Items"], page.get("LastEvaluatedKey")] for page in pages]


@pytest.mark.parametrize("query", QUERIES, ids=["partition", "begins-with-backwards", "filter-limit", "empty", "index"])
def test_a_query_answers_the_same_pages_with_the_direct_lookup(query: dict[str, Any]) -> None:
    with mock_aws():
        dynamodb = _table()
        moto_s = _all_pages(dynamodb, query)
        with direct_lookups():
            direct = _all_pages(dynamodb, query)

    assert direct == moto_s
    assert len(moto_s) > 1 or query.get("Limit") is None


def test_a_query_on_the_table_s_key_reads_only_its_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[int] = []
    original: Callable[[Table], list[Any]] = Table.all_items

    def counting(table: Table) -> list[Any]:
        items = original(table)
        walked.append(len(items))
        return items

    monkeypatch.setattr(Table, "all_items", counting)
    with mock_aws():
        dynamodb = _table()
        with direct_lookups():
            dynamodb.query(TableName="ledger", **QUERIES[0])
            assert walked == [], "the whole table was sorted for a one-partition Query"
            dynamodb.scan(TableName="ledger")
        assert walked == [25 * len(PARTITIONS)], "a Scan still walks the whole table"


def test_an_account_s_backend_is_made_once_and_found_again() -> None:
    with direct_lookups():
        first = iam_backends["210987654321"]
        again = iam_backends["210987654321"]
    assert first is again is iam_backends["210987654321"]
    assert iam_backends in BackendDict._instances  # type: ignore[misc]


def test_the_lookups_are_moto_s_again_after_the_block() -> None:
    before = (vars(Table)["query"], vars(Table)["all_items"], vars(BackendDict)["_create_account_specific_backend"])

    with direct_lookups():
        assert vars(Table)["query"] is not before[0]

    after = (vars(Table)["query"], vars(Table)["all_items"], vars(BackendDict)["_create_account_specific_backend"])
    assert after == before


def test_a_key_s_last_use_is_found_in_its_own_account_as_moto_s_walk_finds_it() -> None:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import IAMBackend

    from localaws.key_accounts import KeyAccounts

    walk = IAMBackend.get_access_key_last_used
    with mock_aws():
        backends = [iam_backends[account]["aws"] for account in ("111111111111", "222222222222")]
        backends[0].create_user("us-east-1", "made-before")
        before = backends[0].create_access_key("made-before")  # made before the index: moto's walk answers
        with KeyAccounts().installed():
            for backend in backends:
                backend.create_user("us-east-1", "alice")
            keys = [backend.create_access_key("alice") for backend in backends]
            keys[1].last_used = keys[1].create_date
            answers = [
                (
                    IAMBackend.get_access_key_last_used(backends[0], key.access_key_id),
                    walk(backends[0], key.access_key_id),
                )
                for key in [*keys, before]
            ]
            with pytest.raises(NotFoundException):
                IAMBackend.get_access_key_last_used(backends[0], "AKIANOSUCHKEY0000000")
            backends[1].delete_access_key_by_name(keys[1].access_key_id)
            with pytest.raises(NotFoundException):
                IAMBackend.get_access_key_last_used(backends[0], keys[1].access_key_id)

    assert all(indexed == walked for indexed, walked in answers)
    assert answers[1][0] == {"user_name": "alice", "last_used": keys[1].create_date}
