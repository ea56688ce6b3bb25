"""An excluded account written into the run's account list is refused before anything is read there.

Only ListAccounts' role can write the run bucket (tests/unit/test_run_bucket_policy.py). Should an
excluded account reach the per-account workflow anyway, as if someone had written it into
``accounts.json``, the audit refuses it before it assumes the member role, and so does every action
function invoked with it: no IAM call is made in that account, no key changes.
"""

from __future__ import annotations

import pytest

from localaws import FunctionError, KeySeed, LocalAws

pytestmark = pytest.mark.statemachine

ACTION_FUNCTIONS = (
    "CreateKeyFunction",
    "VerifyKeyFunction",
    "StoreSecretFunction",
    "DisableKeyFunction",
    "DeleteKeyFunction",
    "DiscardNewKeyFunction",
)


def test_an_excluded_account_in_the_list_is_refused_and_nothing_is_touched_there(aws: LocalAws) -> None:
    org = aws.organization(["alpha", "beta"])
    beta = org.account("beta")
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": f"{org.management_account},{beta}"})
    old, older = org.create_user(beta, "bob", [KeySeed(95, used_days_ago=1), KeySeed(120, status="Inactive")])
    before = org.client("iam", beta).list_access_keys(UserName="bob")["AccessKeyMetadata"]

    with aws.calls.record() as calls:
        execution = stack.run_account(beta, run_id="tampered")  # the Map's item, had beta been written in
        errors = []
        for logical_id in ACTION_FUNCTIONS:
            event = {
                "account": {"id": beta, "name": "beta", "email": "beta@example.com"},
                "run": {"runId": "tampered", "dryRun": False},
                "action": {"type": "disable", "userName": "bob", "keyId": old, "reason": "tampered"},
                "created": {"newKeyId": older, "versionId": "v1"},
            }
            with pytest.raises(FunctionError) as raised:
                stack.invoke(logical_id, event)
            errors.append(raised.value.error_type)

    assert execution.status == "FAILED" and execution.error == "KeyRotation.UnsafeAction", execution.cause
    assert errors == ["KeyRotation.UnsafeAction"] * len(ACTION_FUNCTIONS)
    touched = sorted({f"{service}:{operation}" for service, operation in calls if service in ("sts", "iam")})
    assert touched == [], "no member-account call for an excluded account"
    assert org.client("iam", beta).list_access_keys(UserName="bob")["AccessKeyMetadata"] == before
