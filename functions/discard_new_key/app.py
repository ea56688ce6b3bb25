"""DiscardNewKey: take back a new key that never reached its user.

The rotate branch's Catch calls it when VerifyKey or StoreSecret failed for good. The new key is
disabled, then deleted, unless its secret version was already made current: then the delivery is
recorded and the key kept, because its user may already be reading it.

Event: ``{"action", "account", "run", "created": {"newKeyId", "versionId"}}`` (the planned ``rotate``
action and what CreateKey returned). Returns ``{"status": "discarded", "newKeyId"}`` or
``{"status": "skipped", "reason"}``. Safe to retry: a key already gone is not looked for again.
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
    ctx, action = action_context(event, Purpose.DISCARD)
    result = actions.discard_new_key(ctx, action, created)
    metrics.add_metric(name=f"Key{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    return result
