"""The examples of the modules that check settings and input (issue 12) hold, and the checks' bounds."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from types import ModuleType

import pytest

from keyrotation import limits, organization, settings_check, summary


@pytest.mark.parametrize("module", [settings_check, limits, organization, summary], ids=lambda module: module.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried >= 1 and failures == 0


def test_the_failure_cause_of_a_run_where_every_account_failed_stays_small() -> None:
    """300 failed accounts, each with a long cause: the AccountsFailed cause measured 40,049 bytes before."""
    account_ids = [str(100000000000 + n) for n in range(300)]
    items = [
        {"accountId": account_id, "status": "FAILED", "error": "KeyRotation.MemberRoleUnavailable", "cause": "x" * 2000}
        for account_id in account_ids
    ]
    summary_, failed = summary.summarize("run-big", account_ids, items)
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
