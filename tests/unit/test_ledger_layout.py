"""The state machine writes and reads the ledger exactly as keyrotation.naming and keyrotation.ledger lay it out.

The ASL builds ledger keys itself (``States.Format('RUN#{}', ...)``) and writes statuses itself
(RecordActionFailure's ``failed``, RecordAccountSuccess's ``SUCCEEDED``): nothing but this test ties
those strings to the Python that writes and reads the same items. Every DynamoDB task of
statemachine/rotation.asl.yaml is found by walking the document, so a new one is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from keyrotation import naming
from keyrotation.ledger import AccountStatus, ActionStatus, Ledger, RecordKind
from keyrotation.model import Action, ActionType
from scripts import build_asl

ASL = build_asl.expand((build_asl.STATEMACHINE / "rotation.asl.yaml").read_text(), "rotation.asl.yaml")
FORMAT = re.compile(r"States\.Format\('(?P<template>[^']*)'(?P<args>(?:,\s*[^,)]+)*)\)")

#: The ASL's paths for the values the key builders take, and a sentinel for each.
SENTINELS = {
    "$.run.runId": "<run>",
    "$.account.id": "<account>",
    "$.step.action.userName": "<user>",
    "$.step.action.keyId": "<key>",
    "$.step.action.type": "<type>",
    "$.step.next": "<n>",
}

#: (pk, sk) of each item family the state machine touches, from the builders, with sentinels and with ``{}``.
FAMILIES = {
    "account result": (
        naming.run_pk("<run>"),
        naming.account_sk("<account>"),
        (naming.run_pk("{}"), naming.account_sk("{}")),
    ),
    "key action": (
        naming.run_pk("<run>"),
        naming.action_sk("<account>", "<user>", "<key>", "<type>"),
        (naming.run_pk("{}"), naming.action_sk("{}", "{}", "{}", "{}")),
    ),
    "planned action": (
        naming.plan_pk("<run>", "<account>"),
        naming.plan_sk("<n>"),  # type: ignore[arg-type]  # the number, as the ASL passes it: a path
        (naming.plan_pk("{}", "{}"), naming.plan_sk("{}")),  # type: ignore[arg-type]
    ),
}


def states(document: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, nested ones (Map ItemProcessor, Parallel branches) included, with its path."""
    for name, state in document.get("States", {}).items():
        yield f"{path}{name}", state
        for nested in [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]:
            if nested:
                yield from states(nested, f"{path}{name}/")


def dynamodb_tasks() -> list[tuple[str, dict[str, Any]]]:
    tasks = [
        (name, state)
        for name, state in states(ASL)
        if state.get("Type") == "Task" and str(state.get("Resource", "")).startswith("arn:aws:states:::dynamodb:")
    ]
    assert len(tasks) >= 5, [name for name, _ in tasks]  # NextAction and the four Record* states at least
    return tasks


def rendered(expression: str) -> tuple[str, str]:
    """A ``States.Format`` key as (its template, the key it makes with each path replaced by its sentinel)."""
    match = FORMAT.fullmatch(expression)
    assert match, f"not a States.Format key: {expression}"
    args = [arg.strip() for arg in match["args"].split(",") if arg.strip()]
    assert all(arg in SENTINELS for arg in args), f"{expression}: unexpected arguments {args}"
    return match["template"], match["template"].format(*(SENTINELS[arg] for arg in args))


def family(state: dict[str, Any]) -> str:
    """Which item family a DynamoDB task's Key names; fails when it is none of the builders'."""
    key = state["Parameters"]["Key"]
    (pk_template, pk), (sk_template, sk) = rendered(key["pk"]["S.$"]), rendered(key["sk"]["S.$"])
    for name, (family_pk, family_sk, templates) in FAMILIES.items():
        if (pk_template, sk_template) == templates:
            assert (pk, sk) == (family_pk, family_sk), f"{name}: the arguments are not in the builders' order"
            return name
    raise AssertionError(f"({pk_template!r}, {sk_template!r}) is not a key that keyrotation.naming builds")


@pytest.mark.parametrize("name,state", dynamodb_tasks(), ids=[name for name, _ in dynamodb_tasks()])
def test_every_ledger_key_of_the_asl_is_one_naming_builds(name: str, state: dict[str, Any]) -> None:
    assert set(state["Parameters"]["Key"]) == {"pk", "sk"}
    family(state)


def assignments(state: dict[str, Any]) -> dict[str, Any]:
    """What an UpdateItem's SET clause writes: attribute name -> its ExpressionAttributeValues entry."""
    parameters = state["Parameters"]
    names = parameters.get("ExpressionAttributeNames", {})
    values = parameters.get("ExpressionAttributeValues", {})
    written = {}
    for target, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", parameters["UpdateExpression"]):
        written[names.get(target, target)] = values[placeholder]
    return written


def test_every_status_the_asl_writes_is_the_ledgers() -> None:
    enums = {"key action": ActionStatus, "account result": AccountStatus}
    written = []
    for name, state in dynamodb_tasks():
        if not state["Resource"].endswith(":updateItem"):
            continue
        values = assignments(state)
        if "kind" in values:
            assert RecordKind(values["kind"]["S"]), name
        if "status" in values:
            literal = values["status"]["S"]  # a literal: the state machine decides it, not its input
            assert enums[family(state)](literal).value == literal, name
            written.append((family(state), literal))
    assert sorted(written) == [
        ("account result", AccountStatus.FAILED),
        ("account result", AccountStatus.SUCCEEDED),
        ("key action", ActionStatus.FAILED),
    ]


def test_every_action_status_the_asl_compares_is_the_ledgers() -> None:
    compared = [
        rule["StringEquals"]
        for _, state in states(ASL)
        if state.get("Type") == "Choice"
        for rule in state["Choices"]
        if rule.get("Variable", "").endswith(".status") and "StringEquals" in rule
    ]
    assert compared, "WasKeyCreated compares CreateKey's status"
    assert all(ActionStatus(literal) for literal in compared)


class _Table:
    """Just enough of a DynamoDB client to see the items :meth:`Ledger.record_plan` writes."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:  # noqa: N803
        self.items += [request["PutRequest"]["Item"] for requests in RequestItems.values() for request in requests]
        return {"UnprocessedItems": {}}


def test_the_asl_reads_a_planned_action_as_the_ledger_writes_it() -> None:
    table = _Table()
    action = Action(ActionType.DISABLE, "alice", "AKIAOLD0000000000001", "due")
    Ledger("ledger", dynamodb=table).record_plan("run-1", "111122223333", [action])
    (item,) = table.items
    assert (item["pk"], item["sk"]) == ({"S": naming.plan_pk("run-1", "111122223333")}, {"S": naming.plan_sk(0)})
    assert item["kind"] == {"S": RecordKind.PLAN.value}
    (next_action,) = [state for _, state in dynamodb_tasks() if state["Resource"].endswith(":getItem")]
    assert family(next_action) == "planned action"
    read = {
        path.removeprefix("$.Item.")
        for path in [*next_action["ResultSelector"]["action"].values(), next_action["ResultSelector"]["next.$"]]
    }
    read = {re.sub(r"^States\.StringToJson\(\$\.Item\.(.*)\)$", r"\1", path) for path in read}
    assert read == {
        f"{name}.{next(iter(value))}" for name, value in item.items() if name not in ("pk", "sk", "kind", "expiresAt")
    }


def test_every_item_the_asl_writes_says_its_kind() -> None:
    """Readers tell items apart by ``kind`` alone, so an item the state machine writes (or creates by updating
    it first, as RecordActionFailure does for an action whose function failed before writing it) says its kind."""
    kinds = {"key action": RecordKind.ACTION, "account result": RecordKind.ACCOUNT}
    for name, state in dynamodb_tasks():
        if not state["Resource"].endswith(":updateItem"):
            continue
        values = assignments(state)
        assert "kind" in values, f"{name} writes an item without its kind"
        assert values["kind"] == {"S": kinds[family(state)].value}, name
    # A key action the state machine records names its account, user, key and type, as record_action does.
    (failure,) = [state for name, state in dynamodb_tasks() if name.endswith("RecordActionFailure")]
    assert {"accountId", "userName", "keyId", "type"} <= set(assignments(failure))
