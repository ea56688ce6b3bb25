"""What every execution environment may share because nobody changes it: compiled code and botocore's data.

A Lambda execution environment compiles its modules and reads botocore's service models when it starts
(its cold start). Here environments are many and short-lived (one set per :class:`~localaws.LocalAws`),
so both are read once per process and shared: the results are the same, only the waiting is not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import Any

import botocore.loaders
import botocore.session

from localaws.patching import patched

# A source file's code object by path: (modification time, code). Code objects are immutable.
_CODE: dict[str, tuple[int, CodeType]] = {}


def compiled(path: str) -> CodeType:
    """The code of the source file ``path``, compiled once per process and again only if the file changes."""
    modified = os.stat(path).st_mtime_ns
    cached = _CODE.get(path)
    if cached is None or cached[0] != modified:
        cached = (modified, compile(Path(path).read_bytes(), path, "exec", dont_inherit=True))
        _CODE[path] = cached
    return cached[1]


# botocore's loaded data files (service models, endpoint rules...), by the search paths they were read from.
_MODELS: dict[tuple[str, ...], dict[Any, Any]] = {}


class _SharedModelLoader(botocore.loaders.Loader):
    """A botocore Loader whose cache of loaded files is shared with every loader searching the same paths.

    botocore's ``instance_cache`` keeps what a loader read in ``self._cache``; here that is one
    dictionary per search path list, so a new session (each environment makes its own) reads each
    model file once per process instead of once per session.
    """

    @property
    def _cache(self) -> dict[Any, Any]:
        return _MODELS.setdefault(tuple(self.search_paths), {})

    @_cache.setter
    def _cache(self, value: dict[Any, Any]) -> None:  # Loader.__init__ sets an empty one: the shared one stays
        return None


def _create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    """``botocore.loaders.create_loader``, making a :class:`_SharedModelLoader`."""
    if search_path_string is None:
        return _SharedModelLoader()
    paths = [os.path.expanduser(os.path.expandvars(path)) for path in search_path_string.split(os.pathsep)]
    return _SharedModelLoader(extra_search_paths=paths)


@contextmanager
def shared_service_models() -> Iterator[None]:
    """Sessions created in the block (the product's, in every environment, and the admin's) share loaded models."""
    with patched(botocore.session, "create_loader", _create_loader):
        yield
