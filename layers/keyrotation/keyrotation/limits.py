"""The fixed sizes every output of the product stays under.

Step Functions cuts an error's cause at 32,768 characters (breaking a JSON cause) and refuses a state
payload over 256 KiB; CloudWatch Logs splits an event over 256 KiB, and a log line is read by people.
The limits here are well under those, so a cause, payload or log line built from operator input
(thousands of account ids) stays whole and readable: the first few offending values are named and
the rest are counted.

Example:
    >>> some([f"x{n}" for n in range(1000)])
    "'x0', 'x1', 'x2', 'x3', 'x4' and 995 more"
    >>> some(["a", "b"])
    "'a', 'b'"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The longest error cause (message) any function raises, in characters.
MAX_CAUSE_CHARS = 4096

#: The longest ``KeyRotation.AccountsFailed`` cause (JSON): five failures, the count, the replay input.
MAX_FAILURE_CAUSE_CHARS = 8192

#: The longest log line the product writes, in bytes (see :mod:`keyrotation.observability`).
MAX_LOG_LINE_BYTES = 16 * 1024

#: In a log line too long as it is: the longest string value kept, in characters...
MAX_LOG_VALUE_CHARS = 1024

#: ...and the most items of a list or an object kept.
MAX_LOG_ITEMS = 20

#: How many offending values a message names before counting the rest.
NAMED_VALUES = 5

#: The longest single value quoted in a message, in characters.
MAX_VALUE_CHARS = 80


def quote(value: object, quoted: bool = True) -> str:
    """``repr(value)`` (``str(value)`` when not ``quoted``), cut to :data:`MAX_VALUE_CHARS` characters.

    >>> quote("a" * 100)[-20:]
    'aaaaaa...(102 chars)'
    >>> quote("r-ab12", quoted=False)
    'r-ab12'
    """
    text = repr(value) if quoted else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else f"{text[: MAX_VALUE_CHARS - 3]}...({len(text)} chars)"


def some(values: Sequence[object], named: int = NAMED_VALUES, quoted: bool = True) -> str:
    """The first ``named`` values (see :func:`quote`), and how many more there are."""
    shown = ", ".join(quote(value, quoted) for value in values[:named])
    rest = len(values) - named
    return f"{shown} and {rest} more" if rest > 0 else shown


def bounded(message: str, limit: int = MAX_CAUSE_CHARS) -> str:
    """``message``, cut to ``limit`` characters (a last resort; messages name few values by design).

    >>> bounded("x" * 10, limit=8)
    'x...(10)'
    """
    if len(message) <= limit:
        return message
    tail = f"...({len(message)})"
    return message[: limit - len(tail)] + tail


def clip_value(value: Any, chars: int = MAX_LOG_VALUE_CHARS, items: int = MAX_LOG_ITEMS) -> Any:
    """``value`` with every string cut to ``chars`` characters and every list or object to ``items`` items,
    each cut saying how much was left out; other values (not JSON's) as their ``str``.

    >>> clip_value("x" * 10, chars=4)
    'xxxx...(6 more characters)'
    >>> clip_value(list(range(5)), items=2)
    [0, 1, '...(3 more)']
    >>> clip_value({"a": 1, "b": {"c": "yyyyy"}, "d": 3}, chars=2, items=2)
    {'a': 1, 'b': {'c': 'yy...(3 more characters)'}, '...': '(1 more)'}
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= chars else f"{value[:chars]}...({len(value) - chars} more characters)"
    if isinstance(value, Mapping):
        entries = list(value.items())
        kept = {clip_value(str(name), chars, items): clip_value(item, chars, items) for name, item in entries[:items]}
        if len(entries) > items:
            kept["..."] = f"({len(entries) - items} more)"
        return kept
    if isinstance(value, list | tuple | set | frozenset):
        values = list(value)
        clipped = [clip_value(item, chars, items) for item in values[:items]]
        if len(values) > items:
            clipped.append(f"...({len(values) - items} more)")
        return clipped
    return clip_value(str(value), chars, items)
