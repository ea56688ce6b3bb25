"""``keyrotation credentials`` (issue 11.1), end to end: seed it, rotate through the state machine, and see the
helper's output switch keys while the old key still works (the secret's policy, bound to the user's unique id,
letting only the user read it); then its clear errors.

The helper's standard output is the ``credential_process`` document, the one place a secret may be printed:
it is parsed, and its secret compared without ever being shown (the checks are functions returning a bool,
so a failed assertion shows ``False``, never the output).
Everything else it writes (standard error) is searched for every secret moto made.
"""

from __future__ import annotations

import hmac
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine
from click.testing import CliRunner, Result
from moto.iam.models import iam_backends

from keyrotation.naming import secret_name
from keyrotation.secrets import CURRENT
from keyrotation_cli.context import Options
from keyrotation_cli.main import cli
from localaws import REGION, KeySeed, LocalAws, Organization, Stack
from tests.iam_evaluator import Decision, Request, decide
from tests.statemachine.cli import keyrotation

pytestmark = pytest.mark.statemachine

DAY0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def secret_of(account_id: str, key_id: str) -> str:
    """The secret access key moto holds for ``key_id`` (kept in the test's memory only)."""
    return str(iam_backends[account_id]["aws"].access_keys[key_id].secret_access_key)


def signed_as(account_id: str, key_id: str) -> dict[str, str | None]:
    """The environment of someone whose credentials are this key of the user."""
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret_of(account_id, key_id),
        "AWS_SESSION_TOKEN": None,
    }


def helper(leak_check: Any, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """``keyrotation [--region] credentials ARGS``; its standard error is leak-checked, its standard output is not."""
    result = CliRunner(env=env).invoke(cli, ["--region", REGION, "credentials", *args], obj=Options())
    leaks = leak_check.find_in(f"the standard error of keyrotation credentials {' '.join(args)}", result.stderr)
    assert not leaks, "\n".join(str(leak) for leak in leaks)
    return result


def returned(result: Result, account_id: str, key_id: str) -> bool:
    """Whether the helper printed exactly the credential_process document of ``key_id`` (and nothing else)."""
    document = json.loads(result.stdout)
    expected = {"Version": 1, "AccessKeyId": key_id, "SecretAccessKey": secret_of(account_id, key_id)}
    same_secret = hmac.compare_digest(str(document.get("SecretAccessKey")), expected["SecretAccessKey"])
    return same_secret and document.keys() == expected.keys() and document["AccessKeyId"] == key_id


def printed_nothing(result: Result) -> bool:
    """Whether standard output is empty (a bool, so that a failed assertion never shows what was printed)."""
    return result.stdout == ""


def works(account_id: str, key_id: str) -> bool:
    """Whether AWS accepts a call signed with the key (the in-memory AWS refuses Inactive and deleted keys)."""
    sts = boto3.client(
        "sts", region_name=REGION, aws_access_key_id=key_id, aws_secret_access_key=secret_of(account_id, key_id)
    )
    try:
        return str(sts.get_caller_identity()["Account"]) == account_id
    except sts.exceptions.ClientError:
        return False


def caller(account_id: str, key_id: str) -> dict[str, str]:
    """Who AWS says signs with the key (``Arn``, ``UserId``): what the secret's policy judges."""
    sts = boto3.client(
        "sts", region_name=REGION, aws_access_key_id=key_id, aws_secret_access_key=secret_of(account_id, key_id)
    )
    identity = sts.get_caller_identity()
    return {"Arn": str(identity["Arn"]), "UserId": str(identity["UserId"])}


def reading_current(aws: LocalAws, account_id: str, name: str, arn: str, userid: str) -> Decision:
    """The secret's own resource policy's decision on ``arn`` (unique id ``userid``) reading its AWSCURRENT
    version, as the helper does; the principal has no identity policy of its own (the user has none)."""
    sm = aws.client("secretsmanager", account_id)
    policy = json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"])
    request = Request(
        principal_arn=arn,
        action="secretsmanager:GetSecretValue",
        resource=str(sm.describe_secret(SecretId=name)["ARN"]),
        context={"aws:userid": userid, "secretsmanager:VersionStage": CURRENT},
    )
    return decide(request, resource=[policy])


def keys(org: Organization, account_id: str, user: str) -> dict[str, str]:
    iam = org.client("iam", account_id)
    return {key["AccessKeyId"]: key["Status"] for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def rotation_run(stack: Stack, leak_check: Any, account_id: str) -> None:
    result = keyrotation(stack, leak_check, "run", "--account", account_id)
    assert result.exit_code == 0, result.output


@pytest.fixture
def rotated(aws: LocalAws, leak_check: Any) -> dict[str, Any]:
    """Day 0: the user's 80-day-old key is rotated; the new key is in the user's secret."""
    with time_machine.travel(DAY0, tick=True):
        org = aws.organization(["alpha"])
        alpha = org.account("alpha")
        (first,) = org.create_user(alpha, "app", [KeySeed(80, used_days_ago=1)])
        stack = aws.deploy({"DryRun": "false"})
        rotation_run(stack, leak_check, alpha)
    (second,) = set(keys(org, alpha, "app")) - {first}
    return {"org": org, "stack": stack, "alpha": alpha, "first": first, "second": second}


def test_the_helper_follows_the_user_s_key_across_a_rotation_while_the_old_key_still_works(
    aws: LocalAws, rotated: dict[str, Any], leak_check: Any, tmp_path: Path
) -> None:
    org, stack, alpha, first, second = (rotated[name] for name in ("org", "stack", "alpha", "first", "second"))
    name = secret_name(alpha, "app")
    cache, stale = tmp_path / "app.json", tmp_path / "never-refreshed.json"
    with time_machine.travel(DAY0 + timedelta(hours=1), tick=True):
        # Configured once, with the credentials the user has today (the first key, Active until its disable date).
        for path in (cache, stale):
            seeded = helper(
                leak_check, "--seed", "--secret-id", name, "--cache", str(path), env=signed_as(alpha, first)
            )
            assert seeded.exit_code == 0 and printed_nothing(seeded), seeded.stderr
            assert (
                f"Cached key {second}" in seeded.stderr
                and "credential_process = keyrotation credentials" in seeded.stderr
            )
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert returned(helper(leak_check, "--secret-id", name, "--cache", str(cache)), alpha, second)

    for day in (15, 25):  # the first key is disabled, then deleted: the user has a free key slot again
        with time_machine.travel(DAY0 + timedelta(days=day), tick=True):
            rotation_run(stack, leak_check, alpha)
    assert set(keys(org, alpha, "app")) == {second}

    with time_machine.travel(DAY0 + timedelta(days=76), tick=True):
        rotation_run(stack, leak_check, alpha)  # the second key is 76 days old: rotated
        (third,) = set(keys(org, alpha, "app")) - {first, second}
        switched = helper(leak_check, "--secret-id", name, "--cache", str(cache))
        assert switched.exit_code == 0 and f"switched from key {second} to {third}" in switched.stderr
        assert returned(switched, alpha, third)
        assert keys(org, alpha, "app")[second] == "Active" and works(alpha, second)  # the old key still works
        assert works(alpha, third)
        # What let the helper read it: the secret's policy, bound to the user's unique id. The same user name
        # made again (another id), or the member role, may not read the key the user holds.
        user = caller(alpha, third)
        assert reading_current(aws, alpha, name, user["Arn"], user["UserId"]) is Decision.ALLOW
        assert reading_current(aws, alpha, name, user["Arn"], "AIDAANOTHERUSERID0001") is Decision.EXPLICIT_DENY
        role = f"arn:aws:iam::{alpha}:role/{org.member_roles[alpha]}"
        assert reading_current(aws, alpha, name, role, "AROAMEMBERROLE:run") is Decision.EXPLICIT_DENY
        with aws.calls.record() as calls:
            again = helper(leak_check, "--secret-id", name, "--cache", str(cache))
        assert returned(again, alpha, third)
        assert [call for call in calls if call[0] == "secretsmanager"] == []  # read at most every --refresh-minutes

    with time_machine.travel(DAY0 + timedelta(days=92), tick=True):
        rotation_run(stack, leak_check, alpha)  # the second key reached its disable date
        assert keys(org, alpha, "app")[second] == "Inactive" and not works(alpha, second)
        assert returned(helper(leak_check, "--secret-id", name, "--cache", str(cache)), alpha, third)
        # A helper that never looked since day 0 still holds the second key, now disabled: a clear error.
        refused = helper(leak_check, "--secret-id", name, "--cache", str(stale))
        assert refused.exit_code == 1 and printed_nothing(refused)
        assert f"AWS refuses the key {second}" in refused.stderr and "disabled or deleted" in refused.stderr
        assert f"keyrotation credentials --seed --secret-id {name}" in refused.stderr


def seed(rotated: dict[str, Any], leak_check: Any, cache: Path) -> str:
    name = secret_name(rotated["alpha"], "app")
    seeded = helper(
        leak_check,
        "--seed",
        "--secret-id",
        name,
        "--cache",
        str(cache),
        env=signed_as(rotated["alpha"], rotated["first"]),
    )
    assert seeded.exit_code == 0, seeded.stderr
    return name


def test_no_cache_yet_says_how_to_seed_it(leak_check: Any, tmp_path: Path) -> None:
    result = helper(
        leak_check, "--secret-id", "Account_111122223333_User_app_AccessKey", "--cache", str(tmp_path / "c")
    )
    assert result.exit_code == 1 and printed_nothing(result)
    assert "no key cached for Account_111122223333_User_app_AccessKey yet" in result.stderr
    assert "credentials --seed --secret-id Account_111122223333_User_app_AccessKey" in result.stderr


def test_a_secret_that_cannot_be_read_is_a_clear_error_and_nothing_is_cached(
    rotated: dict[str, Any], leak_check: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "c.json"
    missing = secret_name(rotated["alpha"], "nobody")
    result = helper(
        leak_check,
        "--seed",
        "--secret-id",
        missing,
        "--cache",
        str(cache),
        env=signed_as(rotated["alpha"], rotated["first"]),
    )
    assert result.exit_code == 1 and printed_nothing(result) and not cache.exists()
    assert f"the secret {missing} cannot be read with your credentials (ResourceNotFoundException)" in result.stderr


def test_a_secret_gone_since_seeding_is_a_clear_error(
    aws: LocalAws, rotated: dict[str, Any], leak_check: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "c.json"
    name = seed(rotated, leak_check, cache)
    sm = aws.client("secretsmanager", rotated["alpha"])
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    result = helper(leak_check, "--secret-id", name, "--cache", str(cache), "--refresh-minutes", "0")
    assert result.exit_code == 1 and printed_nothing(result)
    assert f"cannot be read with the key it holds ({rotated['second']})" in result.stderr


def test_aws_not_answering_returns_the_held_key_and_looks_again_next_time(
    aws: LocalAws, rotated: dict[str, Any], leak_check: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "c.json"
    name = seed(rotated, leak_check, cache)
    aws.faults.add("secretsmanager", "GetSecretValue", "ThrottlingException", times=1)
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=2), tick=True):
        first = helper(leak_check, "--secret-id", name, "--cache", str(cache), "--refresh-minutes", "1")
        assert first.exit_code == 0 and "did not answer (ThrottlingException)" in first.stderr
        assert returned(first, rotated["alpha"], rotated["second"])
        with aws.calls.record() as calls:
            again = helper(leak_check, "--secret-id", name, "--cache", str(cache), "--refresh-minutes", "1")
        assert returned(again, rotated["alpha"], rotated["second"])
    assert ("secretsmanager", "GetSecretValue") in calls  # the failed look did not count as one


def test_a_cache_others_can_read_is_refused(rotated: dict[str, Any], leak_check: Any, tmp_path: Path) -> None:
    cache = tmp_path / "c.json"
    name = seed(rotated, leak_check, cache)
    os.chmod(cache, 0o644)
    result = helper(leak_check, "--secret-id", name, "--cache", str(cache))
    assert result.exit_code == 1 and printed_nothing(result) and "can be read by others (mode 0644)" in result.stderr
    other = helper(leak_check, "--secret-id", "Account_111122223333_User_other_AccessKey", "--cache", str(cache))
    assert other.exit_code == 1 and printed_nothing(other)


def test_the_cache_is_replaced_whole_and_stays_0600(rotated: dict[str, Any], leak_check: Any, tmp_path: Path) -> None:
    cache = tmp_path / "deeper" / "c.json"
    name = seed(rotated, leak_check, cache)
    before = os.stat(cache).st_ino
    assert returned(
        helper(leak_check, "--secret-id", name, "--cache", str(cache), "--refresh-minutes", "0"),
        rotated["alpha"],
        rotated["second"],
    )
    assert os.stat(cache).st_ino != before  # a new file moved over the old one, never written in place
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600 and stat.S_IMODE(os.stat(cache.parent).st_mode) == 0o700
    assert sorted(path.name for path in cache.parent.iterdir()) == ["c.json"]  # no temporary file left
