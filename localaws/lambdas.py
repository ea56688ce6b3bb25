"""Lambda in process: each function's handler runs in execution environments of its own, concurrently.

moto's ``LambdaBackend.invoke`` would start a container; while :meth:`LambdaRuntime.serving` is on, it
calls :meth:`LambdaRuntime.invoke` instead. As in Lambda, an invocation takes a free execution
environment of its function, or starts a new one when all are busy, and returns what Lambda returns,
including the unhandled-error envelope the state machine's Retry and Catch match on.

An :class:`ExecutionEnvironment` stands for a Lambda process (see :mod:`localaws.isolation`): it sees
only its function's environment variables and the runtime's, and it has its own instances of the
handler's module, of its layers' packages and their requirements (``keyrotation``, Powertools, Jinja).
It is started (the handler imported, "init") on its first invocation and kept warm for the next; it is
thrown away if its init fails or its "process dies" (a ``BaseException`` that is not an ``Exception``
escapes the handler).

    >>> runtime = LambdaRuntime()                                        # doctest: +SKIP
    >>> result, error = runtime.invoke(runtime.lookup("my-function"), {"x": 1})  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore
from moto.awslambda.models import LambdaBackend

from localaws import isolation
from localaws.patching import patched

Hook = Callable[["FunctionSpec", dict[str, Any]], None]


@dataclass
class FunctionSpec:
    """A function as deployed: where its code is and what it runs with."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout: int
    memory: int
    runtime: str = "python3.12"

    @property
    def module_name(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def function_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass
class Invocation:
    logical_id: str
    event: dict[str, Any]
    result: Any = None
    error: tuple[str, str] | None = None
    environment: int | None = None  # the number of the execution environment that ran it
    slept: float = 0.0  # seconds the handler asked time.sleep for: counted, not waited (see _sleep)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (service, operation) of each AWS call it made


_numbers = itertools.count(1)


class ExecutionEnvironment:
    """One "process" of one function: its own environment variables and its own modules.

    ``variables`` is its whole ``os.environ`` (what the handler writes there stays here, for its next
    invocations, as in a warm Lambda process). :meth:`module` gives its instance of a module.
    """

    def __init__(self, spec: FunctionSpec, variables: dict[str, str], private: frozenset[str]) -> None:
        self.spec = spec
        self.number = next(_numbers)
        self.variables = dict(variables)
        self.variables["AWS_LAMBDA_LOG_STREAM_NAME"] = (
            f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.UUID(int=self.number).hex}"
        )
        self.modules = isolation.PrivateModules(private, [spec.code_dir, *spec.layer_dirs])
        self.handler: Callable[[dict[str, Any], Any], Any] | None = None
        self.invocations = 0

    @contextmanager
    def active(self) -> Iterator[None]:
        """The block runs "in" this environment: ``os.environ`` is its variables."""
        with isolation.variables(self.variables):
            yield

    def init(self) -> None:
        """Lambda's init phase: import the handler (and with it everything it imports) in this environment."""
        module = self.modules.load_file(
            self.spec.module_name, self.spec.code_dir / (self.spec.module_name.replace(".", "/") + ".py")
        )
        self.handler = getattr(module, self.spec.function_name)

    def module(self, name: str) -> ModuleType:
        """This environment's instance of module ``name`` (imported here if it was not yet)."""
        with self.active():
            return self.modules.import_module(name)

    def discard(self) -> None:
        """The process ends: its modules go, and so do the hooks its modules registered with botocore."""
        for initializer in list(getattr(botocore, "_INITIALIZERS", [])):
            if str(getattr(initializer, "__module__", "")).startswith(self.modules.prefix):
                botocore.unregister_initializer(initializer)
        self.modules.discard()


class LambdaRuntime:
    """The functions deployed, their execution environments, and every invocation made.

    - ``invocations``: every :class:`Invocation`, in the order they started.
    - ``before_invoke``: hooks called inside the environment before the handler, with ``(spec, event)``;
      a hook may raise (the invocation fails as if the handler had) or wait.
    - ``overrides``: variables applied over every function's own.
    """

    def __init__(self, runtime_variables: dict[str, str] | None = None) -> None:
        self.functions: dict[str, FunctionSpec] = {}
        self.invocations: list[Invocation] = []
        self.before_invoke: list[Hook] = []
        self.overrides: dict[str, str] = {}
        self.runtime_variables = dict(runtime_variables or {})
        self._free: dict[str, list[ExecutionEnvironment]] = {}
        self._all: dict[str, list[ExecutionEnvironment]] = {}
        self._private: dict[str, frozenset[str]] = {}
        self._patches: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()
        self._finder: isolation.PrivateFinder | None = None

    # -- functions ---------------------------------------------------------------------------------------------

    def add(self, spec: FunctionSpec) -> None:
        self.functions[spec.name] = spec
        self.functions[spec.arn] = spec
        self._private[spec.arn] = private_modules(spec)

    def lookup(self, name_or_arn: str) -> FunctionSpec:
        key = name_or_arn.split(":")[6] if name_or_arn.startswith("arn:") else name_or_arn
        for spec in self.functions.values():
            if spec.name == key or spec.arn == name_or_arn:
                return spec
        raise KeyError(name_or_arn)

    def environments(self, logical_id: str) -> list[ExecutionEnvironment]:
        """Every live execution environment of the function, busy or free, oldest first."""
        with self._lock:
            return [env for envs in self._all.values() for env in envs if env.spec.logical_id == logical_id]

    def patch(self, module: str, attribute: str, value: Any) -> None:
        """Set ``module.attribute`` to ``value`` in every environment, those running and those to come
        (a test making the product's code misbehave on purpose)."""
        with self._lock:
            self._patches.append((module, attribute, value))
            running = [env for envs in self._all.values() for env in envs if env.handler is not None]
        for environment in running:
            setattr(environment.module(module), attribute, value)

    # -- invoking ----------------------------------------------------------------------------------------------

    def invoke(self, spec: FunctionSpec, event: dict[str, Any]) -> tuple[Any, tuple[str, str] | None]:
        """Run the handler; return ``(result, None)`` or ``(None, (errorType, errorMessage))``."""
        record = Invocation(spec.logical_id, event)
        self.invocations.append(record)
        environment = self._acquire(spec)
        record.environment = environment.number
        keep = False
        _CURRENT.invocation = record
        try:
            with environment.active():
                try:
                    if environment.handler is None:
                        environment.init()
                        self._apply_patches(environment)
                    environment.invocations += 1
                    for hook in list(self.before_invoke):
                        hook(spec, event)
                    handler = environment.handler
                    if handler is None:  # init() sets it or raises
                        raise RuntimeError(f"{spec.logical_id}: the execution environment has no handler")
                    record.result = handler(event, LambdaContext.of(environment))
                except Exception as error:  # noqa: BLE001 - this is Lambda's runtime: it reports every error
                    record.error = (type(error).__name__, str(error))
            keep = environment.handler is not None  # a failed init leaves nothing worth keeping
        finally:
            _CURRENT.invocation = None
            self._release(environment, keep)
        return record.result, record.error

    def _acquire(self, spec: FunctionSpec) -> ExecutionEnvironment:
        with self._lock:
            free = self._free.setdefault(spec.arn, [])
            if free:
                return free.pop()
            environment = ExecutionEnvironment(
                spec,
                {**spec.environment, **self._runtime_variables(spec), **self.overrides},
                self._private[spec.arn],
            )
            self._all.setdefault(spec.arn, []).append(environment)
        if self._finder is not None:
            self._finder.register(environment.modules)
        return environment

    def _release(self, environment: ExecutionEnvironment, keep: bool) -> None:
        with self._lock:
            if keep:
                self._free[environment.spec.arn].append(environment)
                return
            self._all[environment.spec.arn].remove(environment)
        self._retire(environment)

    def _retire(self, environment: ExecutionEnvironment) -> None:
        environment.discard()
        if self._finder is not None:
            self._finder.unregister(environment.modules)

    def _apply_patches(self, environment: ExecutionEnvironment) -> None:
        with self._lock:
            patches = list(self._patches)
        for module, attribute, value in patches:
            setattr(environment.modules.import_module(module), attribute, value)

    def _runtime_variables(self, spec: FunctionSpec) -> dict[str, str]:
        """What Lambda's runtime adds to a function's own variables (its reserved variables)."""
        return {
            **self.runtime_variables,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
        }

    # -- serving moto -------------------------------------------------------------------------------------------

    @contextmanager
    def serving(self) -> Iterator[LambdaRuntime]:
        """Route moto's Lambda invocations here for the block; at its end, every environment is discarded and
        moto, ``sys.meta_path`` and ``sys.modules`` are as they were."""
        runtime = self

        def invoke(
            backend: LambdaBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            spec = runtime.lookup(function_name)
            result, error = runtime.invoke(spec, json.loads(body) if body else {})
            if error is not None:
                response_headers["x-amz-function-error"] = "Unhandled"
                payload = json.dumps({"errorType": error[0], "errorMessage": error[1]}).encode()
            else:
                payload = json.dumps(result).encode()
            response_headers["Content-Length"] = str(len(payload))
            return payload

        with ExitStack() as stack:
            self._finder = stack.enter_context(isolation.private_imports())
            stack.callback(self._close)
            stack.enter_context(patched(LambdaBackend, "invoke", invoke))
            stack.enter_context(patched(time, "sleep", _sleep))
            yield self

    def _close(self) -> None:
        with self._lock:
            environments = [env for envs in self._all.values() for env in envs]
            self._all.clear()
            self._free.clear()
        for environment in environments:
            self._retire(environment)
        self._finder = None


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
    def of(cls, environment: ExecutionEnvironment) -> LambdaContext:
        spec = environment.spec
        return cls(
            function_name=spec.name,
            function_version="$LATEST",
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{spec.name}",
            log_stream_name=environment.variables["AWS_LAMBDA_LOG_STREAM_NAME"],
            timeout=spec.timeout,
        )

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout * 1000


# -- what is private to an environment ---------------------------------------------------------------------------


def private_modules(spec: FunctionSpec) -> frozenset[str]:
    """The top-level modules an environment of ``spec`` has its own instances of: those of its code and
    its layers, the packages its layers' ``requirements.txt`` install (as ``sam build`` would put them in
    the layer). An extra's packages (``aws-xray-sdk`` for Powertools' tracer) and everything else stay the
    process's: the standard library, boto3 and botocore, and ``logging`` with them, since botocore logs
    through it and the product sets the SDK's loggers through it (see :func:`isolation.restored_logging`)."""
    names: set[str] = set()
    for directory in [spec.code_dir, *spec.layer_dirs]:
        names |= _top_level_names(directory)
        requirements = directory / "requirements.txt"
        if requirements.is_file():
            names |= _requirement_modules(requirements)
    return frozenset(names)


def _top_level_names(directory: Path) -> set[str]:
    names = set()
    for entry in directory.iterdir():
        if entry.suffix == ".py" and entry.is_file():
            names.add(entry.stem)
        elif (entry / "__init__.py").is_file():
            names.add(entry.name)
    return names


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_modules(requirements: Path) -> set[str]:
    wanted = set()
    for line in requirements.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
        if match:
            wanted.add(_normalized(match.group(1)))
    return {
        module
        for module, distributions in _installed().items()
        if any(_normalized(distribution) in wanted for distribution in distributions)
    }


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    """Top-level module -> the distributions providing it (what is installed does not change during a run)."""
    return importlib.metadata.packages_distributions()


_CURRENT = threading.local()  # the Invocation the calling thread is running, if any
_real_sleep = time.sleep


def current_invocation() -> Invocation | None:
    """The invocation the calling thread is running, or None outside a handler."""
    return getattr(_CURRENT, "invocation", None)


def _sleep(seconds: float) -> None:
    """``time.sleep`` while serving: inside an invocation the wait is added to its ``slept``, not waited.

    A handler that waits (for a credential report) would slow every test down by its waits; as with the
    state machine's Retry intervals (``fast_retries``), what is waited is recorded, not spent.
    """
    record = current_invocation()
    if record is None:
        _real_sleep(seconds)
    else:
        record.slept += seconds
