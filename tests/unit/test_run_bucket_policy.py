"""The run's account list is not a back door: only ListAccounts' role can write the run bucket.

Whoever can write ``runs/<runId>/accounts.json`` between ListAccounts and the Distributed Map chooses
the accounts the run processes. The bucket policy of template.yaml is evaluated here (moto enforces no
bucket policy) with :mod:`tests.iam_evaluator`: an administrator of the account with ``s3:*``, and the
stack's other function roles, are refused every write; ListAccounts' role writes; reading stays open
to whoever the identity policies allow. The run's reports (``reports/<runId>/...``) are written by
the functions that make them (:data:`REPORT_WRITERS`) only, and those write nothing else. (The account-scoped functions refuse an excluded account
whatever the list says: tests/statemachine/test_account_list_tampering.py.)
"""

from __future__ import annotations

from typing import Any

import pytest

from localaws import cfn
from tests.iam_evaluator import Decision, Request, decide

TEMPLATE = cfn.load(cfn.REPO / "template.yaml")
ACCOUNT = "111122223333"
BUCKET = "iam-key-rotation-runbucket-1a2b3c4d"
OBJECT = f"arn:aws:s3:::{BUCKET}/runs/nightly/accounts.json"
FUNCTIONS = [
    name for name, resource in TEMPLATE["Resources"].items() if resource["Type"] == "AWS::Serverless::Function"
]
ROLES = {name: f"arn:aws:iam::{ACCOUNT}:role/key-rotation/iam-key-rotation-{name}Role-ABCDEF" for name in FUNCTIONS}
S3_ANYTHING = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
TLS = {"aws:SecureTransport": "true"}


def bucket_policy() -> dict[str, Any]:
    defaults = {name: str(spec["Default"]) for name, spec in TEMPLATE["Parameters"].items() if "Default" in spec}
    values = cfn.validate_parameters(TEMPLATE, defaults)
    resolver = cfn.Resolver.for_template(
        TEMPLATE, values, pseudo={"AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::Region": "us-east-1"}
    )
    resolver.refs["RunBucket"] = BUCKET
    resolver.attributes[("RunBucket", "Arn")] = f"arn:aws:s3:::{BUCKET}"
    for name, arn in ROLES.items():
        resolver.attributes[(f"{name}Role", "Arn")] = arn
    return dict(resolver.resolve(TEMPLATE["Resources"]["RunBucketPolicy"]["Properties"]["PolicyDocument"]))


REPORT = f"arn:aws:s3:::{BUCKET}/reports/nightly/actions.csv"
FRAGMENT = f"arn:aws:s3:::{BUCKET}/reports/nightly/inventory/{ACCOUNT}.json"
#: The functions that write the run's reports (reports/<runId>/...), each only what it makes.
REPORT_WRITERS = {"SummarizeFunction": REPORT, "AuditKeysFunction": FRAGMENT}


def write(principal: str, action: str = "s3:PutObject", resource: str = OBJECT) -> Decision:
    return decide(Request(principal, action, resource, TLS), identity=[S3_ANYTHING], resource=[bucket_policy()])


def test_list_accounts_role_writes_the_account_list() -> None:
    assert write(ROLES["ListAccountsFunction"]) is Decision.ALLOW


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:iam::{ACCOUNT}:role/Admin",
        f"arn:aws:iam::{ACCOUNT}:user/operator",
        f"arn:aws:iam::{ACCOUNT}:root",
        *[arn for name, arn in ROLES.items() if name != "ListAccountsFunction"],
    ],
)
def test_nobody_else_writes_the_run_bucket_whatever_their_own_policies_allow(principal: str) -> None:
    for action in ("s3:PutObject", "s3:ReplicateObject", "s3:RestoreObject"):
        assert write(principal, action) is Decision.EXPLICIT_DENY, (principal, action)


def test_reading_the_run_bucket_is_left_to_identity_policies() -> None:
    admin = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    assert write(admin, "s3:GetObject") is Decision.ALLOW
    request = Request(admin, "s3:GetObject", OBJECT, {"aws:SecureTransport": "false"})
    assert decide(request, identity=[S3_ANYTHING], resource=[bucket_policy()]) is Decision.EXPLICIT_DENY


@pytest.mark.parametrize("name", sorted(REPORT_WRITERS))
def test_the_report_writers_write_reports_and_nothing_else(name: str) -> None:
    assert write(ROLES[name], resource=REPORT_WRITERS[name]) is Decision.ALLOW
    assert write(ROLES[name]) is Decision.EXPLICIT_DENY  # not the account list
    assert write(ROLES[name], resource=f"arn:aws:s3:::{BUCKET}/elsewhere.json") is Decision.EXPLICIT_DENY


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:iam::{ACCOUNT}:role/Admin",
        f"arn:aws:iam::{ACCOUNT}:root",
        *[arn for name, arn in ROLES.items() if name not in REPORT_WRITERS],
    ],
)
def test_nobody_else_writes_the_reports(principal: str) -> None:
    for action in ("s3:PutObject", "s3:ReplicateObject", "s3:RestoreObject"):
        assert write(principal, action, REPORT) is Decision.EXPLICIT_DENY, (principal, action)


def test_audit_keys_writes_only_the_inventory_fragments() -> None:
    assert write(ROLES["AuditKeysFunction"], resource=REPORT) is Decision.EXPLICIT_DENY
    for name in REPORT_WRITERS:
        assert write(ROLES[name], resource=FRAGMENT) is Decision.ALLOW, name
    for principal in (f"arn:aws:iam::{ACCOUNT}:role/Admin", ROLES["NotifyFunction"]):
        assert write(principal, resource=FRAGMENT) is Decision.EXPLICIT_DENY
