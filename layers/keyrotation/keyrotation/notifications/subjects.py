"""The emails' subject lines: one line, at most 200 characters, saying the account or the outcome.

Example:
    >>> from keyrotation.events import Account
    >>> digest_subject(Digest("a@example.com", Account("111122223333", "", ""), "run-1", preview=False))
    'IAM access key changes in AWS account 111122223333'
"""

from __future__ import annotations

from keyrotation.events import Account
from keyrotation.notifications.digest import Digest
from keyrotation.notifications.report import RunReport
from keyrotation.notifications.values import header


def digest_subject(digest: Digest) -> str:
    """
    >>> account = Account("111122223333", "prod", "aws@example.com")
    >>> digest_subject(Digest("a@example.com", account, "run-1", preview=True))
    '[PREVIEW] IAM access key changes that would be made in AWS account prod (111122223333)'
    """
    if digest.preview:
        return header(
            f"[PREVIEW] IAM access key changes that would be made in AWS account {_account_label(digest.account)}"
        )
    return header(f"IAM access key changes in AWS account {_account_label(digest.account)}")


def run_report_subject(report: RunReport) -> str:
    """
    >>> from keyrotation.events import Run
    >>> from keyrotation.notifications.report_builder import build_run_report
    >>> report = build_run_report(Run("run-1", False), {"accounts": {"total": 3, "failed": 1}}, None, [])
    >>> run_report_subject(report)
    '1 of 3 accounts failed in IAM access key rotation run run-1'
    """
    prefix = "[PREVIEW] " if report.preview else ""
    if report.failure is not None:
        where = f"failed in {report.failure.state} ({report.failure.error})"
        return header(f"{prefix}IAM access key rotation run {report.run_id} {where}")
    total, failed = report.accounts["total"], report.accounts["failed"]
    outcome = f"{failed} of {total} accounts failed" if failed else f"All {total} accounts succeeded"
    return header(f"{prefix}{outcome} in IAM access key rotation run {report.run_id}")


def _account_label(account: Account) -> str:
    return f"{account.name} ({account.account_id})" if account.name else account.account_id
