"""What the security team is told about one execution: the :class:`RunReport` and its rows.

Each list of the report is :class:`Capped`: at most :data:`REPORT_LIST_LIMIT`
rows are shown and the rest are counted, so a run over a large organization
still fits in an email.

Example:
    >>> rows = Capped.of(range(5), limit=3)
    >>> rows.shown, rows.more, rows.total
    ((0, 1, 2), 2, 5)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Generic, TypeVar

from keyrotation.notifications.rendered import TemplateFallback

#: At most this many rows of each list in the run report; the rest are counted.
REPORT_LIST_LIMIT = 200

T = TypeVar("T")


@dataclass(frozen=True)
class Capped(Generic[T]):
    """The first rows of a list that may be long, and how many were left out."""

    shown: tuple[T, ...]
    more: int = 0

    @property
    def total(self) -> int:
        return len(self.shown) + self.more

    def __bool__(self) -> bool:
        return self.total > 0

    @classmethod
    def of(cls, rows: Iterable[T], limit: int = REPORT_LIST_LIMIT) -> Capped[T]:
        listed = list(rows)
        return cls(shown=tuple(listed[:limit]), more=max(0, len(listed) - limit))


@dataclass(frozen=True)
class FailedAccount:
    """An account whose execution failed, with the error Step Functions recorded."""

    account_id: str
    error: str
    cause: str


@dataclass(frozen=True)
class NoticeRow:
    """One deferred action, re-enabled key, exempt user, invalid exemption tag, or user blocked until a person acts."""

    account_id: str
    user_name: str
    key_id: str | None
    detail: str
    due: date | None


@dataclass(frozen=True)
class ActionRow:
    """One key action of the run (or one blocked user: ``action`` ``blocked``), as ``actions.csv`` lists it."""

    account_id: str
    account_name: str
    user_name: str
    key_id: str
    action: str
    result: str
    reason: str
    error: str = ""


@dataclass(frozen=True)
class ReportFiles:
    """Where the run's files are in the run bucket (``reports/<runId>/``): every row the email leaves out."""

    bucket: str
    prefix: str
    keys: tuple[str, ...]

    def key(self, name: str) -> str:
        """The key of the file ``name`` (``actions.csv``) under the run's prefix."""
        return self.prefix + name


@dataclass(frozen=True)
class EmailProblem:
    """A digest that was not delivered: failed, invalid address, or no sender configured."""

    account_id: str
    recipient: str
    status: str
    error: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class StepFailure:
    """The step that failed the whole run before or after its accounts (ListAccounts, Summarize)."""

    state: str
    error: str
    cause: str


@dataclass(frozen=True)
class FallbackCount:
    """How many emails of the run were rendered with the packaged template instead of an override."""

    template: str
    reason: str
    emails: int


@dataclass(frozen=True)
class RunReport:
    """The security team's report of one execution."""

    run_id: str
    preview: bool
    started_at: datetime | None
    accounts: dict[str, int]
    keys: dict[str, int]
    notices: dict[str, int]
    emails: dict[str, int]
    failed_accounts: Capped[FailedAccount]
    replay_input: str | None  # pretty JSON; None when there is none or it is too long for an email
    replay_input_chars: int  # its length, so the report can say it was left out
    deferred: Capped[NoticeRow]
    reenabled: Capped[NoticeRow]
    exempt: Capped[NoticeRow]
    invalid_tags: Capped[NoticeRow]
    #: Blocked notices with no date: nothing of these users changes until a person acts (a key of unknown
    #: origin, more than two keys). Listed here as well as in the owners' digests.
    waiting_for_a_person: Capped[NoticeRow]
    notification_problems: Capped[EmailProblem]
    template_fallbacks: tuple[FallbackCount, ...]
    #: Keys this run disabled whose owner earlier runs' emails had not reached (SES did not take them).
    untold: Capped[NoticeRow] = Capped(())
    #: The run this one replays the failed accounts of (started with ``{"replayOf": "<runId>"}``), else None.
    replay_of: str | None = None
    #: Set when the run itself failed before or after its accounts: the counts are then incomplete.
    failure: StepFailure | None = None
    #: Every key action of the run (planned ones in a dry run), by account, user and key.
    actions: Capped[ActionRow] = Capped(())
    #: Every user whose rotation is blocked (dated or until a person acts).
    blocked: Capped[ActionRow] = Capped(())
    #: Where the run's files are (None when Summarize did not write them: a run that failed).
    files: ReportFiles | None = None

    def with_fallbacks(self, fallbacks: Iterable[TemplateFallback]) -> RunReport:
        """This report, also listing the fallbacks that happened while rendering it."""
        counted = {(row.template, row.reason): row.emails for row in self.template_fallbacks}
        for fallback in fallbacks:
            key = (fallback.template, fallback.reason)
            counted[key] = counted.get(key, 0) + 1
        rows = tuple(FallbackCount(template, reason, emails) for (template, reason), emails in sorted(counted.items()))
        return replace(self, template_fallbacks=rows)
