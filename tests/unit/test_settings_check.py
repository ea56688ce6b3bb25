"""The examples of the modules that check settings and input (issue 12) hold, and the checks' bounds."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from types import ModuleType

import pytest

from keyrotation import compliance, limits, organization, run_metrics, settings_check, summary
from keyrotation.errors import InvalidConfiguration
from keyrotation.ledger_records import AccountResult, AccountStatus, run_records
from localaws.defaults import function_environment

MODULES = [settings_check, limits, organization, summary, compliance, run_metrics]


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried >= 1 and failures == 0


def test_the_failure_cause_of_a_run_where_every_account_failed_stays_small() -> None:
    """300 failed accounts, each with a long cause: the AccountsFailed cause measured 40,049 bytes before."""
    account_ids = [str(100000000000 + n) for n in range(300)]
    records = [
        AccountResult(account_id, AccountStatus.FAILED, "KeyRotation.MemberRoleUnavailable", "x" * 2000)
        for account_id in account_ids
    ]
    summary_, failed = summary.summarize("run-big", account_ids, records)
    replay = summary.replay_input(failed, dry_run=False, run_id="run-big")
    cause = json.dumps(summary.failure_cause(summary_, replay))

    assert len(cause) <= limits.MAX_FAILURE_CAUSE_CHARS
    assert replay == {"replayOf": "run-big"}
    assert json.loads(cause)["failedCount"] == 300
    assert [failure["accountId"] for failure in json.loads(cause)["failedAccounts"]] == account_ids[:5]
    assert len(json.dumps({"summary": summary_, "replayInput": replay})) < 100_000  # a state payload, bounded


def test_a_small_replay_still_lists_its_accounts() -> None:
    assert summary.replay_input(["111122223333"], dry_run=True, run_id="r") == {
        "accounts": ["111122223333"],
        "dryRun": True,
    }


def test_every_error_name_is_in_the_readme_runbook() -> None:
    """Each error the corpus expects, and every error of the package, has a row: its cause and its fix."""
    from keyrotation import errors
    from tests.statemachine.test_bad_input import CORPUS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    runbook = readme.split("## Runbook: error names", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in runbook.splitlines() if line.startswith("| `KeyRotation.")}
    named = {name.strip("` ") for row in rows for name in row.split(",")}
    package = {
        cls.__name__
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.KeyRotationError) and cls is not errors.KeyRotationError
    }
    expected = {case.error for case in CORPUS} | package | {"KeyRotation.AccountsFailed", "KeyRotation.NoResult"}
    assert expected - named == set()
    assert all(
        len([cell for cell in line.split("|") if cell.strip()]) == 3
        for line in runbook.splitlines()
        if line.startswith("| `")
    )


def _list_accounts_settings(**changes: str) -> dict[str, str]:
    """ListAccounts' environment as the template deploys it by default (it checks every setting), with ``changes``."""
    return {**function_environment("ListAccountsFunction"), **changes}


def test_the_new_notification_settings_are_checked_at_the_start() -> None:
    settings = settings_check.check_settings(_list_accounts_settings())
    assert settings.alert_email is None and settings.dry_run_notify_owners is False
    chosen = settings_check.check_settings(
        _list_accounts_settings(ALERT_EMAIL="oncall@example.com", DRY_RUN_NOTIFY_OWNERS="true")
    )
    assert chosen.alert_email == "oncall@example.com" and chosen.dry_run_notify_owners is True


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("ALERT_EMAIL", "oncall@example..com", "AlertEmail"),
        ("ALERT_EMAIL", "on call@example.com", "AlertEmail"),
        ("DRY_RUN_NOTIFY_OWNERS", "yes", "DRY_RUN_NOTIFY_OWNERS"),
        ("DRY_RUN_NOTIFY_OWNERS", "", "DRY_RUN_NOTIFY_OWNERS"),
    ],
)
def test_a_bad_new_setting_is_refused_naming_it(variable: str, value: str, named: str) -> None:
    with pytest.raises(InvalidConfiguration, match=named):
        settings_check.check_settings(_list_accounts_settings(**{variable: value}))


def test_overdue_keys_left_after_the_run_are_those_the_run_did_not_disable() -> None:
    items = [
        {"kind": "overdue", "accountId": "111122223333", "keyIds": ["AKIA1", "AKIA2", "AKIA3"]},
        {"kind": "overdue", "accountId": "444455556666", "keyIds": ["AKIA4"]},
        {"kind": "action", "type": "disable", "keyId": "AKIA1", "status": "done"},
        {"kind": "action", "type": "disable", "keyId": "AKIA2", "status": "failed"},  # still Active
        {"kind": "action", "type": "rotate", "keyId": "AKIA3", "status": "done"},  # replaced, old key still Active
        {"kind": "email", "status": "failed"},
        {"kind": "email", "status": "sent"},
    ]
    real, _ = summary.summarize("run-1", [], run_records(items))
    assert real["keys"]["overdue"] == 3 and real["keys"]["disabled"] == 1 and real["notices"]["emailsFailed"] == 1
    assert run_metrics.run_metrics(real)["OverdueKeys"] == 3
    assert run_metrics.run_metrics(real)["NotificationsFailed"] == 1


def test_overdue_keys_of_users_the_audit_did_not_read_count_as_they_are() -> None:
    items = [
        {"kind": "overdue", "accountId": "111122223333", "keyIds": ["AKIA1"], "unread": 2},
        {"kind": "overdue", "accountId": "444455556666", "keyIds": [], "unread": 1},
        {"kind": "action", "type": "disable", "keyId": "AKIA1", "status": "done"},
    ]
    real, _ = summary.summarize("run-1", [], run_records(items))
    assert real["keys"]["overdue"] == 3  # the run did nothing to a user it did not read


def test_a_dry_run_counts_under_would_names_and_publishes_no_action() -> None:
    items = [
        {"kind": "overdue", "accountId": "111122223333", "keyIds": ["AKIA1"]},
        {"kind": "action", "type": "disable", "keyId": "AKIA1", "status": "planned", "dryRun": True},
        {"kind": "action", "type": "rotate", "keyId": "AKIA2", "status": "planned", "dryRun": True},
        {"kind": "notice", "type": "disable-soon"},
    ]
    dry, _ = summary.summarize("run-1", [], run_records(items), dry_run=True)
    assert dry["dryRun"] is True
    assert dry["keys"] == {"wouldRotate": 1, "wouldDisable": 1, "wouldDelete": 0, "wouldWarn": 1, "overdue": 1}
    assert not {"rotated", "disabled", "deleted", "warned"} & set(dry["keys"])
    published = run_metrics.run_metrics(dry)
    assert (published["KeysRotated"], published["KeysDisabled"], published["OverdueKeys"]) == (0, 0, 1)
    assert summary.key_counts(dry) == {"rotated": 1, "disabled": 1, "deleted": 0, "warned": 1, "overdue": 1}
