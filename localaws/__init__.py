"""An embedded, in-memory AWS for running the product without an AWS account or Docker.

It deploys ``template.yaml`` into moto the way SAM and CloudFormation would
(parameters validated, Globals merged, intrinsics and DefinitionSubstitutions
resolved, layers on the path) and runs the real ``statemachine/*.asl.json``
with moto's Step Functions interpreter, calling the real handlers in process.

    >>> from localaws import LocalAws                         # doctest: +SKIP
    >>> with LocalAws() as aws:                               # doctest: +SKIP
    ...     org = aws.organization(accounts=3)
    ...     stack = aws.deploy({"DryRun": "false"})
    ...     execution = stack.run({})
    ...     print(execution.status, execution.output)

Used by ``make demo``, the test suite and ``make bench``; never by the product.
"""

from localaws.environment import LocalAws

__all__ = ["LocalAws"]
