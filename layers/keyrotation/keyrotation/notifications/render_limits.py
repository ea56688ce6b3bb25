"""The size and time an email template's rendering may take; an S3 override over them is not used.

An override is code from a bucket. Each part of an email (HTML, text) it renders stops at
:data:`MAX_OVERRIDE_BYTES` of output or :data:`MAX_OVERRIDE_SECONDS`, whichever comes first, with
:class:`OverrideTooLarge` or :class:`OverrideTooSlow`; the renderer then takes the packaged template
and reports the fallback, as it does for a broken override. The output is measured as it is made, so
a 12 MB rendering is stopped at 512 KiB, not built first; ``*`` and ``**`` in a template refuse a
result over the limit before making it (:class:`BoundedEnvironment`); the time limit holds even for a
loop that writes nothing.

Example:
    >>> from jinja2 import DictLoader
    >>> environment = BoundedEnvironment(loader=DictLoader({"t": "{{ 'ab' * n }}"}))
    >>> render_within(environment.get_template("t"), {"n": 2})
    'abab'
    >>> render_within(environment.get_template("t"), {"n": 10**9})
    Traceback (most recent call last):
    ...
    keyrotation.notifications.render_limits.OverrideTooLarge: its rendering is larger than 512 KiB
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

from jinja2 import Template
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The most one part (HTML or text) of an email may be, in bytes: an email stays under 1 MB (SES takes 10 MB).
MAX_OVERRIDE_BYTES = 512 * 1024

#: The longest one part of an email may take to render, in seconds.
MAX_OVERRIDE_SECONDS = 2.0

#: The largest number ``**`` may make, in bits.
_MAX_POWER_BITS = 64 * 1024


class OverrideTooLarge(Exception):
    """The rendering is over :data:`MAX_OVERRIDE_BYTES` (or one operation in it would be)."""


class OverrideTooSlow(Exception):
    """The rendering took longer than :data:`MAX_OVERRIDE_SECONDS`."""


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, where ``*`` and ``**`` refuse a result over the size limit before making it."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**" and _power_bits(left, right) > _MAX_POWER_BITS:
            raise OverrideTooLarge(f"too large a number ({left!r:.20} ** {right!r:.20})")
        return super().call_binop(context, operator, left, right)


def _check_repeat(sequence: Any, times: Any) -> None:
    repeats = isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int)
    if repeats and not isinstance(times, bool) and len(sequence) * max(times, 0) > MAX_OVERRIDE_BYTES:
        raise OverrideTooLarge(f"its rendering is larger than {MAX_OVERRIDE_BYTES // 1024} KiB")


def _power_bits(base: Any, exponent: Any) -> float:
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0 or abs(base) <= 1:
        return 0.0
    return exponent * math.log2(abs(base))


def render_within(
    template: Template,
    context: Mapping[str, Any],
    max_bytes: int = MAX_OVERRIDE_BYTES,
    seconds: float = MAX_OVERRIDE_SECONDS,
) -> str:
    """``template`` rendered, or :class:`OverrideTooLarge` / :class:`OverrideTooSlow` as soon as it is over."""
    parts: list[str] = []
    size = 0
    with _deadline(seconds):
        for chunk in template.generate(dict(context)):
            size += len(chunk.encode())
            if size > max_bytes:
                raise OverrideTooLarge(f"its rendering is larger than {max_bytes // 1024} KiB")
            parts.append(chunk)
    return "".join(parts)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`OverrideTooSlow` in whatever Python line this thread runs once ``seconds`` have passed."""
    end = time.monotonic() + seconds
    previous = sys.gettrace()

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > end:
            raise OverrideTooSlow(f"its rendering took longer than {seconds:g} s")
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        return on_line

    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)
