"""Summarize: count the run's results from the ledger; say which accounts failed and how to replay them.

Event: ``{"run": {...}, "accounts": {"bucket", "key", "count"}}``.
Returns ``{"summary": {"runId", "dryRun", "accounts", "keys", "failedAccounts", "notices", "reports"},
"replayInput": {...}, "failure": {"failedAccounts", "failedCount", "replayInput"}}`` (with ``replayOf`` in the
summary and the failure when the run was started with ``{"replayOf": "<runId>"}``) (``failure`` is the bounded
cause of the run's ``KeyRotation.AccountsFailed``). The failed accounts are recorded in the ledger, so that a
``{"replayOf": "<runId>"}`` input can run them again however many they are.

Every action of the run and every blocked user are written to the run bucket as
``reports/<runId>/actions.json`` and ``actions.csv`` (:mod:`keyrotation.reports`); the summary's
``reports`` (bucket, prefix, keys) says where, for the run report and the execution's output. So is
the run's key inventory: the accounts' fragments (``reports/<runId>/inventory/<accountId>.json``,
written by AuditKeys) combined into ``inventory.json`` and ``inventory.csv``, their totals in the
summary's ``inventory`` (keys, compliant, exempt, blocked, overdue).

The run's metrics are published here, once per run (:func:`keyrotation.run_metrics.publish`); the
stack's alarms and dashboard read them.
"""

from __future__ import annotations

import json
from typing import Any

from keyrotation import config, key_inventory
from keyrotation.aws import client
from keyrotation.events import Listing, Run
from keyrotation.ledger import Ledger
from keyrotation.observability import handler, logger
from keyrotation.reports import (
    ACTION_COLUMNS,
    action_rows,
    csv_text,
    fragment_key,
    json_text,
    locations,
    prefix,
    read_fragments,
    write,
)
from keyrotation.run_metrics import publish
from keyrotation.summary import failure_cause, replay_input, summarize


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = Run.from_event(event)
    listing = Listing.from_event(event)
    s3 = client("s3")
    body = s3.get_object(Bucket=listing.bucket, Key=listing.key, ExpectedBucketOwner=config.bucket_owner())[
        "Body"
    ].read()
    listed = json.loads(body)
    account_ids = [account["id"] for account in listed]
    ledger = Ledger(config.ledger_table())
    records = ledger.run_records(run.run_id)
    summary, failed = summarize(run.run_id, account_ids, records, dry_run=run.dry_run)
    names = {str(account["id"]): str(account.get("name", "")) for account in listed}
    rows = action_rows(records, names)
    owner = config.bucket_owner()
    write(s3, listing.bucket, owner, prefix(run.run_id) + "actions.json", json_text(rows))
    write(s3, listing.bucket, owner, prefix(run.run_id) + "actions.csv", csv_text(rows, ACTION_COLUMNS))
    summary["inventory"] = _inventory(s3, listing.bucket, owner, run.run_id, account_ids)
    files = ["actions.csv", "actions.json", "inventory.csv", "inventory.json"]
    summary["reports"] = locations(listing.bucket, run.run_id, files)
    if run.replay_of:
        summary["replayOf"] = run.replay_of  # shown by the run report and the failure cause
    if failed:
        ledger.record_replay(run.run_id, failed)
    logger.info("run summary", extra={"run_id": run.run_id, "accounts": summary["accounts"], "keys": summary["keys"]})
    publish(summary)
    replay = replay_input(failed, run.dry_run, run.run_id)
    return {"summary": summary, "replayInput": replay, "failure": failure_cause(summary, replay)}


def _inventory(s3: Any, bucket: str, owner: str, run_id: str, account_ids: list[str]) -> dict[str, int]:
    """Combine the run's accounts' inventory fragments into ``inventory.json`` and ``.csv``; their totals."""
    rows: list[dict[str, Any]] = []
    totals = key_inventory.add({}, {})
    keys = [fragment_key(run_id, account_id) for account_id in sorted(account_ids)]
    for found in read_fragments(s3, bucket, owner, keys):
        rows += found["rows"]
        totals = key_inventory.add(totals, found.get("totals") or {})
    write(s3, bucket, owner, prefix(run_id) + "inventory.json", json_text(rows))
    write(s3, bucket, owner, prefix(run_id) + "inventory.csv", csv_text(rows, key_inventory.COLUMNS))
    return totals
