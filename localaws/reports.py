"""IAM credential reports as AWS serves them, where moto's differ in ways that would hide bugs.

moto 5.2.5 builds the report anew at every GetCredentialReport, so a key made a second ago is always in
it; says it was generated on 2015-02-02 whatever the date; never has a report in progress or expired;
leaves out the root user's row; and writes ``not_supported`` where AWS writes a key's last-use region
and service. AWS (IAM User Guide, "Getting credential reports"; API GenerateCredentialReport,
GetCredentialReport):

- GenerateCredentialReport starts a new report (``STARTED``) only when there is none or the last one is
  more than four hours old, and answers ``COMPLETE`` otherwise (``INPROGRESS`` while one is made);
- a report is a picture taken when it was generated: keys made, changed or deleted since do not show;
- GetCredentialReport fails with ``ReportNotPresent`` before the first report, ``ReportInProgress``
  while it is made and ``ReportExpired`` once it is more than four hours old;
- the first row is the root user's (``<root_account>``); a key's ``access_key_N_last_rotated`` is its
  creation time (``N/A`` when the user has no key N), its last use is a time, a region and a service,
  or ``N/A`` for a key never used.

:class:`CredentialReports` keeps one report per account, generated from moto's IAM at the moment it is
started. ``in_progress_polls`` GetCredentialReport calls after each start are answered
``ReportInProgress`` (0 by default: a report is ready by the time it is first asked for).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.exceptions import IAMException
from moto.iam.models import IAMBackend
from moto.iam.responses import IamResponse

MAX_AGE = timedelta(hours=4)
COLUMNS = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    *(
        f"access_key_{n}_{column}"
        for n in (1, 2)
        for column in ("active", "last_rotated", "last_used_date", "last_used_region", "last_used_service")
    ),
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
]


@dataclass
class _Report:
    generated: datetime
    content: str
    polls_in_progress: int


@dataclass
class CredentialReports:
    """Each account's latest credential report; what GenerateCredentialReport and GetCredentialReport answer."""

    in_progress_polls: int = 0
    reports: dict[str, _Report] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.reports.clear()
            self.in_progress_polls = 0

    def generate(self, backend: IAMBackend, now: datetime) -> dict[str, str]:
        with self.lock:
            report = self.reports.get(backend.account_id)
            if report is not None and report.polls_in_progress > 0:
                return {"State": "INPROGRESS", "Description": "Report generation in progress."}
            if report is not None and now - report.generated <= MAX_AGE:
                return {"State": "COMPLETE"}
            now = now.replace(microsecond=0)  # AWS reports the time to the second
            self.reports[backend.account_id] = _Report(now, _content(backend, now), self.in_progress_polls)
            return {"State": "STARTED", "Description": "No report exists. Starting a new report generation task"}

    def get(self, backend: IAMBackend, now: datetime) -> dict[str, Any]:
        with self.lock:
            report = self.reports.get(backend.account_id)
            if report is None:
                raise _error("ReportNotPresent", "The credential report does not exist. Use GenerateCredentialReport.")
            if report.polls_in_progress > 0:
                report.polls_in_progress -= 1
                raise _error("ReportInProgress", "The credential report is still being generated.")
            if now - report.generated > MAX_AGE:
                raise _error("ReportExpired", "The credential report has expired. Use GenerateCredentialReport.")
            return {"Content": report.content, "ReportFormat": "text/csv", "GeneratedTime": report.generated}

    def responses(self) -> tuple[Callable[[IamResponse], Any], Callable[[IamResponse], Any]]:
        """The two IamResponse methods that answer from these reports."""

        def generate_credential_report(response: IamResponse) -> Any:
            return ActionResult(self.generate(response.backend, datetime.now(UTC)))

        def get_credential_report(response: IamResponse) -> Any:
            return ActionResult(self.get(response.backend, datetime.now(UTC)))

        return generate_credential_report, get_credential_report


def _error(code: str, message: str) -> IAMException:
    """An IAM error as AWS names it; moto answers with the HTTP status botocore's model gives the code."""
    return IAMException(code, message)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "N/A"
    if moment.tzinfo is None:  # moto keeps naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _key_columns(key: Any | None) -> list[str]:
    if key is None:
        return ["false", "N/A", "N/A", "N/A", "N/A"]
    used = key.last_used
    return [
        "true" if key.status == "Active" else "false",
        _when(key.create_date),
        _when(used.timestamp) if used is not None else "N/A",
        (used.region or "N/A") if used is not None else "N/A",
        (used.service or "N/A") if used is not None else "N/A",
    ]


def _content(backend: IAMBackend, now: datetime) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    root = ["<root_account>", f"arn:aws:iam::{backend.account_id}:root", _when(now), "not_supported", "no_information"]
    root += [
        "not_supported",
        "not_supported",
        "false",
        *_key_columns(None),
        *_key_columns(None),
        "false",
        "N/A",
        "false",
        "N/A",
    ]
    writer.writerow(root)
    for user in backend.users.values():
        password = getattr(user, "password", None)
        keys = list(user.access_keys)[:2]
        slots = keys + [None] * (2 - len(keys))
        row = [user.name, user.arn, _when(user.create_date)]
        row += ["true", "no_information", "N/A", "N/A"] if password else ["false", "N/A", "N/A", "N/A"]
        row += ["true" if user.mfa_devices else "false"]
        row += _key_columns(slots[0]) + _key_columns(slots[1])
        row += ["false", "N/A", "false", "N/A"]
        writer.writerow(row)
    return out.getvalue()
