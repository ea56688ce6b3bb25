"""The ``status`` of a ledger ``email`` item, and which statuses mean "this person has had it".

Example:
    >>> sorted(DELIVERED)
    ['preview', 'sent']
"""

from __future__ import annotations

from enum import Enum


class EmailStatus(str, Enum):
    """The ``status`` of a ledger ``email`` item."""

    SENT = "sent"  # SES accepted the digest
    PREVIEW = "preview"  # SES accepted the digest of a dry run
    FAILED = "failed"  # SES refused it (``transient`` says whether a retry may help)
    INVALID_ADDRESS = "invalid-address"  # the address is not one we send to; nothing was sent
    NOT_CONFIGURED = "not-configured"  # SenderEmail is empty: what would have been sent


#: A person with an email item in one of these states has had this run's digest.
DELIVERED = frozenset({EmailStatus.SENT.value, EmailStatus.PREVIEW.value})
