"""Every log line the product writes stays under MAX_LOG_LINE_BYTES, whatever values it is given.

A huge value is clipped where it is, with a count of what was left out; a line that is short is written
as it is.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from keyrotation.limits import MAX_LOG_LINE_BYTES
from keyrotation.observability import logger


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the product's logger writes, line by line."""
    handler = logger.registered_handler
    original = handler.stream
    written = io.StringIO()
    handler.stream = written
    try:
        yield written
    finally:
        handler.stream = original


def logged(written: io.StringIO) -> list[str]:
    return [line for line in written.getvalue().splitlines() if line]


def test_a_short_line_is_written_whole(lines: io.StringIO) -> None:
    logger.info("run summary", extra={"accounts": {"total": 3}, "users": ["alice", "bob"]})
    (line,) = logged(lines)
    record = json.loads(line)
    assert record["message"] == "run summary"
    assert record["accounts"] == {"total": 3} and record["users"] == ["alice", "bob"]


def test_a_huge_value_is_clipped_with_a_count_of_what_was_left_out(lines: io.StringIO) -> None:
    error = "x" * 300_000
    users = [f"user-{n:05}" for n in range(20_000)]
    logger.warning("digest not sent", extra={"error": error, "users": users, "recipient": "a@example.com"})
    (line,) = logged(lines)
    assert len(line.encode()) <= MAX_LOG_LINE_BYTES
    record = json.loads(line)
    assert record["message"] == "digest not sent" and record["recipient"] == "a@example.com"
    assert record["error"].startswith("xxxx")
    kept = len(record["error"].split("...")[0])
    assert record["error"].endswith(f"...({len(error) - kept} more characters)")
    assert record["users"][:3] == users[:3]
    shown = len(record["users"]) - 1
    assert record["users"][-1] == f"...({len(users) - shown} more)"


def test_a_huge_message_and_many_fields_still_make_one_bounded_line(lines: io.StringIO) -> None:
    fields = {f"field_{n}": "y" * 900 for n in range(200)}
    logger.error("z" * 100_000, extra=fields)
    (line,) = logged(lines)
    assert len(line.encode()) <= MAX_LOG_LINE_BYTES
    record = json.loads(line)
    assert record["message"].startswith("zzz") and "more characters" in record["message"]
    assert record["level"] == "ERROR"
