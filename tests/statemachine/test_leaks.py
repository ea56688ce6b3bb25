"""No secret access key leaks: the check of tests/leaks.py, shown to work, then run over a run that does everything.

The check itself runs at the end of every test of this folder (the autouse ``leak_check`` fixture). Here:
each place it looks is given a secret on purpose and the check must name that key and that place (the
finding is then acknowledged, so the suite stays green); and a run that rotates, disables, deletes,
discards a key that never works, survives a crash, previews and sends emails must leave no trace of any
secret anywhere.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID

from keyrotation.observability import logger as product_logger
from localaws import Invocation, KeySeed, LocalAws
from tests.leaks import Leak, LeakCheck
from tests.statemachine.invariants import (
    kill_at,
    ledger_items,
    report_crashes_as_lambda_does,
    working_delivered_key_problems,
)

pytestmark = pytest.mark.statemachine

SENDER = "key-rotation@example.com"


def a_secret(aws: LocalAws) -> tuple[str, str]:
    """A fresh IAM key's (id, secret), made in the deployment account."""
    iam = aws.client("iam")
    iam.create_user(UserName="leaky")
    key = iam.create_access_key(UserName="leaky")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def in_product_log(aws: LocalAws, secret: str) -> None:
    product_logger.info("created replacement key", extra={"new_key_id": "AKIAEXAMPLE", "oops": secret})


def in_print(aws: LocalAws, secret: str) -> None:
    print(f"debugging: {secret}")  # noqa: T201 - the point


def in_std_logging(aws: LocalAws, secret: str) -> None:
    logging.getLogger("some.library").warning("value=%s", secret)


def in_half_a_line(aws: LocalAws, secret: str) -> None:
    print(f"truncated: {secret[:24]}")  # noqa: T201 - a cut-off value is a leak too


def in_execution_history(aws: LocalAws, secret: str) -> None:
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="echo",
        roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/echo",
        definition=json.dumps({"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"value": secret}))["executionArn"]
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)


def in_a_table(aws: LocalAws, secret: str) -> None:
    db = aws.client("dynamodb")
    db.create_table(
        TableName="notes",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    db.put_item(TableName="notes", Item={"pk": {"S": "x"}, "note": {"S": secret}})


def in_an_email(aws: LocalAws, secret: str) -> None:
    aws.verify_sender(SENDER)
    aws.client("ses").send_email(
        Source=SENDER,
        Destination={"ToAddresses": ["someone@example.com"]},
        Message={"Subject": {"Data": "your key"}, "Body": {"Text": {"Data": f"here it is: {secret}"}}},
    )


def in_an_event(aws: LocalAws, secret: str) -> None:
    """An event on the default bus, delivered to a queue by a rule (as a team's pickup of the key events)."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="pickup")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="pickup", EventPattern=json.dumps({"source": ["somewhere"]}), State="ENABLED")
    events.put_targets(Rule="pickup", Targets=[{"Id": "queue", "Arn": arn}])
    events.put_events(Entries=[{"Source": "somewhere", "DetailType": "x", "Detail": json.dumps({"key": secret})}])


def in_an_invocation(aws: LocalAws, secret: str) -> None:
    aws.lambdas.invocations.append(Invocation("SomeFunction", {"x": 1}, result={"value": secret}))


def in_a_run_file(aws: LocalAws, secret: str) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="runs")
    s3.put_object(Bucket="runs", Key="runs/x/accounts.json", Body=json.dumps([{"id": secret}]).encode())


@pytest.mark.parametrize(
    ("leak", "source"),
    [
        (in_product_log, "log output"),
        (in_print, "log output"),
        (in_std_logging, "log output"),
        (in_half_a_line, "log output"),
        (in_execution_history, "execution "),
        (in_a_table, "DynamoDB table notes"),
        (in_an_email, "email "),
        (in_an_event, "SQS queue pickup"),
        (in_an_invocation, "invocation "),
        (in_a_run_file, "s3://runs/"),
    ],
    ids=[
        "powertools-log",
        "print",
        "std-logging",
        "half-a-secret",
        "execution-history",
        "ledger-item",
        "email",
        "event-to-a-queue",
        "lambda-invocation",
        "s3-object",
    ],
)
def test_the_leak_check_finds_a_secret_put_where_it_must_never_be(
    aws: LocalAws, leak_check: LeakCheck, leak: Callable[[LocalAws, str], None], source: str
) -> None:
    key_id, secret = a_secret(aws)
    assert leak_check.scan() == [], "clean before the leak"

    leak(aws, secret)
    found = leak_check.scan()
    leak_check.acknowledge(found)  # on purpose: the suite stays green

    assert [f.key_id for f in found] == [key_id]
    assert found[0].source.startswith(source), found[0].source
    named = secret[:20] in str(found[0]) or secret[20:] in str(found[0])  # never the secret itself in an assert
    assert not named, "a finding names the key, never the secret"


def test_the_leak_check_remembers_keys_deleted_before_the_test_ends(aws: LocalAws, leak_check: LeakCheck) -> None:
    key_id, secret = a_secret(aws)
    aws.client("iam").delete_access_key(UserName="leaky", AccessKeyId=key_id)

    in_print(aws, secret)
    found = leak_check.scan()
    leak_check.acknowledge(found)

    assert found == [Leak("log output", key_id)]


def test_no_secret_leaks_from_runs_that_do_everything(
    aws: LocalAws, leak_check: LeakCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = aws.organization(["alpha"])
    alpha = org.account("alpha")
    aws.verify_sender(SENDER)
    stack = aws.deploy(
        {
            "DryRun": "false",
            "SenderEmail": SENDER,
            "SecurityTeamEmail": "security@example.com",
            "ExcludeAccounts": org.management_account,
        }
    )
    owner = {"email": "owner@example.com"}
    org.create_user(alpha, "rotates", [KeySeed(80, used_days_ago=1)], owner)
    org.create_user(alpha, "retires", [KeySeed(95, used_days_ago=9), KeySeed(20, used_days_ago=1)], owner)
    org.create_user(alpha, "deletes", [KeySeed(110, status="Inactive"), KeySeed(30)], owner)
    org.create_user(alpha, "refused", [KeySeed(80, used_days_ago=1)], owner)
    org.create_user(alpha, "crashes", [KeySeed(80, used_days_ago=1)], owner)

    # A preview, then a run in which one new key never works and one rotation dies mid-way, then the next run.
    assert stack.run({"dryRun": True}).status == "SUCCEEDED"
    report_crashes_as_lambda_does(monkeypatch, stack.runtime)
    kill_at(aws, stack, "CreateKeyFunction", "secretsmanager", "PutSecretValue")  # crashes's (users run in name order)
    verifying: dict[str, Any] = {}
    aws.lambdas.before_invoke.append(
        lambda spec, event: verifying.update(user=(event.get("action") or {}).get("userName"))
    )
    aws.faults.add(
        "sts",
        "GetCallerIdentity",
        "InvalidClientTokenId",
        times=100,
        status=403,
        when=lambda params: verifying.get("user") == "refused",
    )
    faulted = stack.run({})
    aws.faults.clear()
    after = stack.run({})

    assert faulted.status == "FAILED" and after.status == "SUCCEEDED", after.cause
    assert not working_delivered_key_problems(alpha, "rotates") and not working_delivered_key_problems(alpha, "refused")
    assert not working_delivered_key_problems(alpha, "crashes")
    found = leak_check.scan()
    assert found == [], "\n".join(str(leak) for leak in found)

    # The check looked at something: every kind of place had content, and the keys the product made are known.
    made = [
        call.result["newKeyId"]
        for call in aws.lambdas.invocations
        if call.logical_id == "CreateKeyFunction" and call.result and call.result.get("newKeyId")
    ]
    assert len(made) >= 4 and set(made) <= set(leak_check.secrets.values())
    discarded = [
        call.result["newKeyId"]
        for call in aws.lambdas.invocations
        if call.logical_id == "DiscardNewKeyFunction" and call.result and call.result.get("status") == "discarded"
    ]
    assert discarded and set(discarded) <= set(leak_check.secrets.values()), "keys deleted since are still looked for"
    assert all(key_id in leak_check.log_text for key_id in made), "the product's logs were read"
    items = ledger_items(stack.outputs["LedgerTableName"])
    assert any(item.get("status") == "sent" for item in items) and any(
        item.get("status") == "preview" for item in items
    )
    assert len(aws.lambdas.invocations) > 20


@pytest.fixture
def every_logger_at_debug(
    aws: LocalAws, leak_check: LeakCheck, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every log level an operator can reach set to DEBUG: the environment variables of every function
    (Powertools', Lambda's log-level control, LOG_LEVEL), the root logger with a handler of its own as
    Lambda's runtime gives it, and every logger that exists, libraries included."""
    for name in ("POWERTOOLS_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL", "LOG_LEVEL"):
        monkeypatch.setitem(aws.lambdas.overrides, name, "DEBUG")
    monkeypatch.setitem(aws.lambdas.overrides, "POWERTOOLS_DEBUG", "true")
    root = logging.getLogger()
    runtime = logging.StreamHandler(sys.stderr)
    root.addHandler(runtime)
    caplog.set_level(logging.DEBUG)
    loggers = [root, *(one for one in logging.Logger.manager.loggerDict.values() if isinstance(one, logging.Logger))]
    levels = {one: one.level for one in loggers}
    for one in loggers:
        one.setLevel(logging.DEBUG)
    leak_check.tap_logs()  # the runtime's handler too
    try:
        yield
    finally:
        for one, level in levels.items():
            one.setLevel(level)
        root.removeHandler(runtime)


def test_no_secret_leaks_with_every_logger_at_debug(
    aws: LocalAws, leak_check: LeakCheck, caplog: pytest.LogCaptureFixture, every_logger_at_debug: None
) -> None:
    org = aws.organization(["alpha"])
    alpha = org.account("alpha")
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})
    org.create_user(alpha, "rotates", [KeySeed(80, used_days_ago=1)])  # CreateAccessKey, PutSecretValue, GetSecretValue
    org.create_user(alpha, "retires", [KeySeed(95, used_days_ago=9), KeySeed(20, used_days_ago=1)])
    org.create_user(alpha, "refused", [KeySeed(80, used_days_ago=1)])  # a new key that never works: discarded
    verifying: dict[str, Any] = {}
    aws.lambdas.before_invoke.append(
        lambda spec, event: verifying.update(user=(event.get("action") or {}).get("userName"))
    )
    aws.faults.add(
        "sts",
        "GetCallerIdentity",
        "InvalidClientTokenId",
        times=100,
        status=403,
        when=lambda params: verifying.get("user") == "refused",
    )

    first = stack.run({})  # every step of every function assumes the member role: AssumeRole's credentials
    aws.faults.clear()
    second = stack.run({})

    assert first.status == "FAILED" and second.status == "SUCCEEDED", second.cause
    assert not working_delivered_key_problems(alpha, "rotates") and not working_delivered_key_problems(alpha, "refused")
    debug = {record.name for record in caplog.records if record.levelno == logging.DEBUG}
    assert debug, "DEBUG records were emitted and captured: the check is not vacuous"
    found = leak_check.scan()
    assert found == [], "\n".join(str(leak) for leak in found)
