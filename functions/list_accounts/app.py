"""ListAccounts: validate the run, list the accounts in scope, write them to S3.

Event (from the ListAccounts state)::

    {"input": <execution input>, "execution": {"name", "startTime", "stateMachineArn"}}

Returns ``{"run": {...}, "accounts": {"bucket", "key", "count"}}``; the account
list itself stays in S3 (the Distributed Map reads it from there). The run id is the execution's name,
or ``<name>@<startTime>`` when an earlier execution had that name (Step Functions takes a name again 90
days after its execution closed, the ledger keeps runs 400 days): see ``Ledger.claim_run``.
"""

from __future__ import annotations

import json
from typing import Any

from keyrotation import clock, config
from keyrotation.aws import client
from keyrotation.events import Execution, execution_input
from keyrotation.ledger import RUN_RETENTION_DAYS, Ledger
from keyrotation.observability import MetricUnit, handler, logger, metrics
from keyrotation.organization import accounts_in_scope, ensure_only_run, parse_request, resolve_replay, select
from keyrotation.settings_check import check_sender_verified, check_settings, check_units_exist


@handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    execution = Execution.from_event(event)
    settings = check_settings()  # a misconfigured stack stops here, before touching anything
    request = parse_request(execution_input(event))
    ledger = Ledger(config.ledger_table())
    if request.replay_of is not None:
        request = resolve_replay(request, ledger.replay_accounts(request.replay_of))
    scope, org = settings.scope, client("organizations")
    check_units_exist(org, scope)
    ses = client("ses")
    check_sender_verified(ses, settings.sender, ses.meta.region_name)
    ensure_only_run(client("stepfunctions"), execution.state_machine_arn, execution.name)

    accounts = select(accounts_in_scope(org, scope), request, scope)
    run_id = ledger.claim_run(execution.name, execution.start_time)  # unique for ever, though names come back
    bucket, key = config.run_bucket(), f"runs/{run_id}/accounts.json"
    client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps([account.to_json() for account in accounts]).encode(),
        ContentType="application/json",
        ExpectedBucketOwner=config.bucket_owner(),
    )
    dry_run = config.dry_run() or request.dry_run
    logger.info("run starts", extra={"run_id": run_id, "accounts": len(accounts), "dry_run": dry_run})
    metrics.add_metric(name="AccountsInRun", unit=MetricUnit.Count, value=len(accounts))
    expires = clock.now() + clock.days(RUN_RETENTION_DAYS)
    return {
        "run": {
            "runId": run_id,
            **({"replayOf": request.replay_of} if request.replay_of else {}),
            "dryRun": dry_run,
            "startedAt": execution.start_time,
            "maxConcurrency": config.max_concurrency(),
            "expiresAt": str(int(expires.timestamp())),
        },
        "accounts": {"bucket": bucket, "key": key, "count": len(accounts)},
    }
