"""CreateKey: create the user's replacement key and write it straight into their secret (pending).

Event: ``{"action": {...}, "account": {...}, "run": {...}}``.
Returns ``{"status": "created", "newKeyId", "versionId"}`` or ``{"status": "skipped", "reason"}``: ids only.
"""

from __future__ import annotations

from typing import Any

from keyrotation import actions
from keyrotation.handlers import action_context
from keyrotation.observability import MetricUnit, handler, metrics
from keyrotation.sessions import Purpose


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx, action = action_context(event, Purpose.CREATE)
    result = actions.create_replacement(ctx, action)
    metrics.add_metric(name=f"Key{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    return result
