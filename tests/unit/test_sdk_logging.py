"""The AWS SDK cannot log below INFO once the layer is imported, whatever any log level says.

At DEBUG, botocore logs request and response bodies (the secret of CreateAccessKey, GetSecretValue and
AssumeRole, PutSecretValue's SecretString) and signed headers. tests/statemachine/test_leaks.py runs the
whole state machine with every logger at DEBUG; these tests pin down the mechanism.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from keyrotation import aws

BODY = "Response body: b'<SecretAccessKey>not-a-real-secret</SecretAccessKey>'"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.seen: list[tuple[str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.name, record.levelno))


@pytest.fixture
def root_at_debug() -> Iterator[Records]:
    """The root logger at DEBUG with a handler, as Lambda's runtime sets it for AWS_LAMBDA_LOG_LEVEL=DEBUG."""
    root, handler = logging.getLogger(), Records()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def levels() -> Iterator[None]:
    """Put back the levels a test sets."""
    loggers = [one for one in logging.Logger.manager.loggerDict.values() if isinstance(one, logging.Logger)]
    saved = {one: one.level for one in loggers}
    try:
        yield
    finally:
        for one, level in saved.items():
            one.setLevel(level)


@pytest.mark.parametrize(
    "name", ["botocore.parsers", "botocore.endpoint", "botocore.auth", "urllib3.connectionpool", "boto3.resources"]
)
def test_the_sdk_writes_no_debug_record_with_the_root_logger_at_debug(root_at_debug: Records, name: str) -> None:
    logging.getLogger(name).debug(BODY)

    assert root_at_debug.seen == []


@pytest.mark.parametrize("name", ["botocore", "botocore.parsers", "botocore.endpoint", "urllib3"])
def test_the_sdk_writes_no_debug_record_even_when_its_own_loggers_are_set_to_debug(
    root_at_debug: Records, levels: None, name: str
) -> None:
    for one in ("botocore", "boto3", "urllib3", name):
        logging.getLogger(one).setLevel(logging.DEBUG)  # e.g. a Logger copying its level to every logger

    logging.getLogger(name).debug(BODY)

    assert root_at_debug.seen == []


def test_an_sdk_logger_created_later_is_silenced_when_the_next_client_is_made(
    root_at_debug: Records, levels: None
) -> None:
    later = logging.getLogger("botocore.made_after_import")
    later.setLevel(logging.DEBUG)
    aws.silence_sdk_debug()  # what aws.client() does after creating a client

    later.debug(BODY)

    assert root_at_debug.seen == []


def test_the_sdk_still_logs_info_and_above(root_at_debug: Records) -> None:
    logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
    logging.getLogger("urllib3.connectionpool").warning("Connection pool is full")

    assert root_at_debug.seen == [("botocore.credentials", logging.INFO), ("urllib3.connectionpool", logging.WARNING)]


def test_other_loggers_keep_their_debug_records(root_at_debug: Records, levels: None) -> None:
    logging.getLogger("keyrotation.example").debug("a debugging line of the product")

    assert root_at_debug.seen == [("keyrotation.example", logging.DEBUG)]


def test_silencing_again_changes_nothing() -> None:
    parsers = logging.getLogger("botocore.parsers")
    before = list(parsers.filters)

    aws.silence_sdk_debug()

    assert parsers.filters == before and len(before) == 1
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.INFO
