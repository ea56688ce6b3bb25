"""The user's secret in the member account: ``Account_<id>_User_<name>_AccessKey``.

Life of a delivery:

1. :func:`stage_pending` (create_key) writes ``{"AccessKeyId", "SecretAccessKey"}``
   as a new version labelled ``AWSPENDING``, creating the secret (with its
   user-only policy) if needed.
2. :func:`read_pending` (verify_key) reads it back to sign one STS call.
3. :func:`promote` (store_secret) moves ``AWSCURRENT`` to it.

The secret value is never returned to a caller outside this package's
functions, never logged, and never put in an exception.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from keyrotation import clock
from keyrotation.aws import error_code, translate_errors
from keyrotation.errors import DeliveryFailed, Throttled, TransientAwsError

PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"


def user_only_policy(user_arn: str, manager_role_arn: str) -> str:
    """Only the user may read the secret; the member role keeps managing it (it reads to verify)."""
    resource = "*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OwnerReads",
                    "Effect": "Allow",
                    "Principal": {"AWS": user_arn},
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": resource,
                },
                {
                    "Sid": "NobodyElseReads",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": resource,
                    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [user_arn, manager_role_arn]}},
                },
            ],
        }
    )


def _ensure_secret(sm: Any, name: str, description: str) -> str:
    try:
        with translate_errors():
            return str(sm.describe_secret(SecretId=name)["ARN"])
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
    with translate_errors():
        return str(sm.create_secret(Name=name, Description=description)["ARN"])


def stage_pending(
    sm: Any, name: str, user_arn: str, manager_role_arn: str, access_key: dict[str, Any]
) -> tuple[str, str]:
    """Store the new key as the pending version; return (secret ARN, version id).

    Any failure is raised as :class:`DeliveryFailed` without the original
    exception attached, so no stack trace can carry the value.
    """
    version_id = str(uuid.uuid4())
    try:
        arn = _ensure_secret(sm, name, f"IAM access key of {user_arn}, delivered by key rotation")
        with translate_errors():
            sm.put_resource_policy(
                SecretId=name, ResourcePolicy=user_only_policy(user_arn, manager_role_arn), BlockPublicPolicy=True
            )
            sm.put_secret_value(
                SecretId=name,
                ClientRequestToken=version_id,
                SecretString=json.dumps(
                    {"AccessKeyId": access_key["AccessKeyId"], "SecretAccessKey": access_key["SecretAccessKey"]}
                ),
                VersionStages=[PENDING],
            )
    except (Throttled, TransientAwsError):
        raise  # retried by the state machine; their messages name the operation only, never the value
    except Exception as error:  # noqa: BLE001 - re-raised without the original, which may hold the value
        reason = error_code(error) if isinstance(error, ClientError) else type(error).__name__
        raise DeliveryFailed(f"could not write the new key {access_key['AccessKeyId']} to {name}: {reason}") from None
    return arn, version_id


def read_pending(sm: Any, name: str, version_id: str) -> dict[str, str]:
    with translate_errors():
        return dict(json.loads(sm.get_secret_value(SecretId=name, VersionId=version_id)["SecretString"]))


def _describe(sm: Any, name: str) -> dict[str, Any]:
    with translate_errors():
        return dict(sm.describe_secret(SecretId=name))


def stages(sm: Any, name: str) -> dict[str, list[str]]:
    """Version id -> labels, for the versions that still have a label."""
    return dict(_describe(sm, name).get("VersionIdsToStages", {}))


def is_delivered(sm: Any, name: str, version_id: str) -> bool:
    """Whether :func:`promote` made ``version_id`` current.

    Secrets Manager labels a secret's first version AWSCURRENT by itself, whatever
    :func:`stage_pending` asks for; such a version still has AWSPENDING until promoted.
    """
    try:
        labels = stages(sm, name).get(version_id, [])
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return False
        raise
    return CURRENT in labels and PENDING not in labels


def promote(sm: Any, name: str, version_id: str, user_arn: str, manager_role_arn: str, tags: dict[str, str]) -> str:
    """Make ``version_id`` current (idempotent), re-apply the user-only policy, tag; return the secret ARN."""
    described = _describe(sm, name)
    labels: dict[str, list[str]] = described.get("VersionIdsToStages", {})
    if version_id not in labels:
        raise DeliveryFailed(f"version {version_id} of {name} does not exist")
    with translate_errors():
        sm.put_resource_policy(
            SecretId=name, ResourcePolicy=user_only_policy(user_arn, manager_role_arn), BlockPublicPolicy=True
        )
        # AWSPENDING goes first: a version that has AWSCURRENT and still AWSPENDING counts as undelivered
        # (is_delivered), so a run that dies between the two moves must not leave AWSCURRENT on it.
        if PENDING in labels[version_id]:
            sm.update_secret_version_stage(SecretId=name, VersionStage=PENDING, RemoveFromVersionId=version_id)
        if CURRENT not in labels[version_id]:
            previous = next((version for version, names in labels.items() if CURRENT in names), None)
            move: dict[str, Any] = {"SecretId": name, "VersionStage": CURRENT, "MoveToVersionId": version_id}
            if previous:
                move["RemoveFromVersionId"] = previous
            sm.update_secret_version_stage(**move)
        sm.tag_resource(
            SecretId=name,
            Tags=[
                {"Key": key, "Value": value} for key, value in {**tags, "RotatedAt": clock.to_iso(clock.now())}.items()
            ],
        )
    return str(described["ARN"])
