"""VerifyKey: prove the new key works before it is made current.

Reads the pending secret version back (the key never travels through the
state), signs STS GetCallerIdentity with it and checks the caller is the user.
Raises ``KeyRotation.KeyNotYetValid`` while IAM has not caught up; the state
machine retries with backoff.

Event: ``{"action", "account", "run", "created": {"newKeyId", "versionId"}}``. Returns ``{"status": "verified"}``.
"""

from __future__ import annotations

from typing import Any

from keyrotation import actions
from keyrotation.events import Created
from keyrotation.handlers import action_context
from keyrotation.observability import handler
from keyrotation.sessions import Purpose


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    created = Created.from_event(event)  # a malformed event fails before any role is assumed
    ctx, action = action_context(event, Purpose.VERIFY)
    return actions.verify_new_key(ctx, action, created)
