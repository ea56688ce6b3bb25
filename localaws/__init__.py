"""An embedded, in-memory AWS for running the product without an AWS account or Docker.

It deploys ``template.yaml`` into moto the way SAM and CloudFormation would
(parameters validated, Globals merged, intrinsics and DefinitionSubstitutions
resolved) and runs the real ``statemachine/*.asl.json`` with moto's Step
Functions interpreter, calling the real handlers in process, concurrently, each
function in execution environments of its own with its layers' packages and its
own environment variables, as in Lambda (see :mod:`localaws.lambdas`).
Everything it changes in the process is put back when the ``with`` block ends.

    >>> from localaws import KeySeed, LocalAws                # doctest: +SKIP
    >>> with LocalAws() as aws:                               # doctest: +SKIP
    ...     org = aws.organization(accounts=3)
    ...     org.create_user(org.account("account1"), "alice", [KeySeed(80)])
    ...     stack = aws.deploy({"DryRun": "false"})
    ...     execution = stack.run({})
    ...     print(execution.status, execution.output)

Used by ``make demo``, the test suite and ``make bench``; never by the product.
"""

from localaws.clients import DEPLOYMENT_ACCOUNT, REGION
from localaws.lambdas import FunctionSpec, Invocation
from localaws.local_aws import LocalAws
from localaws.organization import KeySeed, Organization
from localaws.stack import Execution, FunctionError, Stack

__all__ = [
    "DEPLOYMENT_ACCOUNT",
    "REGION",
    "Execution",
    "FunctionError",
    "FunctionSpec",
    "Invocation",
    "KeySeed",
    "LocalAws",
    "Organization",
    "Stack",
]
