"""SecretsKmsKeyAlias: a new key secret is encrypted with the customer managed key it names."""

from __future__ import annotations

import pytest

from keyrotation import naming
from localaws import KeySeed, LocalAws

pytestmark = pytest.mark.statemachine


@pytest.mark.parametrize("alias", ["alias/key-rotation", ""])
def test_a_new_secret_is_encrypted_with_the_named_key(aws: LocalAws, alias: str) -> None:
    org = aws.organization(["alpha"])
    alpha = org.account("alpha")
    if alias:
        kms = aws.client("kms", alpha)
        kms.create_alias(AliasName=alias, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    stack = aws.deploy({"DryRun": "false", "ExcludeAccounts": org.management_account, "SecretsKmsKeyAlias": alias})
    org.create_user(alpha, "alice", [KeySeed(80)])
    execution = stack.run({})
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    described = aws.client("secretsmanager", alpha).describe_secret(SecretId=naming.secret_name(alpha, "alice"))
    assert described.get("KmsKeyId") == (alias or None)
