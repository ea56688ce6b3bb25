"""The run's outcome, computed from the ledger (not from the state, which stays small).

An account in the run's list with no result item (its child execution died
before recording one) counts as failed, so nothing goes unreported.

    >>> summary, failed = summarize("run-1", ["111122223333"], [])
    >>> summary["accounts"], failed
    ({'total': 1, 'succeeded': 0, 'failed': 1}, ['111122223333'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

MAX_FAILURES_LISTED = 100
MAX_CAUSE_CHARS = 500


def summarize(
    run_id: str, account_ids: Sequence[str], run_items: Iterable[dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """The run's summary (bounded in size) and the ids of every failed account, in run order."""
    results: dict[str, dict[str, Any]] = {}
    done: Counter[str] = Counter()
    notices: Counter[str] = Counter()
    for item in run_items:
        kind = item.get("kind")
        if kind is None and "status" in item:
            results[item["accountId"]] = item
        elif kind == "action" and item.get("status") in ("done", "planned" if item.get("dryRun") else "done"):
            done[item["type"]] += 1
        elif kind == "notice":
            notices[item["type"]] += 1

    failures = [
        {
            "accountId": account_id,
            "error": results.get(account_id, {}).get("error", "KeyRotation.NoResult"),
            "cause": str(results.get(account_id, {}).get("cause", "the account's execution recorded no result"))[
                :MAX_CAUSE_CHARS
            ],
        }
        for account_id in account_ids
        if results.get(account_id, {}).get("status") != "SUCCEEDED"
    ]
    summary = {
        "runId": run_id,
        "accounts": {
            "total": len(account_ids),
            "succeeded": len(account_ids) - len(failures),
            "failed": len(failures),
        },
        "keys": {
            "rotated": done["rotate"],
            "disabled": done["disable"],
            "deleted": done["delete"],
            "warned": notices["disable-soon"],
        },
        "failedAccounts": failures[:MAX_FAILURES_LISTED],
        "notices": {
            "exempt": notices["exempt"],
            "blocked": notices["blocked"],
            "deferred": notices["deferred"],
            "invalidTags": notices["invalid-tag"],
            "exemptionsExpiring": notices["exemption-expiring"],
            "notificationFailures": sum(1 for result in results.values() if result.get("notifyError")),
        },
    }
    return summary, [failure["accountId"] for failure in failures]


def replay_input(failed_account_ids: Sequence[str], dry_run: bool) -> dict[str, Any]:
    """The execution input that runs exactly the failed accounts again (empty when none failed)."""
    if not failed_account_ids:
        return {}
    document: dict[str, Any] = {"accounts": list(failed_account_ids)}
    if dry_run:
        document["dryRun"] = True
    return document
