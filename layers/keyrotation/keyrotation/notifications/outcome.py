"""What one notify invocation did, and the error the state machine retries on when something is left.

A transient failure does not stop the others: everyone is served first, then
:meth:`Outcome.raise_if_retry_needed` raises ``Throttled`` or
``TransientAwsError``; the retry skips people already sent their digest.

Example:
    >>> outcome = Outcome(sent=2)
    >>> outcome.count_failure(SendFailure("Throttling", "Maximum sending rate exceeded.", True, throttled=True))
    >>> outcome.to_json()
    {'sent': 2, 'failed': 1, 'skipped': 0, 'invalid': 0}
    >>> outcome.raise_if_retry_needed()
    Traceback (most recent call last):
    ...
    keyrotation.errors.Throttled: 1 email(s) not sent yet (Throttling); the others were sent or recorded
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keyrotation.errors import Throttled, TransientAwsError
from keyrotation.notifications.sending import SendFailure


@dataclass
class Outcome:
    """What one invocation did. ``retry``: transient failures the state machine should retry."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0
    fallbacks: int = 0
    retry: list[SendFailure] = field(default_factory=list)

    def to_json(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "skipped": self.skipped, "invalid": self.invalid}

    def count_failure(self, failure: SendFailure) -> None:
        self.failed += 1
        if failure.transient:
            self.retry.append(failure)

    def raise_if_retry_needed(self) -> None:
        """Raise the error the state machine retries on, when a transient failure is left."""
        if not self.retry:
            return
        codes = ", ".join(sorted({failure.code for failure in self.retry}))
        message = f"{len(self.retry)} email(s) not sent yet ({codes}); the others were sent or recorded"
        if any(failure.throttled for failure in self.retry):
            raise Throttled(message)
        raise TransientAwsError(message)
