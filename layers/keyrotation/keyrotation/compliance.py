"""Which keys break the 90-day rule (CIS 1.14, Security Hub IAM.3): Active and older than 90 days.

This is the control's own number, not a setting: whatever the stack's periods, an Active key older
than :data:`OVERDUE_AGE_DAYS` is what an auditor counts. The audit counts them in every user of the
credential report it already has, so counting costs no call: by key id in the users it read in full
(the run may disable those keys), by number in the others (the report has no key ids, and the run
acts on no user it did not read). The run's summary counts those still Active after the run
(``OverdueKeys``, and its alarm). Pure.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from keyrotation.credential_report import ReportKey, ReportUser
    >>> from keyrotation.model import AccessKey, KeyStatus, UserSnapshot
    >>> now = datetime(2026, 1, 15, tzinfo=UTC)
    >>> keys = (AccessKey("AKIAOLD", KeyStatus.ACTIVE, now - timedelta(days=91)),
    ...         AccessKey("AKIAOFF", KeyStatus.INACTIVE, now - timedelta(days=120)),
    ...         AccessKey("AKIANEW", KeyStatus.ACTIVE, now - timedelta(days=90)))
    >>> overdue_key_ids([UserSnapshot("alice", "arn:aws:iam::111122223333:user/alice", keys)], now)
    ['AKIAOLD']
    >>> old, older = now - timedelta(days=200), now - timedelta(days=300)
    >>> keys = (ReportKey(1, True, old), ReportKey(2, False, older))
    >>> row = ReportUser("bob", "arn:aws:iam::111122223333:user/bob", keys)
    >>> overdue_in_report([row], now)
    1
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from keyrotation import clock
from keyrotation.credential_report import ReportUser
from keyrotation.model import UserSnapshot

#: An Active key older than this many days is overdue (CIS 1.14, Security Hub IAM.3).
OVERDUE_AGE_DAYS = 90


def is_overdue(created: datetime, active: bool, now: datetime) -> bool:
    """Whether a key created at ``created`` breaks the 90-day rule at ``now`` (Active and older)."""
    return active and clock.age_days(created, now) > OVERDUE_AGE_DAYS


def overdue_key_ids(users: Iterable[UserSnapshot], now: datetime) -> list[str]:
    """The ids of the users' Active keys older than :data:`OVERDUE_AGE_DAYS` at ``now``, sorted."""
    return sorted(key.key_id for user in users for key in user.keys if is_overdue(key.created, key.active, now))


def overdue_in_report(rows: Iterable[ReportUser], now: datetime) -> int:
    """How many Active keys older than :data:`OVERDUE_AGE_DAYS` the credential report's rows show at ``now``."""
    return sum(1 for row in rows for key in row.keys if is_overdue(key.created, key.active, now))
