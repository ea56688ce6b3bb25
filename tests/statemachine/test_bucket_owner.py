"""Every S3 call of the product names the bucket's expected owner, the run bucket's and the template overrides'.

A bucket name is global: one deleted and created again by someone else under the same name would
otherwise be written to (the run's account list) or read from (email templates). A whole run, with
template overrides in a bucket of their own, records every S3 call the functions make (signed with
the functions' own credentials; the Distributed Map's ItemReader, which Step Functions runs with the
state machine's role, is the service's call, not the product's code).
"""

from __future__ import annotations

import pytest

from localaws import DEPLOYMENT_ACCOUNT, KeySeed, LocalAws
from localaws.clients import LOCAL_CREDENTIALS

pytestmark = pytest.mark.statemachine


def test_every_s3_call_names_the_buckets_owner(aws: LocalAws) -> None:
    org = aws.organization(["alpha"])
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="email-overrides")
    s3.put_object(Bucket="email-overrides", Key="emails/layout.txt.j2", Body=b"{% block body %}{% endblock %}")
    aws.verify_sender("keys@example.com")
    stack = aws.deploy(
        {
            "DryRun": "false",
            "ExcludeAccounts": org.management_account,
            "TemplateBucket": "email-overrides",
            "TemplatePrefix": "emails/",
            "SenderEmail": "keys@example.com",
            "SecurityTeamEmail": "security@example.com",
        }
    )
    org.create_user(org.account("alpha"), "alice", [KeySeed(80)], tags={"email": "alice@example.com"})
    with aws.calls.watch() as calls:
        execution = stack.run({})
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    functions_key = LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]  # the functions' credentials here (their role's in Lambda)
    s3_calls = [call for call in calls if call.service == "s3" and call.access_key_id == functions_key]
    buckets = {call.identifiers.get("Bucket") for call in s3_calls}
    assert buckets == {stack.outputs["RunBucketName"], "email-overrides"}, buckets
    for call in s3_calls:
        assert call.identifiers.get("ExpectedBucketOwner") == DEPLOYMENT_ACCOUNT, call
