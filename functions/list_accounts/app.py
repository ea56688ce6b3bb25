"""ListAccounts: validate the run, list the accounts in scope, write them to S3.

Event (from the ListAccounts state)::

    {"input": <execution input>, "execution": {"name", "startTime", "stateMachineArn"}}

Returns ``{"run": {...}, "accounts": {"bucket", "key", "count"}}``; the account
list itself stays in S3 (the Distributed Map reads it from there).
"""

from __future__ import annotations

import json
from typing import Any

from keyrotation import clock, config
from keyrotation.aws import client
from keyrotation.config import LifecycleConfig, ScopeConfig
from keyrotation.events import Execution
from keyrotation.ledger import RUN_RETENTION_DAYS
from keyrotation.observability import MetricUnit, handler, logger, metrics
from keyrotation.organization import accounts_in_scope, ensure_only_run, parse_request, select


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    execution = Execution.from_event(event)
    request = parse_request(event.get("input"))
    LifecycleConfig.from_env()  # a misconfigured stack stops here, before touching anything
    scope = ScopeConfig.from_env()
    ensure_only_run(client("stepfunctions"), execution.state_machine_arn, execution.name)

    accounts = select(accounts_in_scope(client("organizations"), scope), request, scope)
    run_id = execution.name
    bucket, key = config.run_bucket(), f"runs/{run_id}/accounts.json"
    client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps([account.to_json() for account in accounts]).encode(),
        ContentType="application/json",
    )
    dry_run = config.dry_run() or request.dry_run
    logger.info("run starts", extra={"run_id": run_id, "accounts": len(accounts), "dry_run": dry_run})
    metrics.add_metric(name="AccountsInRun", unit=MetricUnit.Count, value=len(accounts))
    expires = clock.now() + clock.days(RUN_RETENTION_DAYS)
    return {
        "run": {
            "runId": run_id,
            "dryRun": dry_run,
            "startedAt": execution.start_time,
            "maxConcurrency": config.max_concurrency(),
            "expiresAt": str(int(expires.timestamp())),
        },
        "accounts": {"bucket": bucket, "key": key, "count": len(accounts)},
    }
