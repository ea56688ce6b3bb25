"""Alerts and metrics (issue 9, items 1 and 2), through the real state machine and the deployed template.

A run that fails before its accounts (ListAccounts) or after them (Summarize) still sends the security
team a report saying what failed, and still ends FAILED with that step's own error. Step Functions then
puts a "Step Functions Execution Status Change" event on EventBridge: moto's Step Functions does not, so
:func:`status_change_event` builds it from the real execution as AWS documents it, and the rule deployed in
moto (its pattern and target, matched and rendered by moto's own EventBridge code) must send exactly the
runs that did not succeed to the stack's alert topic. Summarize's metrics (the Embedded Metric Format
documents it prints) are what the alarms and the dashboard read.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from typing import Any

import pytest
from moto.events.models import events_backends
from moto.events.utils import EventTemplateParser
from moto.ses.models import ses_backends

from localaws import DEPLOYMENT_ACCOUNT, REGION, Execution, KeySeed, LocalAws, Organization, Stack
from tests.leaks import LeakCheck

pytestmark = pytest.mark.statemachine

SENDER = "key-rotation@example.com"
SECURITY = "security@example.com"
EMAIL = {"SenderEmail": SENDER, "SecurityTeamEmail": SECURITY}


def status_change_event(stack: Stack, execution: Execution, execution_arn: str | None = None) -> dict[str, Any]:
    """The event Step Functions puts on the default bus when ``execution`` ends (as documented by AWS)."""
    arn = execution_arn or execution.arn
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": DEPLOYMENT_ACCOUNT,
        "time": "2026-01-15T06:00:09Z",
        "region": REGION,
        "resources": [arn],
        "ingestion-time": "2026-01-15T06:00:09Z",
        "detail": {
            "executionArn": arn,
            "stateMachineArn": stack.state_machine_arn,
            "name": execution.name,
            "status": execution.status,
            "startDate": 1768456800000,
            "stopDate": 1768456809000,
            "input": "{}",
            "output": None,
            "error": execution.error,
            "cause": execution.cause,
        },
    }


def alerts_for(stack: Stack, event: dict[str, Any]) -> list[str]:
    """The messages the stack's rule sends to the alert topic for ``event`` (moto's matcher and renderer)."""
    rule = events_backends[DEPLOYMENT_ACCOUNT][REGION].describe_rule(stack.resources["RunFailedRule"], None)
    if not rule.event_pattern.matches_event(event):
        return []
    (target,) = rule.targets
    assert target["Arn"] == stack.outputs["AlertTopicArn"]
    transformer = target["InputTransformer"]
    return [EventTemplateParser.parse(transformer["InputTemplate"], transformer["InputPathsMap"], event)]


def reports_sent() -> list[str]:
    """The raw messages SES accepted that were sent to the security team."""
    return [
        message.raw_data
        for regions in ses_backends.values()
        for backend in regions.values()
        for message in backend.sent_messages
        if re.search(rf"^To: {re.escape(SECURITY)}\r?$", message.raw_data, re.MULTILINE)
    ]


def subject(raw: str) -> str:
    return " ".join(str(email.message_from_string(raw, policy=email.policy.default)["Subject"]).split())


def emf_documents(log_text: str, service: str) -> list[dict[str, Any]]:
    """The Embedded Metric Format documents ``service`` printed (what CloudWatch turns into metrics)."""
    found = []
    for line in log_text.splitlines():
        start = line.find('{"_aws"')
        if start < 0:
            continue
        document, _ = json.JSONDecoder().raw_decode(line[start:])
        if document.get("service") == service:
            found.append(document)
    return found


def test_a_run_refused_at_the_start_is_reported_then_fails_with_its_own_error_and_alerts(
    aws: LocalAws, org: Organization
) -> None:
    aws.verify_sender(SENDER)
    stack = aws.deploy({"DryRun": "false", **EMAIL})

    execution = stack.run({"acounts": [org.account("alpha")]})

    assert execution.status == "FAILED"
    assert execution.error == "KeyRotation.InvalidInput" and "'acounts'" in (execution.cause or "")
    assert [call.logical_id for call in aws.lambdas.invocations] == ["ListAccountsFunction", "SendRunReportFunction"]
    (report,) = reports_sent()
    assert subject(report).endswith(f"run {execution.name} failed in ListAccounts (KeyRotation.InvalidInput)")
    assert "No account was processed" in report.replace("=\r\n", "").replace("=\n", "")
    (alert,) = alerts_for(stack, status_change_event(stack, execution))
    assert execution.name in alert and "ended FAILED" in alert and execution.arn in alert


def test_a_run_whose_summary_fails_is_reported_then_fails_and_alerts(aws: LocalAws, org: Organization) -> None:
    aws.verify_sender(SENDER)
    org.create_user(org.account("alpha"), "alice", [KeySeed(80)], {"email": "alice@example.com"})
    stack = aws.deploy(
        {"DryRun": "false", "ExcludeAccounts": f"{org.management_account},{org.account('norole')}", **EMAIL}
    )

    def whole_run(params: dict[str, Any]) -> bool:
        """Summarize's query: all of a run's items (Notify's are one account's, the audit's a delivery record's;
        ListAccounts' claim of the run id reads at most one item of the run)."""
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        whole = params.get("KeyConditionExpression") == "pk = :pk" and "Limit" not in params
        return bool(whole and pk.startswith("RUN#"))

    aws.faults.add("dynamodb", "Query", "ValidationException", times=1, when=whole_run)

    execution = stack.run({})

    assert execution.status == "FAILED"
    assert execution.error == "ClientError" and "injected ValidationException" in (execution.cause or "")
    invoked = [call.logical_id for call in aws.lambdas.invocations]
    assert invoked[-2:] == ["SummarizeFunction", "SendRunReportFunction"]
    (report,) = reports_sent()
    assert subject(report).endswith(f"run {execution.name} failed in Summarize (ClientError)")
    assert "the counts below are incomplete" in report.replace("=\r\n", "").replace("=\n", "")
    assert len(org.client("iam", org.account("alpha")).list_access_keys(UserName="alice")["AccessKeyMetadata"]) == 2
    (alert,) = alerts_for(stack, status_change_event(stack, execution))
    assert execution.name in alert


def test_only_runs_that_did_not_succeed_alert(aws: LocalAws, org: Organization, leak_check: LeakCheck) -> None:
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})
    org.create_user(org.account("norole"), "nora", [KeySeed(80)])
    failed = stack.run({})
    assert failed.status == "FAILED" and failed.error == "KeyRotation.AccountsFailed"
    succeeded = stack.run({"accounts": [org.account("alpha")]})
    assert succeeded.status == "SUCCEEDED", succeeded.cause
    assert not leak_check.scan()
    first, second = emf_documents(leak_check.log_text, "summarize")
    assert (first["AccountsFailed"], second["AccountsFailed"]) == ([1.0], [0.0])  # the alarm's metric, each run

    assert len(alerts_for(stack, status_change_event(stack, failed))) == 1
    assert alerts_for(stack, status_change_event(stack, succeeded)) == []
    for status in ("TIMED_OUT", "ABORTED"):
        ended = Execution(failed.arn, failed.name, status, None, None, None, [])
        assert len(alerts_for(stack, status_change_event(stack, ended))) == 1
    # An account's child execution of the Distributed Map (machine/map-run:id) is the run's business, not an alert.
    child = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + "/ProcessAccounts:8f1e2d"
    assert alerts_for(stack, status_change_event(stack, failed, execution_arn=child)) == []
    # Nor is another state machine's failure.
    other = {**status_change_event(stack, failed)}
    other["detail"] = {**other["detail"], "stateMachineArn": stack.state_machine_arn + "-other"}
    assert alerts_for(stack, other) == []


def test_the_alert_topic_is_encrypted_and_only_the_rule_and_the_alarms_may_publish(aws: LocalAws) -> None:
    stack = aws.deploy({"AlertEmail": "oncall@example.com"})
    sns = aws.client("sns")
    topic = stack.outputs["AlertTopicArn"]
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]

    assert attributes["KmsMasterKeyId"] == stack.resources["AlertKey"]
    key_policy = json.loads(
        aws.client("kms").get_key_policy(KeyId=stack.resources["AlertKey"], PolicyName="default")["Policy"]
    )
    publishers = [s for s in key_policy["Statement"] if "Service" in s["Principal"]]
    assert {service for s in publishers for service in s["Principal"]["Service"]} == {
        "events.amazonaws.com",
        "cloudwatch.amazonaws.com",
    }
    policy = json.loads(attributes["Policy"])
    allowed = {
        (statement["Principal"]["Service"], json.dumps(statement["Condition"]["ArnEquals"]["aws:SourceArn"]))
        for statement in policy["Statement"]
    }
    rule_arn = aws.client("events").describe_rule(Name=stack.resources["RunFailedRule"])["Arn"]
    alarms = aws.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert allowed == {
        ("events.amazonaws.com", json.dumps(rule_arn)),
        ("cloudwatch.amazonaws.com", json.dumps(sorted(alarm["AlarmArn"] for alarm in alarms))),
    }
    assert {statement["Action"] for statement in policy["Statement"]} == {"sns:Publish"}
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "oncall@example.com")]


def test_without_alert_email_there_is_no_subscription(aws: LocalAws) -> None:
    stack = aws.deploy({})
    assert aws.client("sns").list_subscriptions_by_topic(TopicArn=stack.outputs["AlertTopicArn"])["Subscriptions"] == []


def test_summarize_publishes_the_runs_metrics_once_and_the_alarms_and_dashboard_read_them(
    aws: LocalAws, org: Organization, leak_check: LeakCheck
) -> None:
    alpha = org.account("alpha")
    org.create_user(alpha, "due", [KeySeed(80)])
    org.create_user(alpha, "retires", [KeySeed(95), KeySeed(20)])  # disabled by the run: no longer overdue
    org.create_user(alpha, "gone", [KeySeed(110, status="Inactive"), KeySeed(30)])
    org.create_user(alpha, "holiday", [KeySeed(200)], groups=["IAMKeyRotationExemptionGroup"])  # left Active: overdue
    org.create_user(org.account("norole"), "nora", [KeySeed(80)])  # its account fails
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})

    execution = stack.run({})

    assert execution.error == "KeyRotation.AccountsFailed"
    assert not leak_check.scan()
    (document,) = emf_documents(leak_check.log_text, "summarize")
    values = {name: document[name] for name in document if not name.startswith("_") and name != "service"}
    assert values == {
        "KeysRotated": [1.0],
        "KeysDisabled": [1.0],
        "KeysDeleted": [1.0],
        "AccountsFailed": [1.0],
        "NotificationsFailed": [0.0],
        "OverdueKeys": [1.0],
    }
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    published = {
        (directive["Namespace"], metric["Name"], json.dumps({name: document[name] for name in dimensions}))
        for metric in directive["Metrics"]
        for dimensions in directive["Dimensions"]
    }
    environment = stack.functions["SummarizeFunction"].environment  # as the template deploys it
    assert directive["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"] == "KeyRotation"
    assert document["service"] == environment["POWERTOOLS_SERVICE_NAME"]

    alarms = {alarm["MetricName"]: alarm for alarm in aws.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert set(alarms) == {"AccountsFailed", "OverdueKeys"}
    for alarm in alarms.values():
        dimensions = json.dumps({d["Name"]: d["Value"] for d in alarm["Dimensions"]})
        assert (alarm["Namespace"], alarm["MetricName"], dimensions) in published, alarm["AlarmName"]
        assert alarm["AlarmActions"] == [stack.outputs["AlertTopicArn"]]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
        assert values[alarm["MetricName"]][0] > alarm["Threshold"], "this run breaches both alarms"

    body = json.loads(
        aws.client("cloudwatch").get_dashboard(DashboardName=stack.resources["RotationDashboard"])["DashboardBody"]
    )
    charted = set()
    for widget in body["widgets"]:
        namespace = ""
        for row in widget["properties"].get("metrics", []):
            namespace = namespace if row[0] == "." else row[0]  # "." repeats the row above
            if namespace == "KeyRotation":
                charted.add(row[1])
        if widget["type"] == "alarm":
            assert sorted(widget["properties"]["alarms"]) == sorted(a["AlarmArn"] for a in alarms.values())
    assert charted == set(values)
