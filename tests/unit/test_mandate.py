"""A function invoked directly, not by the state machine, keeps to the stack's DryRun and ExcludeAccounts.

Anyone allowed lambda:InvokeFunction in the rotation account can call a function with any event.
The event's ``"dryRun": false`` must not talk a function out of the stack's ``DryRun=true``, and an
account in ``ExcludeAccounts`` must not be entered whatever the event names: each function checks
both from its own configuration, before it assumes any role.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from localaws import FunctionError, KeySeed, LocalAws, Organization, Stack

MEMBER_FUNCTIONS = [
    "AuditKeysFunction",
    "CreateKeyFunction",
    "VerifyKeyFunction",
    "StoreSecretFunction",
    "DisableKeyFunction",
    "DeleteKeyFunction",
    "DiscardNewKeyFunction",
]
MUTATING = ["CreateKeyFunction", "StoreSecretFunction", "DisableKeyFunction", "DeleteKeyFunction", "DiscardNewKeyFunction"]


@pytest.fixture(autouse=True)
def unvalidated_state_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The state machine only needs to exist here (tests/statemachine/ runs the real definition)."""
    monkeypatch.setattr(StepFunctionsParserBackend, "_validate_definition", staticmethod(lambda definition: None))


def event(org: Organization, key_id: str, dry_run: bool) -> dict[str, Any]:
    alpha = org.account("alpha")
    return {
        "account": {"id": alpha, "name": "alpha", "email": "alpha@example.com"},
        "run": {"runId": "direct", "dryRun": dry_run, "startedAt": "2026-11-24T06:00:00Z", "expiresAt": "4102444800"},
        "action": {"type": "rotate", "userName": "alice", "keyId": key_id, "reason": "asked directly"},
        "created": {"newKeyId": key_id, "versionId": "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"},
    }


def refused(
    aws: LocalAws, stack: Stack, logical_id: str, document: dict[str, Any]
) -> tuple[str, list[tuple[str, str]]]:
    with aws.calls.record() as calls, pytest.raises(FunctionError) as raised:
        stack.invoke(logical_id, document)
    return f"{raised.value.error_type}: {raised.value.message}", list(calls)


@pytest.mark.parametrize("logical_id", MUTATING)
def test_a_stack_in_dry_run_mutates_nothing_whatever_the_event_says(
    aws: LocalAws, org: Organization, logical_id: str
) -> None:
    stack = aws.deploy({"DryRun": "true"})
    (key_id,) = org.create_user(org.account("alpha"), "alice", [KeySeed(120, status="Inactive")])
    error, calls = refused(aws, stack, logical_id, event(org, key_id, dry_run=False))
    assert error.startswith("KeyRotation.UnsafeAction") and "DryRun is true" in error, error
    assert not [call for call in calls if call[0] in ("iam", "secretsmanager") and not call[1].startswith(("Get", "List", "Describe"))]
    assert [key["Status"] for key in org.client("iam", org.account("alpha")).list_access_keys(UserName="alice")["AccessKeyMetadata"]] == ["Inactive"]


@pytest.mark.parametrize("logical_id", MEMBER_FUNCTIONS)
def test_an_excluded_account_is_never_entered(aws: LocalAws, org: Organization, logical_id: str) -> None:
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.account("alpha")})
    (key_id,) = org.create_user(org.account("alpha"), "alice", [KeySeed(120, status="Inactive")])
    error, calls = refused(aws, stack, logical_id, event(org, key_id, dry_run=False))
    assert error.startswith("KeyRotation.UnsafeAction") and "ExcludeAccounts" in error, error
    assert ("sts", "AssumeRole") not in calls, "the role was assumed before the exclusion was checked"
