"""Where the commands act: the stack's outputs, and clients to reach its resources.

A deployed stack is found by its name through CloudFormation, with the standard AWS
credential chain (``--profile``, ``--region``, the environment):

    >>> target = resolve(boto3.Session(profile_name="security"), "iam-key-rotation")  # doctest: +SKIP
    >>> target.state_machine_arn                                                     # doctest: +SKIP
    'arn:aws:states:us-east-1:111122223333:stateMachine:iam-key-rotation-key-rotation'

:mod:`keyrotation_cli.local` makes a :class:`Target` of the in-memory AWS instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from keyrotation.aws import error_code

#: The outputs of template.yaml the commands need.
STATE_MACHINE_OUTPUT = "StateMachineArn"
LEDGER_OUTPUT = "LedgerTableName"
REQUIRED_OUTPUTS = (STATE_MACHINE_OUTPUT, LEDGER_OUTPUT)
#: Where the runs' reports are (``inventory`` only).
RUN_BUCKET_OUTPUT = "RunBucketName"
#: How often a followed execution is looked at, against a deployed stack (seconds).
POLL_SECONDS = 5.0


class StackNotFound(click.ClickException):
    """The stack, or an output the commands need, is not there."""


@dataclass(frozen=True)
class Target:
    """A deployed key rotation stack: its name, its outputs, and a client factory in its account and region."""

    stack_name: str
    outputs: dict[str, str]
    client: Callable[[str], Any] = field(repr=False)
    poll_seconds: float = POLL_SECONDS

    @property
    def state_machine_arn(self) -> str:
        return self.outputs[STATE_MACHINE_OUTPUT]

    @property
    def ledger_table(self) -> str:
        return self.outputs[LEDGER_OUTPUT]

    @property
    def run_bucket(self) -> str:
        """The run bucket (reports/<runId>/...); :class:`StackNotFound` for a stack without that output."""
        if RUN_BUCKET_OUTPUT not in self.outputs:
            raise StackNotFound(f"stack {self.stack_name!r} has no output {RUN_BUCKET_OUTPUT}: update the stack")
        return self.outputs[RUN_BUCKET_OUTPUT]


def resolve(session: Any, stack_name: str) -> Target:
    """The stack named ``stack_name`` in the session's account and region, from its CloudFormation outputs."""
    cloudformation = session.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError":  # CloudFormation's answer for a stack that does not exist
            raise StackNotFound(
                f"no stack named {stack_name!r} in region {session.region_name}: give the stack's name with --stack, "
                "and its account and region with --profile / --region (or AWS_PROFILE / AWS_REGION)"
            ) from None
        raise click.ClickException(f"could not read stack {stack_name!r}: {error_code(error)}") from None
    except BotoCoreError as error:
        raise click.ClickException(f"could not read stack {stack_name!r}: {error}") from None
    outputs = {str(output["OutputKey"]): str(output["OutputValue"]) for output in stacks[0].get("Outputs", [])}
    return from_outputs(stack_name, outputs, session.client)


def from_outputs(
    stack_name: str, outputs: dict[str, str], client: Callable[[str], Any], poll_seconds: float = POLL_SECONDS
) -> Target:
    """A :class:`Target` of these outputs; :class:`StackNotFound` when one the commands need is missing."""
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        raise StackNotFound(
            f"stack {stack_name!r} has no output {', '.join(missing)}: is it a key rotation stack (template.yaml)?"
        )
    return Target(stack_name, dict(outputs), client, poll_seconds)
