"""Which accounts a run covers, and the execution input that can narrow it.

Execution input (all optional)::

    {"accounts": ["111122223333", ...], "dryRun": true}
    {"replayOf": "<runId>", "dryRun": true}

``replayOf`` runs again the accounts that failed in that run (as the ledger
recorded them): the compact replay input of a run with many failed accounts.

Only ``{}`` (or an input without ``accounts``) means "every account in scope";
``null`` anywhere in the input is refused, never read as "everything". An
account id that is malformed, not an ACTIVE member of the organization, or
excluded by the stack's parameters fails the run before any account is touched.
Messages name the first few offending values and count the rest
(:mod:`keyrotation.limits`), however large the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from keyrotation.config import ScopeConfig
from keyrotation.errors import AlreadyRunning, InvalidInput
from keyrotation.events import Account
from keyrotation.ids import is_account_id
from keyrotation.limits import quote, some
from keyrotation.paging import items

_INPUT_FIELDS = frozenset({"accounts", "dryRun", "replayOf"})
#: How a run id (an execution name) is written.
_RUN_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")  # an execution name, or <name>@<startTime> (Ledger.claim_run)


@dataclass(frozen=True)
class RunRequest:
    accounts: tuple[str, ...] | None = None
    dry_run: bool = False
    replay_of: str | None = None


def _nulls(document: Any, where: str) -> Iterator[str]:
    """The paths of the ``null`` values in ``document`` (``$`` is the input itself)."""
    if document is None:
        yield where
    elif isinstance(document, dict):
        for name, value in document.items():
            yield from _nulls(value, f"{where}.{name}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _nulls(value, f"{where}[{index}]")


def parse_request(document: Any) -> RunRequest:
    """Validate the execution input; raise :class:`InvalidInput` naming what is wrong.

    >>> parse_request({}), parse_request({"dryRun": True}).dry_run
    (RunRequest(accounts=None, dry_run=False, replay_of=None), True)
    >>> parse_request({"accounts": None})
    Traceback (most recent call last):
    ...
    keyrotation.errors.InvalidInput: execution input has null at $.accounts; null never means "every account": \
start the execution with {} to run every account in scope, or leave the field out
    """
    nulls = list(_nulls(document, "$"))
    if nulls:
        raise InvalidInput(
            f"execution input has null at {some(nulls, quoted=False)}; null never means "
            '"every account": start the execution with {} to run every account in scope, or leave the field out'
        )
    if not isinstance(document, dict):
        raise InvalidInput(f"execution input must be a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - _INPUT_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown execution input field(s): {some(unknown)}; allowed: accounts, dryRun, replayOf")
    dry_run = document.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput(f"dryRun must be true or false, got {dry_run!r}")
    if "replayOf" in document:
        replay_of = document["replayOf"]
        if "accounts" in document:
            raise InvalidInput("give either accounts or replayOf, not both")
        if not isinstance(replay_of, str) or not _RUN_ID.match(replay_of):
            raise InvalidInput(f"replayOf must be the run id of an earlier run, got {quote(replay_of)}")
        return RunRequest(dry_run=dry_run, replay_of=replay_of)
    if "accounts" not in document:
        return RunRequest(dry_run=dry_run)
    accounts = document["accounts"]
    if not isinstance(accounts, list) or not accounts:
        raise InvalidInput("accounts must be a non-empty list of 12-digit account ids")
    malformed = [account for account in accounts if not isinstance(account, str) or not is_account_id(account)]
    if malformed:
        raise InvalidInput(f"malformed account id(s) in input: {some(malformed)}")
    return RunRequest(accounts=tuple(dict.fromkeys(accounts)), dry_run=dry_run)


def resolve_replay(request: RunRequest, recorded: list[str] | None) -> RunRequest:
    """``request`` with the accounts a ``replayOf`` names (``recorded``: the ledger's, None when it has none).

    >>> resolve_replay(RunRequest(replay_of="run-7"), ["111122223333"]).accounts
    ('111122223333',)
    """
    if request.replay_of is None:
        return request
    if not recorded:
        raise InvalidInput(
            f"replayOf {quote(request.replay_of)}: the ledger records no failed account of that run "
            "(a wrong run id, a run that did not fail, or one older than the ledger keeps runs)"
        )
    return RunRequest(accounts=tuple(dict.fromkeys(recorded)), dry_run=request.dry_run, replay_of=request.replay_of)


def _account(record: dict[str, Any]) -> Account:
    return Account(account_id=record["Id"], name=record.get("Name", ""), email=record.get("Email", ""))


def _accounts_under(org: Any, parent_id: str) -> Iterator[dict[str, Any]]:
    yield from items(org, "list_accounts_for_parent", "Accounts", ParentId=parent_id)
    for unit in items(org, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent_id):
        yield from _accounts_under(org, unit["Id"])


def accounts_in_scope(org: Any, scope: ScopeConfig) -> list[Account]:
    """ACTIVE accounts, minus excluded ones, limited to ``include_ous`` (with child OUs) when set."""
    found: Iterable[dict[str, Any]]
    if scope.include_ous:
        records: dict[str, dict[str, Any]] = {}
        for unit in sorted(scope.include_ous):
            records.update({record["Id"]: record for record in _accounts_under(org, unit)})
        found = records.values()
    else:
        found = items(org, "list_accounts", "Accounts")
    accounts = [
        _account(record)
        for record in found
        if record.get("Status", record.get("State")) == "ACTIVE" and record["Id"] not in scope.exclude_accounts
    ]
    return sorted(accounts, key=lambda account: account.account_id)


def select(in_scope: list[Account], request: RunRequest, scope: ScopeConfig) -> list[Account]:
    """The accounts of this run: all in scope, or exactly those the input names."""
    if request.accounts is None:
        return in_scope
    by_id = {account.account_id: account for account in in_scope}
    excluded = [account for account in request.accounts if account in scope.exclude_accounts]
    if excluded:
        raise InvalidInput(f"account(s) excluded by ExcludeAccounts: {some(excluded, quoted=False)}")
    missing = [account for account in request.accounts if account not in by_id]
    if missing:
        raise InvalidInput(
            f"account(s) not an ACTIVE member of the organization in scope: {some(missing, quoted=False)}"
        )
    return [by_id[account] for account in request.accounts]


def ensure_only_run(stepfunctions: Any, state_machine_arn: str, execution_name: str) -> None:
    """Fail unless this is the oldest RUNNING execution of the state machine.

    Of two executions started together, the later one (by start time, then
    name) fails, so exactly one goes on.
    """
    running = list(
        items(stepfunctions, "list_executions", "executions", stateMachineArn=state_machine_arn, statusFilter="RUNNING")
    )
    me = next((execution for execution in running if execution["name"] == execution_name), None)
    for other in running:
        if other["name"] == execution_name:
            continue
        if me is None or (other["startDate"], other["name"]) < (me["startDate"], me["name"]):
            raise AlreadyRunning(
                f"execution {other['name']} of this state machine is still running; "
                "this one stops without changing anything"
            )
