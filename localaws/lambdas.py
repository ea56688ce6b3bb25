"""Calling the real handlers in process when moto's Step Functions invokes a Lambda.

moto's ``LambdaBackend.invoke`` would start a container; here it looks the
function up in :data:`REGISTRY` (filled from template.yaml by the deployer),
imports the handler from its CodeUri with the function's layers on the path,
runs it under the function's environment, and returns what Lambda returns,
including the unhandled-error envelope Retry and Catch match on.

Handlers run one at a time (a lock), because the environment is per process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaBackend


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout: int
    memory: int


@dataclass
class Invocation:
    logical_id: str
    event: dict[str, Any]
    result: Any = None
    error: tuple[str, str] | None = None
    slept: float = 0.0  # seconds the handler asked time.sleep for: counted, not waited (see _sleep)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (service, operation) of each AWS call it made


@dataclass
class Registry:
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    modules: dict[str, ModuleType] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    # A test can interpose here: called before the handler with (spec, event); may raise to simulate a crash.
    before_invoke: list[Callable[[FunctionSpec, dict[str, Any]], None]] = field(default_factory=list)
    # Environment applied over every function's own (e.g. quieter logs for the demo).
    overrides: dict[str, str] = field(default_factory=dict)
    # Swallow what handlers print (JSON logs, EMF metrics): the demo and bench want a readable screen.
    quiet: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add(self, spec: FunctionSpec) -> None:
        self.functions[spec.name] = spec
        self.functions[spec.arn] = spec

    def lookup(self, name_or_arn: str) -> FunctionSpec:
        key = name_or_arn.split(":")[6] if name_or_arn.startswith("arn:") else name_or_arn
        for spec in self.functions.values():
            if spec.name == key or spec.arn == name_or_arn:
                return spec
        raise KeyError(name_or_arn)

    def reset(self) -> None:
        self.functions.clear()
        self.invocations.clear()
        self.before_invoke.clear()
        self.overrides.clear()
        self.quiet = False

    def invoke(self, spec: FunctionSpec, event: dict[str, Any]) -> tuple[Any, tuple[str, str] | None]:
        """Run the handler; return (result, None) or (None, (errorType, errorMessage))."""
        record = Invocation(spec.logical_id, event)
        with self.lock:
            self.invocations.append(record)
            environment = {**spec.environment, **_runtime_variables(spec), **self.overrides}
            saved = {name: os.environ.get(name) for name in environment}
            os.environ.update(environment)
            _CURRENT.invocation = record
            try:
                for hook in list(self.before_invoke):
                    hook(spec, event)
                module = self._module(spec)
                function = getattr(module, spec.handler.rsplit(".", 1)[1])
                with contextlib.redirect_stdout(io.StringIO()) if self.quiet else contextlib.nullcontext():
                    record.result = function(event, LambdaContext.for_spec(spec))
            except Exception as error:  # noqa: BLE001 - this is Lambda's runtime: it reports every error
                record.error = (type(error).__name__, str(error))
            finally:
                _CURRENT.invocation = None
                # Put back only what changed: other threads (moto's interpreter) read the environment.
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
        return record.result, record.error

    def _module(self, spec: FunctionSpec) -> ModuleType:
        if spec.logical_id not in self.modules:
            for layer in reversed(spec.layer_dirs):
                if str(layer) not in sys.path:
                    sys.path.insert(0, str(layer))
            module_name, _ = spec.handler.rsplit(".", 1)
            path = spec.code_dir / (module_name.replace(".", "/") + ".py")
            unique = f"_lambda_{spec.logical_id}_{module_name.replace('.', '_')}"
            loader = importlib.util.spec_from_file_location(unique, path)
            if loader is None or loader.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[unique] = module
            loader.loader.exec_module(module)
            self.modules[spec.logical_id] = module
        return self.modules[spec.logical_id]


REGISTRY = Registry()


@dataclass
class LambdaContext:
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout: int

    @classmethod
    def for_spec(cls, spec: FunctionSpec) -> LambdaContext:
        return cls(
            function_name=spec.name,
            function_version="$LATEST",
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{spec.name}",
            log_stream_name="local",
            timeout=spec.timeout,
        )

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout * 1000


def _runtime_variables(spec: FunctionSpec) -> dict[str, str]:
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
    }


def _invoke(
    self: LambdaBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    spec = REGISTRY.lookup(function_name)
    event = json.loads(body) if body else {}
    result, error = REGISTRY.invoke(spec, event)
    if error is not None:
        response_headers["x-amz-function-error"] = "Unhandled"
        payload = json.dumps({"errorType": error[0], "errorMessage": error[1]}).encode()
    else:
        payload = json.dumps(result).encode()
    response_headers["Content-Length"] = str(len(payload))
    return payload


_CURRENT = threading.local()  # the Invocation the calling thread is running, if any
_real_sleep = time.sleep


def current_invocation() -> Invocation | None:
    """The invocation the calling thread is running, or None outside a handler."""
    return getattr(_CURRENT, "invocation", None)


def _sleep(seconds: float) -> None:
    """``time.sleep``: inside an invocation the wait is added to the invocation's ``slept``, not waited.

    A handler that waits (for a credential report) would slow every test down by its waits; as with the
    state machine's Retry intervals (``awslike.fast_retries``), what is waited is recorded, not spent.
    """
    record = current_invocation()
    if record is None:
        _real_sleep(seconds)
    else:
        record.slept += seconds


def install() -> None:
    """Route moto's Lambda invocations to :data:`REGISTRY`, and waits inside them to ``slept`` (idempotent)."""
    LambdaBackend.invoke = _invoke  # type: ignore[method-assign]
    time.sleep = _sleep
