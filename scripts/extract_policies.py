"""Write every IAM policy document of the product to a folder, one JSON file each, for policy linters.

Sources:

- the rotation stack as SAM translates it (``scripts/sam_translate.py`` output): each role's trust
  policy and inline policies, each bucket policy, topic policy and KMS key policy;
- ``member-account/role.yaml``: the member role's trust policy and inline policies;
- ``security/organization-policies.yaml``: the service control policies and the resource control policy;
- the layer: each purpose's session policy (:mod:`keyrotation.sessions`) and the key secret's
  resource policy (:mod:`keyrotation.secret_policy`).

Intrinsic functions are resolved with example values (every optional parameter set, so that every
conditional statement is there), as CloudFormation would resolve them in a real account.

    .venv/bin/python scripts/extract_policies.py build/scan/template.json build/scan/policies
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "layers" / "keyrotation")]

from keyrotation import secret_policy, sessions  # noqa: E402
from localaws import cfn  # noqa: E402

ACCOUNT, MEMBER, ORG = "111111111111", "222222222222", "o-exampleorg1"
STACK = "iam-key-rotation"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
# Optional parameters given a value, so that the statements they switch on are linted too.
EXAMPLE_PARAMETERS = {
    "rotation": {
        "SenderEmail": "key-rotation@example.com",
        "SecurityTeamEmail": "security@example.com",
        "TemplateBucket": "example-email-templates",
        "OrganizationId": ORG,
    },
    "member": {
        "RotationAccountId": ACCOUNT,
        "OrganizationId": ORG,
        "FunctionRoleArns": f"arn:aws:iam::{ACCOUNT}:role/key-rotation/{STACK}-AuditKeysFunctionRole-EXAMPLE",
        "SecretsKmsKeyAlias": "alias/key-rotation",
    },
    "scp": {
        "RotationAccountId": ACCOUNT,
        "StackDeployerArns": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-deployer",
        "MemberTargetIds": "ou-abcd-12345678",
        "OrganizationId": ORG,
        "SecurityTeamArns": f"arn:aws:iam::*:role/security-team,arn:aws:iam::{ACCOUNT}:role/security-*",
    },
}
_ARNS = {
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:us-east-1:{account}:table/{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:us-east-1:{account}:log-group:{name}:*",
    "AWS::Lambda::Function": "arn:aws:lambda:us-east-1:{account}:function:{name}",
    "AWS::Lambda::LayerVersion": "arn:aws:lambda:us-east-1:{account}:layer:{name}:1",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:us-east-1:{account}:stateMachine:{name}",
    "AWS::KMS::Key": "arn:aws:kms:us-east-1:{account}:key/{name}",
    "AWS::SNS::Topic": "arn:aws:sns:us-east-1:{account}:{name}",
    "AWS::Events::Rule": "arn:aws:events:us-east-1:{account}:rule/{name}",
    "AWS::CloudWatch::Alarm": "arn:aws:cloudwatch:us-east-1:{account}:alarm:{name}",
}
#: Resources whose Ref is their ARN (for the others it is their name or id).
_REF_IS_ARN = ("AWS::Lambda::LayerVersion", "AWS::StepFunctions::StateMachine", "AWS::SNS::Topic")


def resolver_for(template: dict[str, Any], given: dict[str, str], account: str) -> cfn.Resolver:
    declared = template.get("Parameters", {})
    values = cfn.validate_parameters(template, {name: value for name, value in given.items() if name in declared})
    resolver = cfn.Resolver.for_template(template, values, pseudo={**PSEUDO, "AWS::AccountId": account})
    for logical_id, resource in template.get("Resources", {}).items():
        name = f"{STACK}-{logical_id}-EXAMPLE"
        arn = _ARNS.get(resource["Type"], "arn:aws:example:us-east-1:{account}:{name}").format(
            account=account, name=name
        )
        ref = arn if resource["Type"] in _REF_IS_ARN else name
        resolver.refs[logical_id] = ref
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "Name")] = name
    return resolver


Found = tuple[str, str, str | None, Any]  # (resource, kind, ARN of what a trust/resource policy is attached to, doc)


def _documents(template: dict[str, Any], resolver: cfn.Resolver, account: str) -> Iterator[Found]:
    """Every policy document in a CloudFormation template."""
    for logical_id, resource in template.get("Resources", {}).items():
        if "Condition" in resource and not resolver.conditions.get(resource["Condition"], True):
            continue
        properties = resolver.resolve(resource.get("Properties", {}))
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            role = properties.get("RoleName") or f"{STACK}-{logical_id}-EXAMPLE"
            yield logical_id, "trust", f"arn:aws:iam::{account}:role/{role}", properties["AssumeRolePolicyDocument"]
            for policy in properties.get("Policies", []):
                yield f"{logical_id}-{policy['PolicyName']}", "identity", None, policy["PolicyDocument"]
        elif kind == "AWS::S3::BucketPolicy":
            yield logical_id, "resource", f"arn:aws:s3:::{properties['Bucket']}", properties["PolicyDocument"]
        elif kind == "AWS::SNS::TopicPolicy":
            for topic in properties["Topics"]:
                yield logical_id, "resource", topic, properties["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield logical_id, "resource", resolver.attributes[(logical_id, "Arn")], properties["KeyPolicy"]
        elif kind == "AWS::Organizations::Policy":
            policy_kind = {"SERVICE_CONTROL_POLICY": "scp", "RESOURCE_CONTROL_POLICY": "rcp"}[properties["Type"]]
            yield logical_id, policy_kind, None, properties["Content"]


def documents(translated: Path) -> Iterator[tuple[str, str, str, str | None, Any]]:
    """(source, resource, kind, attached to, document) of every policy document of the product."""
    sources = [
        ("template", json.loads(translated.read_text()), "rotation", ACCOUNT),
        ("member-role", cfn.load(REPO / "member-account" / "role.yaml"), "member", MEMBER),
        ("scp", cfn.load(REPO / "security" / "organization-policies.yaml"), "scp", ACCOUNT),
    ]
    for source, template, parameters, account in sources:
        resolver = resolver_for(template, EXAMPLE_PARAMETERS[parameters], account)
        for resource, kind, attached, document in _documents(template, resolver, account):
            yield source, resource, kind, attached, document
    target = sessions.Target("aws", "us-east-1", MEMBER, user_name="alice", exemption_group="ExemptionGroup")
    for purpose in sessions.Purpose:
        yield "session", purpose.value, "session", None, sessions.session_policy(purpose, target)
    user = f"arn:aws:iam::{MEMBER}:user/alice"
    role = f"arn:aws:iam::{MEMBER}:role/IAMKeyRotationMemberRole"
    secret = f"arn:aws:secretsmanager:us-east-1:{MEMBER}:secret:Account_{MEMBER}_User_alice_AccessKey-AbCdEf"
    yield "secret", "user-only", "resource", secret, secret_policy.user_only_policy(user, "AIDAEXAMPLEALICE", role)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    translated, folder = Path(argv[1]), Path(argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for source, resource, kind, attached, document in documents(translated):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{source}.{resource}.{kind}") + ".json"
        (folder / name).write_text(json.dumps(document, indent=2))
        index.append({"file": name, "source": source, "resource": resource, "kind": kind, "attachedTo": attached})
    (folder.parent / f"{folder.name}.index.json").write_text(json.dumps(index, indent=2))
    print(f"{len(index)} policy documents written to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
