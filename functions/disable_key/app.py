"""DisableKey: set an old key Inactive, if the policy still wants it after re-reading the user.

Event: ``{"action": {...}, "account": {...}, "run": {...}}``. Returns ``{"status": "done" | "skipped"}``.
"""

from __future__ import annotations

from typing import Any

from keyrotation import actions
from keyrotation.handlers import action_context
from keyrotation.observability import MetricUnit, handler, metrics
from keyrotation.sessions import Purpose


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx, action = action_context(event, Purpose.DISABLE)
    result = actions.disable(ctx, action)
    metrics.add_metric(name=f"Key{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    return result
