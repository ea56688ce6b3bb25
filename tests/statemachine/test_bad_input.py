"""Bad input and bad settings (issue 12): one clear error, at the start, with nothing touched.

Each row of :data:`CORPUS` is something a hostile or careless operator can do: an execution input, stack
parameters that pass the template's own constraints, or both. The real state machine runs it against an
organization where a user is due for rotation; the run must fail with exactly the row's error name,
its cause must name the row's offending value, and afterwards no IAM key, secret, ledger item, run
object or email may have changed. :func:`test_the_same_organization_does_change_when_nothing_is_wrong`
shows the check would see a change.

Every cause, state payload and log line stays under :data:`keyrotation.limits.MAX_CAUSE_CHARS`
characters, however large the input. The security team's run report of the failed run (issue 9) is the one
other function called; it changes nothing either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID

from keyrotation.limits import MAX_CAUSE_CHARS
from localaws import REGION, KeySeed, LocalAws, Organization, Stack

pytestmark = pytest.mark.statemachine

SENDER = "key-rotation@example.com"
RAW = object()  # marks an input given as raw JSON text


@dataclass(frozen=True)
class Case:
    """One bad thing, the error name it must get, and what the cause must name.

    ``document`` may hold ``{alpha}``/``{beta}`` (the accounts' ids, filled in when the case runs); a
    ``str`` document with ``raw=True`` is sent as the execution input's JSON text itself.
    """

    id: str
    error: str
    names: tuple[str, ...]
    document: Any = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    raw: bool = False
    verified: tuple[str, ...] = (SENDER,)
    failed_on_main: bool = False  # the run did not fail so, with nothing touched, before issue 12


def _many(count: int, value: str) -> list[str]:
    return [value] * count


INVALID_INPUT, INVALID_CONFIGURATION = "KeyRotation.InvalidInput", "KeyRotation.InvalidConfiguration"

CORPUS = [
    # -- 1. null never means "everything" ---------------------------------------------------------------
    Case("input-null", INVALID_INPUT, ("null",), "null", raw=True, failed_on_main=True),
    Case("accounts-null", INVALID_INPUT, ("accounts", "null"), {"accounts": None}, failed_on_main=True),
    Case("dryRun-null", INVALID_INPUT, ("dryRun",), {"dryRun": None}),
    Case("accounts-null-item", INVALID_INPUT, ("$.accounts[0]",), {"accounts": [None]}, failed_on_main=True),
    Case(
        "accounts-null-among-good",
        INVALID_INPUT,
        ("$.accounts[1]",),
        {"accounts": ["{alpha}", None]},
        failed_on_main=True,
    ),
    Case("both-null", INVALID_INPUT, ("null",), {"accounts": None, "dryRun": None}, failed_on_main=True),
    # -- the execution input's shape --------------------------------------------------------------------
    Case("input-list", INVALID_INPUT, ("JSON object", "list"), ["{alpha}"]),
    Case("input-string", INVALID_INPUT, ("JSON object", "str"), '"123456789012"', raw=True),
    Case("input-number", INVALID_INPUT, ("JSON object", "int"), "42", raw=True),
    Case("input-true", INVALID_INPUT, ("JSON object", "bool"), "true", raw=True),
    Case("unknown-field", INVALID_INPUT, ("acounts",), {"acounts": ["{alpha}"]}),
    Case("unknown-field-case", INVALID_INPUT, ("Accounts",), {"Accounts": ["{alpha}"]}),
    Case("accounts-empty", INVALID_INPUT, ("non-empty list",), {"accounts": []}),
    Case("accounts-string", INVALID_INPUT, ("non-empty list",), {"accounts": "{alpha}"}),
    Case("accounts-object", INVALID_INPUT, ("non-empty list",), {"accounts": {"id": "{alpha}"}}),
    Case("account-short", INVALID_INPUT, ("'12345'",), {"accounts": ["12345"]}),
    Case("account-number", INVALID_INPUT, ("123456789012",), {"accounts": [123456789012]}),
    Case("account-spaces", INVALID_INPUT, ("' {alpha}'",), {"accounts": [" {alpha}"]}),
    Case("account-dashes", INVALID_INPUT, ("1234-5678-9012",), {"accounts": ["1234-5678-9012"]}),
    Case("account-object", INVALID_INPUT, ("'id'",), {"accounts": [{"id": "{alpha}"}]}),
    Case("account-not-member", INVALID_INPUT, ("999999999999",), {"accounts": ["{alpha}", "999999999999"]}),
    Case("dryRun-string", INVALID_INPUT, ("dryRun", "'yes'"), {"dryRun": "yes"}),
    Case("dryRun-number", INVALID_INPUT, ("dryRun", "1"), {"dryRun": 1}),
    Case(
        "account-excluded",
        INVALID_INPUT,
        ("{beta}", "ExcludeAccounts"),
        {"accounts": ["{beta}"]},
        parameters={"ExcludeAccounts": "{beta}"},
    ),
    # -- 7. a huge input gets a short cause naming the first few and counting the rest -------------------
    Case(
        "huge-malformed-accounts",
        INVALID_INPUT,
        ("'x0'", "and 19995 more"),
        {"accounts": [f"x{n}" for n in range(20000)]},
        failed_on_main=True,
    ),
    Case(
        "huge-unknown-fields",
        INVALID_INPUT,
        ("field0000", "and 4995 more"),
        {f"field{n:04d}": n for n in range(5000)},
        failed_on_main=True,
    ),
    Case(
        "huge-not-members",
        INVALID_INPUT,
        ("100000000000", "and 9995 more"),
        {"accounts": [str(100000000000 + n) for n in range(10000)]},
        failed_on_main=True,
    ),
    # -- 2. every setting checked once, at the start ---------------------------------------------------
    Case(
        "rotation-period-huge",
        INVALID_CONFIGURATION,
        ("RotationPeriodDays", "3000000", "3650"),
        parameters={"RotationPeriodDays": "3000000", "InactivePeriodDays": "3000001", "DeletePeriodDays": "3000002"},
        failed_on_main=True,
    ),
    Case(
        "warning-days-huge",
        INVALID_CONFIGURATION,
        ("WarningDays", "999999999", "365"),
        parameters={"WarningDays": "999999999"},
        failed_on_main=True,
    ),
    Case(
        "inactive-period-huge",
        INVALID_CONFIGURATION,
        ("InactivePeriodDays", "5000"),
        parameters={"InactivePeriodDays": "5000", "DeletePeriodDays": "5001"},
        failed_on_main=True,
    ),
    Case(
        "delete-period-huge",
        INVALID_CONFIGURATION,
        ("DeletePeriodDays", "100000"),
        parameters={"DeletePeriodDays": "100000"},
        failed_on_main=True,
    ),
    Case(
        "warning-days-beyond-a-year",
        INVALID_CONFIGURATION,
        ("WarningDays", "366"),
        parameters={"WarningDays": "366"},
        failed_on_main=True,
    ),
    Case(
        "schedule-unreadable",
        INVALID_CONFIGURATION,
        ("ScheduleExpression", "cron(0 6 L * ? *)", "'L' is not supported"),
        parameters={"ScheduleExpression": "cron(0 6 L * ? *)"},
        failed_on_main=True,
    ),
    Case(
        "schedule-too-rare",
        INVALID_CONFIGURATION,
        ("ScheduleExpression", "30 days", "InactivePeriodDays - RotationPeriodDays (15)"),
        parameters={"ScheduleExpression": "rate(30 days)"},
        failed_on_main=True,
    ),
    Case(
        "rotation-equals-inactive",
        INVALID_CONFIGURATION,
        ("RotationPeriodDays < InactivePeriodDays", "90, 90, 100"),
        parameters={"RotationPeriodDays": "90", "InactivePeriodDays": "90"},
    ),
    Case(
        "inactive-equals-delete",
        INVALID_CONFIGURATION,
        ("RotationPeriodDays < InactivePeriodDays", "75, 100, 100"),
        parameters={"InactivePeriodDays": "100", "DeletePeriodDays": "100"},
    ),
    Case(
        "include-ou-missing",
        INVALID_CONFIGURATION,
        ("IncludeOUs", "ou-zzzz-12345678", "does not exist"),
        parameters={"IncludeOUs": "ou-zzzz-12345678"},
        failed_on_main=True,
    ),
    Case(
        "include-root-missing",
        INVALID_CONFIGURATION,
        ("IncludeOUs", "r-zzzz", "does not exist"),
        parameters={"IncludeOUs": "r-zzzz"},
        failed_on_main=True,
    ),
    Case(
        "include-ous-one-missing",
        INVALID_CONFIGURATION,
        ("IncludeOUs", "ou-zzzz-87654321"),
        parameters={"IncludeOUs": "{root},ou-zzzz-87654321"},
        failed_on_main=True,
    ),
    Case(
        "exempt-tag-is-owner-tag",
        INVALID_CONFIGURATION,
        ("ExemptTagKey", "OwnerEmailTagKey", "email"),
        parameters={"ExemptTagKey": "email", "OwnerEmailTagKey": "email"},
        failed_on_main=True,
    ),
    Case(
        "exempt-tag-is-owner-tag-in-other-case",
        INVALID_CONFIGURATION,
        ("ExemptTagKey", "OwnerEmailTagKey", "Owner"),
        parameters={"ExemptTagKey": "Owner", "OwnerEmailTagKey": "owner"},
        failed_on_main=True,
    ),
    # -- 3. mail that cannot be sent is found before keys move -----------------------------------------
    Case(
        "sender-trailing-dot",
        INVALID_CONFIGURATION,
        ("SenderEmail", "'keys@example.com.'"),
        parameters={"SenderEmail": "keys@example.com."},
        verified=("keys@example.com.",),
        failed_on_main=True,
    ),
    Case(
        "sender-double-dot",
        INVALID_CONFIGURATION,
        ("SenderEmail", "'key..rotation@example.com'"),
        parameters={"SenderEmail": "key..rotation@example.com"},
        verified=("key..rotation@example.com",),
        failed_on_main=True,
    ),
    Case(
        "sender-leading-dot",
        INVALID_CONFIGURATION,
        ("SenderEmail", "'.keys@example.com'"),
        parameters={"SenderEmail": ".keys@example.com"},
        verified=(".keys@example.com",),
        failed_on_main=True,
    ),
    Case(
        "sender-hyphen-label",
        INVALID_CONFIGURATION,
        ("SenderEmail", "'keys@-example.com'"),
        parameters={"SenderEmail": "keys@-example.com"},
        verified=("keys@-example.com",),
        failed_on_main=True,
    ),
    Case(
        "security-team-trailing-dot",
        INVALID_CONFIGURATION,
        ("SecurityTeamEmail", "'security@example.com.'"),
        parameters={"SenderEmail": SENDER, "SecurityTeamEmail": "security@example.com."},
        failed_on_main=True,
    ),
    Case(
        "security-team-double-dot",
        INVALID_CONFIGURATION,
        ("SecurityTeamEmail", "'sec..team@example.com'"),
        parameters={"SenderEmail": SENDER, "SecurityTeamEmail": "sec..team@example.com"},
        failed_on_main=True,
    ),
    Case(
        "security-team-without-sender-bad",
        INVALID_CONFIGURATION,
        ("SecurityTeamEmail", "'security@example.com.'"),
        parameters={"SecurityTeamEmail": "security@example.com."},
        failed_on_main=True,
    ),
    Case(
        "sender-not-verified",
        "KeyRotation.SenderNotVerified",
        ("SenderEmail", SENDER, "verify"),
        parameters={"SenderEmail": SENDER, "SecurityTeamEmail": "security@example.com"},
        verified=(),
        failed_on_main=True,
    ),
    Case(
        "sender-other-address-verified",
        "KeyRotation.SenderNotVerified",
        ("SenderEmail", SENDER),
        parameters={"SenderEmail": SENDER},
        verified=("someone-else@example.com",),
        failed_on_main=True,
    ),
    Case(
        "alert-email-trailing-dot",
        INVALID_CONFIGURATION,
        ("AlertEmail", "'oncall@example.com.'"),
        parameters={"AlertEmail": "oncall@example.com."},
    ),
    Case(
        "bad-input-and-bad-settings",
        INVALID_CONFIGURATION,
        ("WarningDays",),
        {"accounts": ["{alpha}"]},
        parameters={"WarningDays": "999999999"},
        failed_on_main=True,
    ),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace(f"{{{name}}}", replacement)
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_fill(item, names) for item in value)
    if isinstance(value, dict):
        return {_fill(k, names): _fill(v, names) for k, v in value.items()}
    return value


def world(org: Organization) -> dict[str, Any]:
    """Everything a bad run must leave as it was: keys, secrets, ledger, run objects, emails."""
    from moto.s3.models import s3_backends
    from moto.ses.models import ses_backends

    keys = {}
    secrets = {}
    for account_id in [org.management_account, *org.accounts.values()]:
        iam = org.client("iam", account_id)
        for user in iam.list_users()["Users"]:
            listed = iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
            keys[(account_id, user["UserName"])] = sorted((key["AccessKeyId"], key["Status"]) for key in listed)
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[account_id][REGION]
        secrets[account_id] = sorted((name, sorted(secret.versions)) for name, secret in backend.secrets.items())
    db = org.client("dynamodb", org.management_account)
    ledger = [item for table in db.list_tables()["TableNames"] for item in db.scan(TableName=table)["Items"]]
    objects = sorted(
        f"{bucket.name}/{key}"
        for bucket in s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.values()
        for key in bucket.keys
    )
    emails = sum(len(backend.sent_messages) for regions in ses_backends.values() for backend in regions.values())
    return {"keys": keys, "secrets": secrets, "ledger": ledger, "objects": objects, "emails": emails}


def seed(org: Organization) -> dict[str, str]:
    """Users due for every action, tagged with an owner, in two accounts; the names the corpus refers to."""
    alpha, beta = org.account("alpha"), org.account("beta")
    org.create_user(alpha, "alice", [KeySeed(80)], tags={"email": "alice@example.com", "owner": "alice@example.com"})
    org.create_user(alpha, "carol", [KeySeed(95), KeySeed(20)], tags={"email": "carol@example.com"})
    org.create_user(beta, "bob", [KeySeed(120, status="Inactive")], tags={"email": "bob@example.com"})
    root = org.client("organizations", org.management_account).list_roots()["Roots"][0]["Id"]
    return {"alpha": alpha, "beta": beta, "root": root}


def start(stack: Stack, text: str) -> Any:
    sfn = stack.admin.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name="bad-input", input=text)["executionArn"]
    return stack.wait(arn)


def _case(case: Case) -> Any:
    return pytest.param(case, id=case.id)


def test_the_corpus_is_large_and_every_case_is_distinct() -> None:
    assert len(CORPUS) >= 40
    assert len({case.id for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", [_case(case) for case in CORPUS])
def test_bad_input_or_settings_fail_at_once_naming_them_and_change_nothing(
    aws: LocalAws, org: Organization, case: Case
) -> None:
    names = seed(org)
    for address in case.verified:
        aws.verify_sender(address)
    stack = aws.deploy({"DryRun": "false", **_fill(case.parameters, names)})
    before = world(org)

    text = case.document if case.raw else json.dumps(_fill(case.document, names))
    execution = start(stack, text)

    assert execution.status == "FAILED"
    assert execution.error == case.error, execution.cause
    cause = execution.cause or ""
    for name in _fill(case.names, names):
        assert name in cause, f"{name!r} not named in {cause[:2000]!r}"
    assert len(cause) <= MAX_CAUSE_CHARS
    # ListAccounts refused it; the run report (issue 9) says so, and touches nothing either.
    assert [call.logical_id for call in aws.lambdas.invocations] == ["ListAccountsFunction", "SendRunReportFunction"]
    reported = aws.lambdas.invocations[-1].event["report"]["failure"]
    assert reported == {"state": "ListAccounts", "error": case.error, "cause": cause}
    assert world(org) == before
    for event in execution.history:
        assert len(json.dumps(event, default=str)) <= 2 * len(text) + MAX_CAUSE_CHARS + 4096


def test_the_same_organization_does_change_when_nothing_is_wrong(aws: LocalAws, org: Organization) -> None:
    names = seed(org)
    aws.verify_sender(SENDER)
    stack = aws.deploy({"DryRun": "false", "SenderEmail": SENDER, "SecurityTeamEmail": "security@example.com"})
    before = world(org)

    execution = start(stack, json.dumps({"accounts": [names["alpha"], names["beta"]]}))

    assert execution.status == "SUCCEEDED", execution.cause
    after = world(org)
    assert {what for what in before if before[what] != after[what]} == {
        "keys",
        "secrets",
        "ledger",
        "objects",
        "emails",
    }


def test_a_compact_replay_runs_exactly_the_failed_accounts_and_a_wrong_one_is_refused(
    aws: LocalAws, org: Organization
) -> None:
    names = seed(org)
    norole = org.account("norole")
    org.create_user(norole, "nora", [KeySeed(80)])
    stack = aws.deploy({"DryRun": "false"})
    failed = stack.run({})
    assert failed.error == "KeyRotation.AccountsFailed"
    cause = failed.cause_json
    assert cause["failedCount"] == 1 and cause["replayInput"] == {"accounts": [norole]}

    before = world(org)
    wrong = stack.run({"replayOf": "no-such-run"})
    assert wrong.error == INVALID_INPUT and "no-such-run" in (wrong.cause or "")
    assert world(org) == before
    both = stack.run({"replayOf": failed.name, "accounts": [names["alpha"]]})
    assert both.error == INVALID_INPUT and "either" in (both.cause or "")

    org.deploy_member_role(norole)
    replay = stack.run({"replayOf": failed.name})
    assert replay.status == "SUCCEEDED", replay.cause
    assert replay.output["accounts"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert len(org.client("iam", norole).list_access_keys(UserName="nora")["AccessKeyMetadata"]) == 2
