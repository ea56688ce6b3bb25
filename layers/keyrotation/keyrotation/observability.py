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
import os
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


def _metrics_from_environment() -> None:
    """Powertools reads the namespace and service when the objects are created: once per function in
    Lambda. Local runs host every function in one process, so they are read again per invocation."""
    metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", metrics.namespace)
    metrics.service = os.environ.get("POWERTOOLS_SERVICE_NAME", metrics.service)


def handler(func: Handler) -> Handler:
    @functools.wraps(func)
    def translated(event: dict[str, Any], context: Any) -> Any:
        if "POWERTOOLS_SERVICE_NAME" in os.environ:
            logger.append_keys(service=os.environ["POWERTOOLS_SERVICE_NAME"])
        with translate_errors():
            return func(event, context)

    traced = tracer.capture_lambda_handler(translated, capture_response=False)
    logged = logger.inject_lambda_context(traced, log_event=False, clear_state=True)
    observed = metrics.log_metrics(logged)

    @functools.wraps(func)
    def configured(event: dict[str, Any], context: Any) -> Any:
        _metrics_from_environment()
        return observed(event, context)

    return configured
