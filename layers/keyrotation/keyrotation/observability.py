"""Powertools Logger, Tracer and Metrics, and the one decorator every handler wears.

    >>> from keyrotation.observability import logger, handler
    >>> @handler
    ... def lambda_handler(event, context):
    ...     logger.info("working", extra={"account_id": "111122223333"})
    ...     return {"ok": True}

The decorator injects the Lambda context into logs (never the event: events
are small, but logging them is a habit we do not want), traces the handler,
flushes metrics, and re-raises AWS throttling/5xx errors under the names the
state machine retries on.

Every line the logger writes is at most :data:`~keyrotation.limits.MAX_LOG_LINE_BYTES` (16 KiB):
a longer one is written again with its long values clipped where they are, each saying how much
was left out (:class:`BoundedFormatter`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import MetricUnit

from keyrotation.aws import translate_errors
from keyrotation.limits import MAX_LOG_ITEMS, MAX_LOG_LINE_BYTES, MAX_LOG_VALUE_CHARS, clip_value

#: The keys a clipped line keeps first, when even clipped values do not fit.
_FIRST_KEYS = ("level", "location", "message", "timestamp", "service", "function_request_id", "run_id", "account_id")


class BoundedFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, each at most ``limit`` bytes.

    A line over the limit is written again with each value clipped (:func:`~keyrotation.limits.clip_value`);
    if that is still too long, with tighter clips; if that is still too long, with the first keys (level,
    location, message...) that fit and a count of the fields left out.
    """

    def __init__(self, limit: int = MAX_LOG_LINE_BYTES, **options: Any) -> None:
        super().__init__(**options)
        self.limit = limit

    def serialize(self, log: LogRecord) -> str:
        line = super().serialize(log)
        if self._fits(line):
            return line
        for chars, items in ((MAX_LOG_VALUE_CHARS, MAX_LOG_ITEMS), (MAX_LOG_VALUE_CHARS // 8, 3)):
            line = super().serialize({name: clip_value(value, chars, items) for name, value in log.items()})
            if self._fits(line):
                return line
        return self._first_fields(log)

    def _first_fields(self, record: LogRecord) -> str:
        log: dict[str, Any] = dict(record)
        names = [name for name in _FIRST_KEYS if name in log] + [name for name in log if name not in _FIRST_KEYS]
        kept: dict[str, Any] = {}
        for name in names:
            trial = {**kept, name: clip_value(log[name], MAX_LOG_VALUE_CHARS // 8, 3)}
            if self._fits(super().serialize({**trial, "clipped": f"{len(names)} fields left out"})):
                kept = trial
        kept["clipped"] = f"{len(names) - len(kept)} fields left out"
        return super().serialize(kept)

    def _fits(self, line: str) -> bool:
        return len(line.encode()) <= self.limit


logger = Logger(logger_formatter=BoundedFormatter())
tracer = Tracer()
metrics = Metrics()

__all__ = ["MetricUnit", "handler", "logger", "metrics", "tracer"]

Handler = Callable[[dict[str, Any], Any], Any]


def handler(func: Handler) -> Handler:
    @functools.wraps(func)
    def translated(event: dict[str, Any], context: Any) -> Any:
        with translate_errors():
            return func(event, context)

    traced = tracer.capture_lambda_handler(translated, capture_response=False)
    logged = logger.inject_lambda_context(traced, log_event=False, clear_state=True)
    return metrics.log_metrics(logged)
