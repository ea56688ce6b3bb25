"""The in-memory Lambda runtime isolates functions as Lambda does, and LocalAws leaves the process as it found it.

In AWS each invocation runs in an execution environment of its own function: a process that sees only its
function's environment variables (and the runtime's) and has its own instances of the handler's modules
and of its layers' packages. Two small functions deployed from a template of their own show it: both are
held inside their handlers at once (a barrier only both together can pass), each writes to ``os.environ``
and to a module of their shared layer, and each must see only its own.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore
import botocore.client
import botocore.session
import pytest
from moto.awslambda.models import LambdaBackend
from moto.core.base_backend import BackendDict
from moto.dynamodb.models.table import Table
from moto.iam.responses import IamResponse
from moto.organizations.responses import OrganizationsResponse
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)
from moto.sts.models import STSBackend

from localaws import LocalAws, Stack

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.lambda_handler
    Timeout: 30
    Layers: [!Ref ProbeLayer]
    Environment:
      Variables:
        SHARED_SETTING: from-globals
Resources:
  ProbeLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
    Metadata:
      BuildMethod: python3.12
  RedFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: red/
      Environment:
        Variables:
          COLOR: red
  BlueFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: blue/
      Environment:
        Variables:
          COLOR: blue
"""

HANDLER = """
import os

import probe_meeting  # not in the function or its layer: the process's own, where invocations can meet
from probe_layer import state


def lambda_handler(event, context):
    state.seen.append(event["n"])
    os.environ["LAST_EVENT"] = str(event["n"])
    probe_meeting.barrier.wait()  # passes only when two invocations are inside their handlers at once
    return {
        "variables": dict(os.environ),
        "seen": list(state.seen),
        "state": id(state),
    }
"""


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """A template with two functions (red and blue) sharing one layer whose module keeps what it has seen."""
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "layer" / "probe_layer").mkdir(parents=True)
    (tmp_path / "layer" / "probe_layer" / "__init__.py").write_text("")
    (tmp_path / "layer" / "probe_layer" / "state.py").write_text("seen: list[int] = []\n")
    for function in ("red", "blue"):
        (tmp_path / function).mkdir()
        (tmp_path / function / "app.py").write_text(HANDLER)
    return tmp_path / "template.yaml"


@pytest.fixture
def meeting(monkeypatch: pytest.MonkeyPatch) -> threading.Barrier:
    barrier = threading.Barrier(2, timeout=20)
    monkeypatch.setitem(sys.modules, "probe_meeting", SimpleNamespace(barrier=barrier))
    return barrier


def at_once(stack: Stack, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(stack.invoke, logical_id, event) for logical_id, event in calls]
        return [future.result(timeout=60) for future in futures]


def test_two_functions_running_at_once_each_see_only_their_own_variables_and_modules(
    aws: LocalAws, probe: Path, meeting: threading.Barrier
) -> None:
    stack = aws.deploy(template=probe)
    process_before = dict(os.environ)

    red, blue = at_once(stack, ("RedFunction", {"n": 1}), ("BlueFunction", {"n": 2}))

    assert red["variables"]["COLOR"] == "red" and blue["variables"]["COLOR"] == "blue"
    assert red["variables"]["LAST_EVENT"] == "1" and blue["variables"]["LAST_EVENT"] == "2"
    assert red["variables"]["SHARED_SETTING"] == blue["variables"]["SHARED_SETTING"] == "from-globals"
    assert red["variables"]["AWS_LAMBDA_FUNCTION_NAME"] == stack.functions["RedFunction"].name
    assert blue["variables"]["AWS_LAMBDA_FUNCTION_NAME"] == stack.functions["BlueFunction"].name
    assert red["seen"] == [1] and blue["seen"] == [2], "the layer's module is each environment's own"
    assert red["state"] != blue["state"]
    # Only the function's variables and the runtime's: nothing of the process (the test runner's, say).
    assert "PYTEST_CURRENT_TEST" not in red["variables"] and "PYTEST_CURRENT_TEST" in os.environ
    assert set(red["variables"]) == set(blue["variables"])
    assert dict(os.environ) == process_before, "an invocation changed the process's environment"


def test_invocations_of_one_function_at_once_get_an_environment_each_and_a_free_one_is_reused(
    aws: LocalAws, probe: Path, meeting: threading.Barrier
) -> None:
    stack = aws.deploy(template=probe)

    first, second = at_once(stack, ("RedFunction", {"n": 1}), ("RedFunction", {"n": 2}))
    assert sorted([first["seen"], second["seen"]]) == [[1], [2]]
    assert first["state"] != second["state"]
    assert len(aws.lambdas.environments("RedFunction")) == 2

    meeting.reset()
    third, fourth = at_once(stack, ("RedFunction", {"n": 3}), ("RedFunction", {"n": 4}))
    # Both warm environments were used again: each remembers its earlier invocation, as a warm Lambda does.
    assert sorted([len(third["seen"]), len(fourth["seen"])]) == [2, 2]
    assert {third["state"], fourth["state"]} == {first["state"], second["state"]}
    assert len(aws.lambdas.environments("RedFunction")) == 2
    assert {call.environment for call in aws.lambdas.invocations[2:]} == {
        call.environment for call in aws.lambdas.invocations[:2]
    }


def test_each_product_function_has_powertools_of_its_own_configured_from_its_own_variables(stack: Stack) -> None:
    for logical_id in ("AuditKeysFunction", "CreateKeyFunction"):
        result, error = stack.runtime.invoke(stack.functions[logical_id], {})  # refused: the handler did start
        assert result is None and error is not None and error[0] == "KeyRotation.InvalidInput"
    (audit,) = stack.runtime.environments("AuditKeysFunction")
    (create,) = stack.runtime.environments("CreateKeyFunction")
    audit_observability = audit.module("keyrotation.observability")
    create_observability = create.module("keyrotation.observability")

    assert audit_observability is not create_observability
    assert audit_observability.logger.service == "audit_keys" and create_observability.logger.service == "create_key"
    assert audit_observability.metrics.namespace == create_observability.metrics.namespace == "KeyRotation"
    assert audit_observability.metrics.service == "audit_keys" and create_observability.metrics.service == "create_key"
    assert type(audit_observability.metrics) is not type(create_observability.metrics), "Powertools is each one's own"
    assert audit.module("logging") is logging, "logging is the runtime's: botocore logs through it"


def _process_state() -> dict[str, Any]:
    return {
        "os.environ": os.environ,
        "sys.stdout": sys.stdout,
        "sys.meta_path": list(sys.meta_path),
        "LambdaBackend.invoke": vars(LambdaBackend).get("invoke"),
        "IamResponse.list_users": vars(IamResponse).get("list_users"),
        "OrganizationsResponse.list_accounts": vars(OrganizationsResponse).get("list_accounts"),
        "STSBackend.assume_role": vars(STSBackend).get("assume_role"),
        "BaseClient._make_api_call": vars(botocore.client.BaseClient).get("_make_api_call"),
        "retrier_decl.time": retrier_decl.time,
        "DistributedItemProcessorWorker._eval_pool": vars(DistributedItemProcessorWorker).get("_eval_pool"),
        "Table.query": vars(Table).get("query"),
        "BackendDict._create_account_specific_backend": vars(BackendDict).get("_create_account_specific_backend"),
        "botocore.session.create_loader": botocore.session.create_loader,
        "botocore initializers": list(getattr(botocore, "_INITIALIZERS", [])),
        "logging.lastResort": logging.lastResort,
        "log levels": [logging.getLogger(name).level for name in ("moto", "botocore", "boto3", "urllib3")],
    }


def _same(one: Any, other: Any) -> bool:
    """The very same object (a list: the same items, each the very same object)."""
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(a is b for a, b in zip(one, other, strict=True))
    return one is other


@pytest.mark.parametrize("quiet", [False, True])
def test_leaving_puts_back_every_object_it_replaced(quiet: bool) -> None:
    before = _process_state()
    variables = dict(os.environ)

    with LocalAws(quiet=quiet) as aws:
        aws.organization(["alpha"])
        stack = aws.deploy({"DryRun": "true"})
        stack.runtime.invoke(stack.functions["AuditKeysFunction"], {})  # an execution environment is started
        assert aws.lambdas.environments("AuditKeysFunction")
        during = _process_state()
        assert logging.getLogger("botocore").level >= logging.INFO, "the product held the SDK's loggers at INFO"

    after = _process_state()
    changed = {name for name in before if not _same(during[name], before[name])}
    assert {
        "os.environ",
        "LambdaBackend.invoke",
        "BaseClient._make_api_call",
        "sys.meta_path",
        "DistributedItemProcessorWorker._eval_pool",
        "Table.query",
        "BackendDict._create_account_specific_backend",
    } <= changed
    assert quiet is ("sys.stdout" in changed) is ("logging.lastResort" in changed)
    assert [name for name in before if not _same(after[name], before[name])] == [], "not put back"
    assert dict(os.environ) == variables
    assert not [name for name in sys.modules if name.startswith("_localaws_")], "an environment's modules remain"
    loggers = [logging.root, *(one for one in logging.Logger.manager.loggerDict.values() if hasattr(one, "filters"))]
    assert not [name for name in logging.Logger.manager.loggerDict if name.startswith("_localaws_")]
    made_by_an_environment = [
        thing
        for logger in loggers
        for thing in [*logger.filters, *logger.handlers, *(one.formatter for one in logger.handlers)]
        if type(thing).__module__.startswith("_localaws_")
    ]
    assert made_by_an_environment == [], "the product's logging set-up outlived its environments"
