"""Replacing an attribute of a library for a while, and putting back exactly what was there.

>>> import math
>>> with patched(math, "pi", 3):
...     math.pi
3
>>> math.pi
3.141592653589793
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_ABSENT = object()


@contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Set ``owner.name`` to ``value`` for the block. On exit the attribute is what it was: the same
    object if ``owner`` had one of its own, or none at all if it was inherited or missing."""
    own = vars(owner).get(name, _ABSENT)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if own is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, own)
