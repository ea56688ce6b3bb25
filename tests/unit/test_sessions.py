"""Session names and session policies: valid for AWS whatever the run id and user name."""

from __future__ import annotations

import doctest
import importlib
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyrotation import sessions
from keyrotation.sessions import Purpose, Target

SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)  # AssumeRole's RoleSessionName
IAM_USER_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-", min_size=1, max_size=64)


@pytest.mark.parametrize("module_name", ["keyrotation.sessions", "keyrotation.secret_policy"])
def test_docstring_examples(module_name: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(module_name))
    assert tried > 0 and failures == 0


@given(purpose=st.sampled_from(Purpose), run_id=st.text(min_size=1, max_size=80))
def test_session_names_are_valid_and_say_purpose_and_run(purpose: Purpose, run_id: str) -> None:
    name = sessions.session_name(purpose, run_id)
    assert SESSION_NAME.fullmatch(name), name
    assert sessions.purpose_of(name) is purpose


def test_two_long_run_ids_never_share_a_session_name() -> None:
    first, second = "r" * 70 + "-first", "r" * 70 + "-second"
    assert sessions.session_name(Purpose.CREATE, first) != sessions.session_name(Purpose.CREATE, second)


@given(purpose=st.sampled_from(Purpose), user=IAM_USER_NAME, group=IAM_USER_NAME)
def test_session_policies_fit_and_name_only_the_user(purpose: Purpose, user: str, group: str) -> None:
    target = Target("aws-us-gov", "us-gov-west-1", "111122223333", user_name=user, exemption_group=group)
    text = sessions.policy_text(purpose, target)
    document = json.loads(text)
    assert len(text) <= sessions.MAX_POLICY_CHARS
    actions = {action for statement in document["Statement"] for action in statement["Action"]}
    assert actions == sessions.granted_actions(purpose)
    for statement in document["Statement"]:
        for resource in statement["Resource"]:
            assert resource == "*" or resource.startswith("arn:aws-us-gov:"), resource
            if purpose is not Purpose.AUDIT and ":user/" in resource:
                assert resource.endswith(f"/{user}"), resource


def test_a_per_key_session_needs_its_user() -> None:
    with pytest.raises(ValueError, match="name the user"):
        sessions.session_policy(Purpose.CREATE, Target("aws", "us-east-1", "111122223333"))


def test_the_audit_reads_the_exemption_group_only_when_there_is_one() -> None:
    without = sessions.session_policy(Purpose.AUDIT, Target("aws", "us-east-1", "111122223333"))
    assert "iam:GetGroup" not in {action for statement in without["Statement"] for action in statement["Action"]}


@pytest.mark.parametrize(
    ("region", "partition"), [("us-east-1", "aws"), ("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")]
)
def test_every_arn_the_code_builds_is_in_the_functions_partition(
    region: str, partition: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyrotation import aws

    monkeypatch.setenv("MEMBER_ROLE_NAME", "IAMKeyRotationMemberRole")
    assert aws.partition(region) == partition
    assert aws.member_role_arn("111122223333", aws.partition(region)).startswith(f"arn:{partition}:iam::111122223333:")
    target = Target(partition, region, "111122223333", user_name="alice", exemption_group="G")
    for purpose in Purpose:
        for statement in sessions.session_policy(purpose, target)["Statement"]:
            assert all(r == "*" or r.startswith(f"arn:{partition}:") for r in statement["Resource"])
