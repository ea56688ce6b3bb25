"""DeleteKey: delete an Inactive old key, if the policy still wants it deleted after re-reading the user.

Event: ``{"action": {...}, "account": {...}, "run": {...}}`` (a planned ``delete`` action).
Returns ``{"status": "done" | "skipped"}``. An Active key is never deleted (``KeyRotation.UnsafeAction``).
A new key that never reached its user is taken back by DiscardNewKey, not here.
"""

from __future__ import annotations

from typing import Any

from keyrotation import actions
from keyrotation.handlers import action_context
from keyrotation.observability import MetricUnit, handler, metrics
from keyrotation.sessions import Purpose


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx, action = action_context(event, Purpose.DELETE)
    result = actions.delete(ctx, action)
    metrics.add_metric(name=f"Key{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    return result
