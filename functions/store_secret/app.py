"""StoreSecret: make the verified version current, readable only by its user; record the delivery.

Event: ``{"action", "account", "run", "created": {"newKeyId", "versionId"}}``.
Returns ``{"status": "done", "newKeyId"}``. Safe to retry: an already current version is left as is.
"""

from __future__ import annotations

from typing import Any

from keyrotation import actions
from keyrotation.events import Created
from keyrotation.handlers import action_context
from keyrotation.observability import MetricUnit, handler, metrics
from keyrotation.sessions import Purpose


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    created = Created.from_event(event)  # a malformed event fails before any role is assumed
    ctx, action = action_context(event, Purpose.STORE)
    result = actions.deliver(ctx, action, created)
    metrics.add_metric(name="KeyDelivered", unit=MetricUnit.Count, value=1)
    return result
