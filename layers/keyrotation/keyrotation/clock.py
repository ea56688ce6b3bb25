"""The one source of "now", and the date arithmetic of the lifecycle.

All times are timezone-aware UTC. Tests and the demo move the clock with
``time-machine``; nothing here needs to know.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def days(n: int | float) -> timedelta:
    return timedelta(days=n)


def age_days(created: datetime, at: datetime) -> float:
    """Age in (fractional) days of something created at ``created``, seen at ``at``."""
    return (at - created).total_seconds() / 86400


def to_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_day(text: str) -> date:
    """A calendar date written YYYY-MM-DD; raises ValueError otherwise."""
    if len(text) != 10:
        raise ValueError(f"not a YYYY-MM-DD date: {text!r}")
    return date.fromisoformat(text)
