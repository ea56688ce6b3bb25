"""What keeps each Lambda execution environment's process state its own while every function runs in one process.

In AWS, an execution environment is a process of its own: its environment variables are its function's
(plus the runtime's), and its modules (the handler, the layers' packages and what they hold: loggers,
metrics, cached sessions) are its own. Here every environment lives in one Python process, each
invocation in a thread of moto's Step Functions interpreter, so this module gives each environment:

- :class:`EnvironOverlay`: ``os.environ`` as the calling thread should see it. Inside an invocation
  (see :func:`variables`) it is that invocation's own dictionary; anywhere else it is the process's.
  Installed by :func:`overlay_environ` for a :class:`~localaws.LocalAws`'s lifetime, then taken away.
- :class:`PrivateModules`: one environment's own instances of the modules named *private* (the
  function's code, its layers' packages and their requirements), imported under names of their own
  (``_localaws_<n>__keyrotation.audit``) and bound to their usual names inside that environment's code
  through a ``__builtins__`` whose ``__import__`` knows the mapping. :class:`PrivateFinder` (on
  ``sys.meta_path`` for a LocalAws's lifetime) finds them.

What stays the process's, as the runtime's own would be in a Lambda process: the standard library, boto3
and botocore (which moto patches), and whatever private code imports through ``importlib.import_module``
rather than an ``import`` statement (Powertools loads the X-Ray SDK that way, and only when tracing is on;
it is off here).

``logging`` is among them because botocore logs through it and the product sets the SDK's loggers through
it. What an environment configures there is the process's while the LocalAws lasts, and
:func:`restored_logging` takes it back at the end; meanwhile two environments of one function share their
Powertools Logger's Python logger (named for the service), its handler and the keys appended to it.

When quiet, :func:`silent_invocations` drops what invocations write to ``sys.stdout`` or leave to
``logging.lastResort``.

    >>> import os
    >>> with overlay_environ():
    ...     with variables({"ONLY": "mine"}):
    ...         sorted(os.environ)
    ['ONLY']
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import io
import itertools
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from localaws.sharing import compiled

# -- environment variables -----------------------------------------------------------------------------------------

_VIEW: ContextVar[dict[str, str] | None] = ContextVar("localaws_environ_view", default=None)


class EnvironOverlay(MutableMapping[str, str]):
    """``os.environ`` for every thread: an invocation's own variables inside it, the process's outside.

    Everything that reads the environment at call time (``os.environ``, ``os.getenv``, botocore's
    providers, Powertools) goes through it; the process environment itself is never changed by an
    invocation, so threads that are not running a handler (moto's interpreter, the test) see it unchanged.
    """

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process

    def _target(self) -> MutableMapping[str, str]:
        view = _VIEW.get()
        return self.process if view is None else view

    def __getitem__(self, name: str) -> str:
        return self._target()[name]

    def __setitem__(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"str expected, not {type(name).__name__}={type(value).__name__}")
        self._target()[name] = value

    def __delitem__(self, name: str) -> None:
        del self._target()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._target()))

    def __len__(self) -> int:
        return len(self._target())

    def __repr__(self) -> str:
        scope = "process" if _VIEW.get() is None else "invocation"
        return f"EnvironOverlay({scope}, {len(self)} variables)"

    def copy(self) -> dict[str, str]:
        return dict(self._target())


@contextmanager
def overlay_environ() -> Iterator[EnvironOverlay]:
    """Replace ``os.environ`` by an :class:`EnvironOverlay` of it; put the very same object back on exit."""
    original = os.environ
    overlay = EnvironOverlay(original)
    os.environ = overlay  # type: ignore[assignment]  # noqa: B003 - replaced, not cleared: it is put back
    try:
        yield overlay
    finally:
        os.environ = original  # noqa: B003 - the very object that was there


@contextmanager
def variables(environment: dict[str, str]) -> Iterator[None]:
    """Run the block (in this thread or task) seeing ``environment`` as its whole ``os.environ``."""
    token = _VIEW.set(environment)
    try:
        yield
    finally:
        _VIEW.reset(token)


def in_invocation() -> bool:
    """Whether the calling thread is running inside an invocation's :func:`variables`."""
    return _VIEW.get() is not None


# -- modules -------------------------------------------------------------------------------------------------------

_PREFIX = "_localaws_"
_SEPARATOR = "__"
_counter = itertools.count(1)


def _prefix(namespace: int) -> str:
    return f"{_PREFIX}{namespace}{_SEPARATOR}"


class PrivateModules:
    """One execution environment's modules.

    ``roots`` are the top-level names that are the environment's own (a module or package of that name,
    and everything under it); ``paths`` are searched for them before ``sys.path``. Every other import
    (the standard library, boto3, moto) is the process's, as the runtime's would be.
    """

    def __init__(self, roots: Iterable[str], paths: Sequence[Path]) -> None:
        self.roots = frozenset(roots)
        self.paths = [str(path) for path in paths]
        self.prefix = _prefix(next(_counter))
        self.builtins: dict[str, Any] = {**vars(builtins), "__import__": self._import}

    def private_name(self, name: str) -> str:
        return self.prefix + name if name.partition(".")[0] in self.roots else name

    def public_name(self, private: str) -> str:
        return private.removeprefix(self.prefix)

    def import_module(self, name: str) -> ModuleType:
        """The environment's own instance of module ``name`` (imported on first use)."""
        private = self.private_name(name)
        if private not in sys.modules:
            self._import(name, fromlist=("__name__",))
        return sys.modules[private]

    def load_file(self, name: str, path: Path) -> ModuleType:
        """Import the file ``path`` as this environment's module ``name`` (a handler's ``app`` is not on a path)."""
        private = self.private_name(name)
        spec = importlib.util.spec_from_file_location(private, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        spec.loader = _PrivateLoader(spec.loader, self)
        module = importlib.util.module_from_spec(spec)
        sys.modules[private] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(private, None)
            raise
        return module

    def discard(self) -> None:
        """Forget the environment's modules (its process ended)."""
        for name in [name for name in list(sys.modules) if name.startswith(self.prefix)]:
            sys.modules.pop(name, None)

    def _import(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,  # noqa: A002 - __import__'s own signature
        locals: Mapping[str, Any] | None = None,  # noqa: A002
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        if level > 0:
            package = (globals or {}).get("__package__") or (globals or {}).get("__name__", "")
            if not str(package).startswith(self.prefix):
                return builtins.__import__(name, globals, locals, fromlist or (), level)
            name = importlib.util.resolve_name("." * level + name, str(package))
            return self._import_absolute(self.public_name(name), fromlist)
        return self._import_absolute(name, fromlist)

    def _import_absolute(self, name: str, fromlist: Sequence[str] | None) -> ModuleType:
        private = self.private_name(name)
        if private == name:
            return builtins.__import__(name, None, None, fromlist or (), 0)
        # ``from package import submodule`` imports ``<private package>.submodule``: private too.
        return builtins.__import__(private, None, None, fromlist or (), 0)


class _PrivateLoader(importlib.abc.Loader):
    """Executes a module of an environment with that environment's ``__builtins__`` (and so its imports)."""

    def __init__(self, loader: importlib.abc.Loader, environment: PrivateModules) -> None:
        self.loader = loader
        self.environment = environment

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__["__builtins__"] = self.environment.builtins
        if isinstance(self.loader, importlib.machinery.SourceFileLoader):
            code = compiled(self.loader.get_filename(module.__name__))
            exec(code, module.__dict__)  # noqa: S102  # an import: the module's own source file, run  # nosec B102
        else:
            self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, get_data, is_package, ...
        return getattr(self.loader, name)


class PrivateFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of registered :class:`PrivateModules` by their private names."""

    def __init__(self) -> None:
        self._environments: dict[str, PrivateModules] = {}
        self._lock = threading.Lock()

    def register(self, environment: PrivateModules) -> None:
        with self._lock:
            self._environments[environment.prefix] = environment

    def unregister(self, environment: PrivateModules) -> None:
        with self._lock:
            self._environments.pop(environment.prefix, None)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        prefix = fullname[: fullname.index(_SEPARATOR) + len(_SEPARATOR)]
        environment = self._environments.get(prefix)
        if environment is None:
            return None
        public = environment.public_name(fullname)
        search = list(path) if path is not None and "." in public else [*environment.paths, *sys.path]
        found = importlib.machinery.PathFinder.find_spec(public, search)
        if found is None:
            return None
        if found.origin is None or not found.has_location:  # a namespace package
            namespace = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            namespace.submodule_search_locations = found.submodule_search_locations
            return namespace
        spec = importlib.util.spec_from_file_location(
            fullname, found.origin, submodule_search_locations=found.submodule_search_locations
        )
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PrivateLoader(spec.loader, environment)
        return spec


@contextmanager
def private_imports() -> Iterator[PrivateFinder]:
    """Put a :class:`PrivateFinder` first on ``sys.meta_path``; take it away (and its modules) on exit."""
    finder = PrivateFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


# -- logging ---------------------------------------------------------------------------------------------------------


def _private(thing: object) -> bool:
    """Whether ``thing`` is an instance of a class of some environment's own modules."""
    return type(thing).__module__.startswith(_PREFIX)


def _loggers() -> list[logging.Logger]:
    found = [one for one in list(logging.Logger.manager.loggerDict.values()) if isinstance(one, logging.Logger)]
    return [logging.root, *found]


_PLAIN_LOGGER = frozenset(vars(logging.Logger("a plain logger")))


def _drop_private(logger: logging.Logger) -> bool:
    """Take off ``logger`` the filters and handlers an environment's modules made; say whether there were any."""
    dropped = False
    for one in list(logger.filters):
        if _private(one):
            logger.removeFilter(one)
            dropped = True
    for handler in list(logger.handlers):
        if _private(handler) or _private(handler.formatter):
            logger.removeHandler(handler)
            dropped = True
            continue
        for one in list(handler.filters):
            if _private(one):
                handler.removeFilter(one)
    return dropped


@contextmanager
def restored_logging() -> Iterator[None]:
    """Leave ``logging`` as the block found it.

    ``logging`` is the process's, not an environment's own: botocore (the process's too) logs through it,
    and the product sets the SDK's loggers through it (their levels and filters), as it does in its own
    process in Lambda. So what the environments configure there (those SDK levels and filters, their
    Powertools Loggers' handlers and the filters these add to the root logger's handlers, the loggers of
    their own modules) is the process's until the block ends; then it goes: the loggers that were there
    get back their level, and nothing made by an environment's modules stays on any logger.
    """
    before = {logger: (logger.level, logger.propagate, logger.disabled, set(vars(logger))) for logger in _loggers()}
    try:
        yield
    finally:
        with _LOGGING_LOCK:
            manager = logging.Logger.manager
            for name in [name for name in list(manager.loggerDict) if name.startswith(_PREFIX)]:
                del manager.loggerDict[name]
        for logger in _loggers():
            dropped = _drop_private(logger)
            if logger in before:
                level, propagate, disabled, attributes = before[logger]
                logger.setLevel(level)
                logger.propagate, logger.disabled = propagate, disabled
            elif dropped:  # a logger an environment configured (a Powertools Logger's, named for its service)
                attributes = set(_PLAIN_LOGGER)
                logger.setLevel(logging.NOTSET)
            else:
                continue
            for name in set(vars(logger)) - attributes:  # e.g. the marks a Powertools Logger leaves
                delattr(logger, name)


_LOGGING_LOCK: Any = getattr(logging, "_lock")  # noqa: B009 - logging's own lock over its loggers


# -- standard output -------------------------------------------------------------------------------------------------


class _SilentInInvocations(io.TextIOBase):
    """``sys.stdout`` that drops what invocations write (their logs and metrics) and passes the rest on."""

    def __init__(self, process: TextIO) -> None:
        super().__init__()
        self.process = process

    def write(self, text: str) -> int:
        if in_invocation():
            return len(text)
        return self.process.write(text)

    def flush(self) -> None:
        if not in_invocation():
            self.process.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.process.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.process.encoding


class _LastResortOutsideInvocations(logging.Handler):
    """``logging.lastResort`` (used when no handler takes a record), but for records made in an invocation."""

    def __init__(self, original: logging.Handler) -> None:
        super().__init__(original.level)
        self.original = original

    def handle(self, record: logging.LogRecord) -> bool:
        return False if in_invocation() else bool(self.original.handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        self.original.emit(record)


@contextmanager
def silent_invocations() -> Iterator[None]:
    """What handlers print or log (Powertools' JSON logs, EMF metrics, a record no handler takes) goes nowhere;
    everyone else's output stays."""
    original, last_resort = sys.stdout, logging.lastResort
    sys.stdout = _SilentInInvocations(original)
    if last_resort is not None:
        logging.lastResort = _LastResortOutsideInvocations(last_resort)
    try:
        yield
    finally:
        sys.stdout, logging.lastResort = original, last_resort
