"""The account's IAM credential report: every user and their access keys in two or three calls.

An audit that lists users and then asks IAM about each one makes about two calls per user (ListAccessKeys,
ListUserTags), thousands for a large account. The credential report answers for every user at once: one
CSV row per user with, for each of the (at most two) access keys, whether it is Active, when it was
created (``access_key_N_last_rotated``) and when, where and with which service it was last used. It does
not carry the keys' ids.

How AWS serves it (IAM User Guide, "Getting credential reports"; API GenerateCredentialReport and
GetCredentialReport):

- GenerateCredentialReport answers ``COMPLETE`` when a report less than four hours old exists (no new
  report is made), otherwise it starts one and answers ``STARTED`` (or ``INPROGRESS`` while it runs).
- GetCredentialReport returns the latest report with its ``GeneratedTime``, or fails with
  ``ReportInProgress`` (being generated), ``ReportNotPresent`` (none yet) or ``ReportExpired`` (too old:
  generate a new one).
- A report is a picture of the moment it was generated: a key made since is not in it.

:func:`fetch` waits for a report inside the invocation for a few seconds only (:data:`WAITS`), then raises
:class:`~keyrotation.errors.ReportNotReady`, which the state machine retries later: a Lambda waiting costs
money by the second, a Step Functions Retry waits for free and costs one state transition, about as much as
three seconds of a 512 MB function.

Example:
    >>> report = fetch(iam)                           # doctest: +SKIP
    >>> [(u.user_name, len(u.keys)) for u in report.users]  # doctest: +SKIP
    [('alice', 1), ('bob', 2)]
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from keyrotation.aws import error_code, translate_errors
from keyrotation.errors import ReportNotReady, ReportUnreadable
from keyrotation.model import recorded

#: AWS makes a new report only when the last one is older than this; an older report is expired.
MAX_AGE = timedelta(hours=4)
#: Seconds slept before each GetCredentialReport while a report is being generated: 10 s in all.
WAITS = (2.0, 2.0, 3.0, 3.0)
#: How many times one invocation asks for a new report (a report can expire between two calls).
MAX_GENERATIONS = 3
#: The row of the account's root user, which is not an IAM user.
ROOT_ROW = "<root_account>"
#: Values the report writes where there is nothing to say.
_NOTHING = frozenset({"", "N/A", "no_information", "not_supported"})
_COLUMNS = ("user", "arn") + tuple(
    f"access_key_{slot}_{field}"
    for slot in (1, 2)
    for field in ("active", "last_rotated", "last_used_date", "last_used_region", "last_used_service")
)


@dataclass(frozen=True)
class ReportKey:
    """One access key as the report shows it (it has no key id)."""

    slot: int
    active: bool
    created: datetime
    last_used: datetime | None = None
    last_used_region: str | None = None
    last_used_service: str | None = None


@dataclass(frozen=True)
class ReportUser:
    """One IAM user's row: the keys it had when the report was generated, oldest first."""

    user_name: str
    arn: str
    keys: tuple[ReportKey, ...] = ()


@dataclass(frozen=True)
class CredentialReport:
    generated: datetime
    users: tuple[ReportUser, ...]

    def age(self, now: datetime) -> timedelta:
        return now - self.generated


def fetch(
    iam: Any,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] | None = None,
    waits: Sequence[float] = WAITS,
) -> CredentialReport:
    """The account's credential report, at most :data:`MAX_AGE` old, generating one if needed.

    ``now`` is the clock; ``sleep`` waits (``time.sleep`` as it is when called). Raises
    :class:`~keyrotation.errors.ReportNotReady` when no report is ready after ``waits``.
    """
    sleep = sleep or (lambda seconds: time.sleep(seconds))
    left = list(waits)
    for _ in range(MAX_GENERATIONS):
        if _generate(iam) != "COMPLETE":
            _wait(left, sleep, waits)
        while True:
            try:
                report = _get(iam)
            except ClientError as error:
                if error_code(error) == "ReportInProgress":
                    _wait(left, sleep, waits)
                    continue
                if error_code(error) in ("ReportExpired", "ReportNotPresent"):
                    break  # generate again
                raise
            if report.age(now()) > MAX_AGE:  # AWS would say ReportExpired: an older report is never used
                break
            return report
    raise ReportNotReady(f"no current credential report after {MAX_GENERATIONS} requests to generate one")


def _wait(left: list[float], sleep: Callable[[float], None], waits: Sequence[float]) -> None:
    if not left:
        raise ReportNotReady(f"the credential report is still being generated after {sum(waits):g} seconds")
    sleep(left.pop(0))


def _generate(iam: Any) -> str:
    with translate_errors():
        return str(iam.generate_credential_report()["State"])


def _get(iam: Any) -> CredentialReport:
    with translate_errors():
        response = iam.get_credential_report()
    content = response["Content"]
    text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
    return CredentialReport(generated=response["GeneratedTime"], users=tuple(parse(text)))


def parse(text: str) -> Iterator[ReportUser]:
    """The IAM users of a report's CSV, without the root user's row.

    Example:
        >>> header = ",".join(["user", "arn"] + [f"access_key_{n}_{f}" for n in (1, 2) for f in (
        ...     "active", "last_rotated", "last_used_date", "last_used_region", "last_used_service")])
        >>> rows = [
        ...     "<root_account>,arn:aws:iam::111122223333:root,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A",
        ...     "alice,arn:aws:iam::111122223333:user/alice,true,2025-01-02T03:04:05+00:00,"
        ...     "2025-03-01T00:00:00+00:00,eu-west-1,s3,false,2024-11-02T03:04:05+00:00,N/A,N/A,N/A",
        ... ]
        >>> [user] = parse("\\n".join([header, *rows]))
        >>> user.user_name, [(k.slot, k.active, k.created.date().isoformat(), k.last_used_service) for k in user.keys]
        ('alice', [(2, False, '2024-11-02', None), (1, True, '2025-01-02', 's3')])
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in _COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise ReportUnreadable(f"the credential report has no column {', '.join(missing)}")
    for row in reader:
        if row["user"] == ROOT_ROW:
            continue
        keys = [key for key in (_key(row, 1), _key(row, 2)) if key is not None]
        yield ReportUser(
            user_name=row["user"], arn=row["arn"], keys=tuple(sorted(keys, key=lambda k: (k.created, k.slot)))
        )


def _key(row: dict[str, str], slot: int) -> ReportKey | None:
    """The key in ``slot``, or None when the user has no key there (its creation time is N/A)."""
    prefix = f"access_key_{slot}_"
    created = _moment(row, prefix + "last_rotated")
    if created is None:
        return None
    active = row[prefix + "active"].strip().lower()
    if active not in ("true", "false"):
        raise ReportUnreadable(f"{prefix}active of user {row['user']} is {row[prefix + 'active']!r}")
    return ReportKey(
        slot=slot,
        active=active == "true",
        created=created,
        last_used=_moment(row, prefix + "last_used_date"),
        last_used_region=recorded(_text(row, prefix + "last_used_region")),
        last_used_service=recorded(_text(row, prefix + "last_used_service")),
    )


def _text(row: dict[str, str], column: str) -> str | None:
    value = (row.get(column) or "").strip()
    return None if value in _NOTHING else value


def _moment(row: dict[str, str], column: str) -> datetime | None:
    value = _text(row, column)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportUnreadable(f"{column} of user {row['user']} is not a date: {value!r}") from None
    if moment.tzinfo is None:
        raise ReportUnreadable(f"{column} of user {row['user']} has no time zone: {value!r}")
    return moment
