"""Summarize: count the run's results from the ledger; say which accounts failed and how to replay them.

Event: ``{"run": {...}, "accounts": {"bucket", "key", "count"}}``.
Returns ``{"summary": {"runId", "dryRun", "accounts", "keys", "failedAccounts", "notices"}, "replayInput": {...},
"failure": {"failedAccounts", "failedCount", "replayInput"}}`` (with ``replayOf`` in the summary and the failure when
the run was started with ``{"replayOf": "<runId>"}``) (``failure`` is the bounded cause of the run's
``KeyRotation.AccountsFailed``). The failed accounts are recorded in the ledger, so that a
``{"replayOf": "<runId>"}`` input can run them again however many they are.

The run's metrics are published here, once per run (:func:`keyrotation.run_metrics.publish`); the
stack's alarms and dashboard read them.
"""

from __future__ import annotations

import json
from typing import Any

from keyrotation import config
from keyrotation.aws import client
from keyrotation.events import Listing, Run
from keyrotation.ledger import Ledger
from keyrotation.observability import handler, logger
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
    account_ids = [account["id"] for account in json.loads(body)]
    ledger = Ledger(config.ledger_table())
    summary, failed = summarize(run.run_id, account_ids, ledger.run_items(run.run_id), dry_run=run.dry_run)
    if run.replay_of:
        summary["replayOf"] = run.replay_of  # shown by the run report and the failure cause
    if failed:
        ledger.record_replay(run.run_id, failed)
    logger.info("run summary", extra={"run_id": run.run_id, "accounts": summary["accounts"], "keys": summary["keys"]})
    publish(summary)
    replay = replay_input(failed, run.dry_run, run.run_id)
    return {"summary": summary, "replayInput": replay, "failure": failure_cause(summary, replay)}
