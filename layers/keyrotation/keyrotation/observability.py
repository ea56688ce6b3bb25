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
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from keyrotation.aws import translate_errors

logger = Logger()
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
