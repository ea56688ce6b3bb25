"""Reading a ledger item's fields, and fitting text into a line or a length, for the emails.

Ledger items are written by other functions and may lack a field or hold an
unreadable one; an email then says "unknown" rather than fail the run.

Example:
    >>> as_text(None), as_day("2026-01-13T10:05:00Z"), as_recorded("N/A"), clip("abcdef", 4)
    ('', datetime.date(2026, 1, 13), None, 'abc…')
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from keyrotation import clock
from keyrotation.model import recorded
from keyrotation.observability import logger


def as_text(value: Any) -> str:
    """The field as text; an absent field is empty."""
    return "" if value is None else str(value)


def as_moment(value: Any) -> datetime | None:
    """An ISO timestamp from the ledger, or None when absent or unreadable (shown as "unknown")."""
    if not value:
        return None
    try:
        return clock.from_iso(str(value))
    except ValueError:
        logger.warning("unreadable timestamp in the ledger", extra={"value": str(value)[:64]})
        return None


def as_day(value: Any) -> date | None:
    """The day of an ISO timestamp from the ledger, or None (see :func:`as_moment`)."""
    moment = as_moment(value)
    return moment.date() if moment else None


def as_recorded(value: Any) -> str | None:
    """A key's last-used service or region; IAM writes "N/A" where it recorded none.

    >>> as_recorded(" s3 "), as_recorded(""), as_recorded(None)
    ('s3', None, None)
    """
    return recorded(as_text(value))


def clip(text: str, limit: int) -> str:
    """``text``, cut to at most ``limit`` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> str:
    """One line, no control characters, at most 200 characters: safe for a Subject.

    >>> header("Keys of\\r\\nBcc: x@example.com")
    'Keys of Bcc: x@example.com'
    """
    return clip(" ".join(text.split()), 200)
