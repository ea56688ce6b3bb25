"""The narrowest race window (issue 12.8): a key re-enabled while DeleteKey runs is never deleted.

IAM has no conditional delete. DeleteKey re-reads the user's keys when it starts, then records in the
ledger that the change is being applied, then deletes: a key re-enabled by its owner between the first
read and the delete would be deleted while Active. The key's status is read again immediately before
DeleteAccessKey, in the same invocation; the window left is that one IAM round trip
(docs/lifecycle.md, "How a run carries out the plan safely").
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.iam.models import iam_backends

from localaws import KeySeed, LocalAws
from tests.statemachine.invariants import running

pytestmark = pytest.mark.statemachine


def test_a_key_re_enabled_while_delete_key_runs_is_not_deleted(aws: LocalAws) -> None:
    org = aws.organization(["alpha"])
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account})
    alpha = org.account("alpha")
    old, _ = org.create_user(alpha, "carol", [KeySeed(110, status="Inactive"), KeySeed(30, used_days_ago=1)])
    re_enabled: list[str] = []

    def owner_re_enables_the_key(params: dict[str, Any]) -> bool:
        """As DeleteKey records 'applying' (after its re-read, before the delete), the owner turns the key on."""
        if running(stack, "DeleteKeyFunction") and "applying" in json.dumps(params) and not re_enabled:
            iam_backends[alpha]["aws"].access_keys[old].status = "Active"
            re_enabled.append(old)
        return False

    aws.faults.add("dynamodb", "UpdateItem", "Spy", times=10**9, when=owner_re_enables_the_key)

    stack.run_account(alpha, run_id="race")

    assert re_enabled == [old]
    keys = {
        key["AccessKeyId"]: key["Status"]
        for key in org.client("iam", alpha).list_access_keys(UserName="carol")["AccessKeyMetadata"]
    }
    assert keys.get(old) == "Active", "an Active key was deleted"
