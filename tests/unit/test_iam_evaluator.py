"""The policy evaluator the security tests rely on gets IAM's less obvious rules right."""

from __future__ import annotations

import pytest

from tests.iam_evaluator import Decision, Request, decide, wildcard_match

USER = "arn:aws:iam::111122223333:user/alice"
ROLE = "arn:aws:iam::111122223333:role/Member"
SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:s-AbCdEf"
ALLOW_ALL = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def deny_unless(operator: str, key: str, values: object) -> dict[str, object]:
    return {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {operator: {key: values}}}]}


def test_wildcards() -> None:
    assert wildcard_match("arn:aws:iam::1:user/*/alice", "arn:aws:iam::1:user/team/x/alice")
    assert not wildcard_match("arn:aws:iam::1:user/*/alice", "arn:aws:iam::1:user/alice")
    assert wildcard_match("secret:s-??????", "secret:s-AbCdEf")
    assert not wildcard_match("secret:s-??????", "secret:s-AbCdEfG")
    assert wildcard_match("secretsmanager:get*", "secretsmanager:GetSecretValue", ignore_case=True)


@pytest.mark.parametrize(
    ("operator", "values", "context", "denied"),
    [
        ("StringEquals", "AWSPENDING", {}, False),  # a missing key: positive operators are false
        ("StringNotEquals", "AWSPENDING", {}, True),  # ... negated ones true
        ("StringNotEqualsIfExists", "AWSPENDING", {}, True),
        ("StringEqualsIfExists", "AWSPENDING", {}, True),
        ("StringNotEquals", ["A", "B"], {"k": "A"}, False),  # negated with several values: none may match
        ("StringNotEquals", ["A", "B"], {"k": "C"}, True),
        ("StringEquals", ["A", "B"], {"k": "B"}, True),
        ("StringLike", "AID*", {"k": "AIDAX"}, True),
        ("Null", "true", {}, True),
        ("Null", "true", {"k": "x"}, False),
        ("ForAnyValue:StringEquals", "t", {"k": ["a", "t"]}, True),
        ("ForAllValues:StringEquals", "t", {"k": ["a", "t"]}, False),
    ],
)
def test_condition_operators(operator: str, values: object, context: dict[str, object], denied: bool) -> None:
    request = Request(USER, "secretsmanager:GetSecretValue", SECRET, context)  # type: ignore[arg-type]
    decision = decide(request, identity=[ALLOW_ALL, deny_unless(operator, "k", values)])
    assert (decision is Decision.EXPLICIT_DENY) is denied


def test_arn_operators_match_part_by_part() -> None:
    request = Request(ROLE, "s3:GetObject", "x")
    assert decide(request, [ALLOW_ALL, deny_unless("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/Member")]) is (
        Decision.EXPLICIT_DENY
    )
    assert decide(request, [ALLOW_ALL, deny_unless("ArnNotEquals", "aws:PrincipalArn", [ROLE, USER])]).allowed


def test_resource_policy_allow_needs_no_identity_policy_but_a_session_policy_limits_the_identity() -> None:
    resource = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "s3:GetObject"}]}
    assert decide(Request(USER, "s3:GetObject", "x"), resource=[resource]).allowed
    assert not decide(Request(ROLE, "s3:GetObject", "x"), resource=[resource]).allowed
    session = {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]}
    assert not decide(Request(ROLE, "s3:GetObject", "x"), identity=[ALLOW_ALL], session=session).allowed
    assert decide(Request(ROLE, "s3:PutObject", "x"), identity=[ALLOW_ALL], session=session).allowed


def test_not_action_not_principal_and_account_principals() -> None:
    deny_all_but_reads = {
        "Statement": [
            {"Effect": "Deny", "NotPrincipal": {"AWS": USER}, "NotAction": "s3:Get*", "Resource": "*"},
        ]
    }
    assert decide(Request(ROLE, "s3:GetObject", "x"), [ALLOW_ALL], [deny_all_but_reads]).allowed
    assert not decide(Request(ROLE, "s3:PutObject", "x"), [ALLOW_ALL], [deny_all_but_reads]).allowed
    assert decide(Request(USER, "s3:PutObject", "x"), [ALLOW_ALL], [deny_all_but_reads]).allowed
    account = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "*"}]}
    # Allowing the account delegates to its IAM policies; denying it denies every principal in it.
    assert not decide(Request(ROLE, "s3:GetObject", "x"), resource=[account]).allowed
    assert decide(Request(ROLE, "s3:GetObject", "x"), identity=[ALLOW_ALL], resource=[account]).allowed
    deny_account = {"Statement": [{**account["Statement"][0], "Effect": "Deny"}]}
    assert not decide(Request(ROLE, "s3:GetObject", "x"), identity=[ALLOW_ALL], resource=[deny_account]).allowed


def test_unknown_operators_are_errors_not_passes() -> None:
    with pytest.raises(ValueError, match="NumericLessThan"):
        decide(Request(USER, "s3:GetObject", "x"), [ALLOW_ALL, deny_unless("NumericLessThan", "k", "1")])


def test_across_accounts_both_the_resource_policy_and_the_identity_policy_must_allow() -> None:
    other = "arn:aws:iam::444455556666:role/x"
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "444455556666"}, "Action": "sts:AssumeRole"}]}
    assume = Request(other, "sts:AssumeRole", ROLE)
    assert not decide(assume, resource=[trust]).allowed
    assert not decide(assume, identity=[ALLOW_ALL]).allowed
    assert decide(assume, identity=[ALLOW_ALL], resource=[trust]).allowed


def test_policy_variables_in_condition_values() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "111122223333"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringLike": {"sts:RoleSessionName": "kr-${aws:PrincipalTag/Purpose}-*"}},
            }
        ]
    }

    def assume(context: dict[str, str]) -> bool:
        return decide(Request(USER, "sts:AssumeRole", ROLE, context), [ALLOW_ALL], [trust]).allowed

    assert assume({"aws:PrincipalTag/Purpose": "audit", "sts:RoleSessionName": "kr-audit-1"})
    assert not assume({"aws:PrincipalTag/Purpose": "audit", "sts:RoleSessionName": "kr-create-1"})
    assert not assume({"sts:RoleSessionName": "kr--1"})  # no tag: the variable matches nothing
