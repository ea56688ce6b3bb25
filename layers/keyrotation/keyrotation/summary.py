"""The run's outcome, computed from the ledger (not from the state, which stays small).

An account in the run's list with no result item (its child execution died
before recording one) counts as failed, so nothing goes unreported.

    >>> summary, failed = summarize("run-1", ["111122223333"], [])
    >>> summary["accounts"], failed
    ({'total': 1, 'succeeded': 0, 'failed': 1}, ['111122223333'])

A dry run's counts say what *would* have been done, under names no one can take for real actions:

    >>> summarize("run-2", [], [], dry_run=True)[0]["keys"]
    {'wouldRotate': 0, 'wouldDisable': 0, 'wouldDelete': 0, 'wouldWarn': 0, 'overdue': 0}

Everything here is bounded, however many accounts fail: the summary lists at most
:data:`MAX_FAILURES_LISTED` failures, the replay input names the accounts only up to
:data:`MAX_REPLAY_LISTED` (beyond, it is ``{"replayOf": "<runId>"}``, which ListAccounts
resolves from the ledger), and the run's failure cause (:func:`failure_cause`) stays under
:data:`~keyrotation.limits.MAX_FAILURE_CAUSE_CHARS`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from keyrotation.ledger_records import (
    AccountResult,
    AccountStatus,
    ActionRecord,
    ActionStatus,
    EmailRecord,
    EmailStatus,
    NoticeRecord,
    OverdueRecord,
    RunRecord,
)
from keyrotation.limits import NAMED_VALUES
from keyrotation.model import ActionType

MAX_FAILURES_LISTED = 100
MAX_CAUSE_CHARS = 500
#: The most accounts a replay input lists; a larger replay is ``{"replayOf": "<runId>"}``.
MAX_REPLAY_LISTED = 50
#: How much of each failed account's cause the run's failure cause quotes.
MAX_FAILURE_CAUSE_QUOTE = 300
#: The summary's key counts (``keys``), by action: the name in a real run, and in a dry run.
KEY_COUNTS = {
    "rotate": ("rotated", "wouldRotate"),
    "disable": ("disabled", "wouldDisable"),
    "delete": ("deleted", "wouldDelete"),
    "disable-soon": ("warned", "wouldWarn"),
}


def key_counts(summary: dict[str, Any]) -> dict[str, int]:
    """The summary's key counts under their real-run names, whatever kind of run it was (for the report).

    >>> key_counts({"dryRun": True, "keys": {"wouldRotate": 2, "wouldDisable": 1, "overdue": 4}})
    {'rotated': 2, 'disabled': 1, 'deleted': 0, 'warned': 0, 'overdue': 4}
    """
    counts = summary.get("keys") or {}
    column = 1 if summary.get("dryRun") else 0
    found = {names[0]: counts.get(names[column], 0) for names in KEY_COUNTS.values()}
    return {**found, "overdue": counts.get("overdue", 0)}


def summarize(
    run_id: str, account_ids: Sequence[str], records: Iterable[RunRecord], dry_run: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """The run's summary (bounded in size) and the ids of every failed account, in run order.

    ``records``: the run's (:meth:`keyrotation.ledger.Ledger.run_records`). ``keys.overdue`` counts the
    Active keys older than 90 days the audits found, less those this run disabled: what is left after the
    run (a dry run leaves them all). Those of users an audit did not read in full come as a number
    (``unread``): the run did nothing to them.
    """
    results: dict[str, AccountResult] = {}
    done: Counter[str] = Counter()
    notices: Counter[str] = Counter()
    overdue: set[str] = set()
    disabled: set[str] = set()
    unread_overdue = 0  # in users the audit did not read: the run did nothing to them
    emails_failed = 0
    for record in records:
        if isinstance(record, AccountResult):
            results[record.account_id] = record
        elif isinstance(record, ActionRecord) and record.status in (
            ActionStatus.DONE,
            ActionStatus.PLANNED if record.dry_run else ActionStatus.DONE,
        ):
            done[record.type.value] += 1
            if record.type is ActionType.DISABLE and record.status is ActionStatus.DONE:
                disabled.add(record.key_id)
        elif isinstance(record, NoticeRecord):
            notices[record.type.value] += 1
        elif isinstance(record, OverdueRecord):
            overdue.update(record.key_ids)
            unread_overdue += record.unread
        elif isinstance(record, EmailRecord) and record.status is EmailStatus.FAILED:
            emails_failed += 1

    failures = [
        {
            "accountId": account_id,
            "error": _error(results.get(account_id)),
            "cause": _cause(results.get(account_id))[:MAX_CAUSE_CHARS],
        }
        for account_id in account_ids
        if (result := results.get(account_id)) is None or result.status is not AccountStatus.SUCCEEDED
    ]
    column = 1 if dry_run else 0
    counted = {"rotate": done["rotate"], "disable": done["disable"], "delete": done["delete"]}
    counted["disable-soon"] = notices["disable-soon"]
    keys = {names[column]: counted[action] for action, names in KEY_COUNTS.items()}
    summary = {
        "runId": run_id,
        "dryRun": dry_run,
        "accounts": {
            "total": len(account_ids),
            "succeeded": len(account_ids) - len(failures),
            "failed": len(failures),
        },
        "keys": {**keys, "overdue": len(overdue - disabled) + unread_overdue},
        "failedAccounts": failures[:MAX_FAILURES_LISTED],
        "notices": {
            "exempt": notices["exempt"],
            "blocked": notices["blocked"],
            "deferred": notices["deferred"],
            "invalidTags": notices["invalid-tag"],
            "exemptionsExpiring": notices["exemption-expiring"],
            "reenabled": notices["reenabled"],
            "notificationFailures": sum(1 for result in results.values() if result.notify_error),
            "emailsFailed": emails_failed,
        },
    }
    return summary, [failure["accountId"] for failure in failures]


def _error(result: AccountResult | None) -> str:
    """A failed account's error name; an account with no result (or none recorded in it): ``KeyRotation.NoResult``."""
    return "KeyRotation.NoResult" if result is None or result.error is None else result.error


def _cause(result: AccountResult | None) -> str:
    return "the account's execution recorded no result" if result is None or result.cause is None else result.cause


def replay_input(failed_account_ids: Sequence[str], dry_run: bool, run_id: str = "") -> dict[str, Any]:
    """The execution input that runs exactly the failed accounts again (empty when none failed).

    Beyond :data:`MAX_REPLAY_LISTED` accounts it is the compact ``{"replayOf": run_id}``.

    >>> replay_input(["111122223333"], dry_run=False)
    {'accounts': ['111122223333']}
    >>> replay_input([str(100000000000 + n) for n in range(300)], dry_run=True, run_id="run-7")
    {'replayOf': 'run-7', 'dryRun': True}
    """
    if not failed_account_ids:
        return {}
    document: dict[str, Any]
    if len(failed_account_ids) > MAX_REPLAY_LISTED and run_id:
        document = {"replayOf": run_id}
    else:
        document = {"accounts": list(failed_account_ids)}
    if dry_run:
        document["dryRun"] = True
    return document


def failure_cause(summary: dict[str, Any], replay: dict[str, Any]) -> dict[str, Any]:
    """What the run's ``KeyRotation.AccountsFailed`` cause says: the first few failures, the count, the replay.

    >>> failures = [{"accountId": str(100000000000 + n), "error": "E", "cause": "x" * 900} for n in range(300)]
    >>> summary = {"accounts": {"failed": 300}, "failedAccounts": failures[:MAX_FAILURES_LISTED]}
    >>> cause = failure_cause(summary, {"replayOf": "run-7"})
    >>> first = cause["failedAccounts"][0]
    >>> len(cause["failedAccounts"]), cause["failedCount"], cause["replayInput"], len(first["cause"])
    (5, 300, {'replayOf': 'run-7'}, 300)

    A run that was itself a compact replay names the run it replayed (the summary's ``replayOf``):

    >>> failure_cause({**summary, "replayOf": "run-6"}, {"replayOf": "run-7"})["replayOf"]
    'run-6'
    """
    replayed = {"replayOf": str(summary["replayOf"])} if summary.get("replayOf") else {}
    return {
        **replayed,
        "failedAccounts": [
            {**failure, "cause": str(failure.get("cause", ""))[:MAX_FAILURE_CAUSE_QUOTE]}
            for failure in summary["failedAccounts"][:NAMED_VALUES]
        ],
        "failedCount": summary["accounts"]["failed"],
        "replayInput": replay,
    }
