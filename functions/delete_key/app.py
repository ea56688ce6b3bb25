"""DeleteKey: delete an Inactive old key, or take back a new key that never reached its user.

Events:

- ``{"action", "account", "run"}``: the planned delete; only an Inactive key the policy still wants deleted.
- ``{"action", "account", "run", "discard": {"newKeyId", "versionId"}}``: from the rotate branch's Catch;
  the new key is disabled and deleted unless its secret version was already made current.

Returns ``{"status": "done" | "skipped" | "discarded", ...}``.
"""

from __future__ import annotations

from typing import Any

from keyrotation import actions
from keyrotation.events import Created
from keyrotation.handlers import action_context
from keyrotation.observability import MetricUnit, handler, metrics


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    discard = Created.from_event(event, "discard") if "discard" in event else None
    ctx, action = action_context(event)
    if discard is not None:
        result = actions.discard_new_key(ctx, action, discard)
    else:
        result = actions.delete(ctx, action)
    metrics.add_metric(name=f"Key{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    return result
