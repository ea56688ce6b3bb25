"""The ``status`` of a ledger ``email`` item, and which statuses mean "this person has had it".

Example:
    >>> sorted(DELIVERED)
    ['preview', 'sent', 'unchanged']
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
    UNCHANGED = "unchanged"  # a dry run's preview the same as the last one mailed to this person: not sent again


#: A person with an email item in one of these states has had this run's digest (an unchanged preview: earlier).
DELIVERED = frozenset({EmailStatus.SENT.value, EmailStatus.PREVIEW.value, EmailStatus.UNCHANGED.value})
