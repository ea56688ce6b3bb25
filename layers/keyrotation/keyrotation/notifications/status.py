"""The ``status`` of a ledger ``email`` item (its enum is in :mod:`keyrotation.ledger_records`), and which
statuses mean "this person has had it".

Example:
    >>> sorted(DELIVERED)
    ['preview', 'sent', 'unchanged']
"""

from __future__ import annotations

from keyrotation.ledger_records import EmailStatus

__all__ = ["DELIVERED", "EmailStatus"]

#: A person with an email item in one of these states has had this run's digest (an unchanged preview: earlier).
DELIVERED = frozenset({EmailStatus.SENT.value, EmailStatus.PREVIEW.value, EmailStatus.UNCHANGED.value})
