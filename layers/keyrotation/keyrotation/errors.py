"""The errors Step Functions sees, by name.

Lambda reports an unhandled exception as ``errorType`` = the exception class's
``__name__``; the state machine's Retry and Catch match on it. Every error of
this package is named ``KeyRotation.<Name>`` so the ASL can tell ours apart
from Lambda's and the AWS SDK's:

    >>> raise AlreadyRunning("execution run-1 is still running")  # doctest: +SKIP
    # Step Functions: Error "KeyRotation.AlreadyRunning"

Messages name the account, user and key id concerned. They never contain a
secret access key.
"""

from __future__ import annotations


class KeyRotationError(Exception):
    """Base of every error the functions raise on purpose."""

    retryable = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.__name__ = f"KeyRotation.{cls.__qualname__}"


class InvalidInput(KeyRotationError):
    """The execution input is malformed or names accounts that cannot be processed."""


class InvalidConfiguration(KeyRotationError):
    """A parameter of the stack (an environment variable of a function) is invalid."""


class AlreadyRunning(KeyRotationError):
    """Another execution of the state machine is still running."""


class MemberRoleUnavailable(KeyRotationError):
    """The member-account role cannot be assumed (missing, or its trust policy refuses us)."""


class Throttled(KeyRotationError):
    """An AWS API throttled the call. Retried with backoff by the state machine."""

    retryable = True


class TransientAwsError(KeyRotationError):
    """An AWS API failed in a way that is worth retrying (5xx, timeouts)."""

    retryable = True


class ReportNotReady(KeyRotationError):
    """The account's IAM credential report is still being generated. Retried, later, by the state machine."""

    retryable = True


class ReportUnreadable(KeyRotationError):
    """The IAM credential report is not the CSV AWS documents (a column is missing or a value is malformed)."""


class InventoryUnreadable(KeyRotationError):
    """An inventory fragment in the run bucket (``reports/<runId>/inventory/``) is not what AuditKeys writes."""


class NoFreeKeySlot(KeyRotationError):
    """The user already has two access keys, so CreateAccessKey is not called."""


class UnsafeAction(KeyRotationError):
    """A mutation was refused because it would break a safety rule (e.g. deleting an Active key)."""


class KeyNotYetValid(KeyRotationError):
    """The new key is not accepted by AWS yet (IAM is eventually consistent). Retried by the state machine."""

    retryable = True


class KeyVerificationFailed(KeyRotationError):
    """The new key never worked; it has been deleted."""


class DeliveryFailed(KeyRotationError):
    """The new key could not be written to the user's secret; the key has been deleted."""


class SecretConflict(KeyRotationError):
    """The secret under the user's secret name is not one the product created for that very user.

    Someone else created it, or it was created for an earlier user of the same name, or it was
    replaced or scheduled for deletion since. It is never read or written; nothing was changed.
    """


class NotificationFailed(KeyRotationError):
    """An email could not be sent. Never undoes or fails a key action."""


class EventsNotPublished(KeyRotationError):
    """EventBridge refused some key events for a reason a retry would not cure. Never undoes or fails a key action."""


class SenderNotVerified(KeyRotationError):
    """SenderEmail is set but SES has not verified it (nor its domain): a run would rotate keys and tell no one."""
