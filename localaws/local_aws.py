"""The in-memory AWS: moto with Step Functions execution on, the handlers in process, AWS-like behaviour.

Everything it changes in the process (moto's and botocore's behaviour, ``os.environ``, the import
system, the log levels and ``sys.stdout`` when quiet) is changed for the ``with`` block only; on exit
each original is put back, the very same object.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from moto import mock_aws

from localaws import cfn, isolation
from localaws.awslike import AwsLike, CallLog, Faults, Paging
from localaws.clients import DEPLOYMENT_ACCOUNT, LOCAL_CREDENTIALS, REGION, AdminClients
from localaws.lambdas import LambdaRuntime
from localaws.organization import Organization
from localaws.sharing import shared_service_models
from localaws.stack import STACK_NAME, Stack, deploy

# The process's view while a LocalAws is on: local credentials, the region, no profile or config file.
_PROCESS_VARIABLES: dict[str, str | None] = {
    **LOCAL_CREDENTIALS,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_PROFILE": None,
    "AWS_CONFIG_FILE": None,
    "AWS_SHARED_CREDENTIALS_FILE": None,
}
# What a function's execution environment gets from the runtime besides its own variables: the role's
# credentials and the region, as Lambda gives them; and tracing off, as there is no X-Ray daemon here.
_RUNTIME_VARIABLES = {
    **LOCAL_CREDENTIALS,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}
_QUIET_LOGGERS = ("moto", "botocore", "aws_lambda_powertools")


class LocalAws:
    """Context manager: an AWS of its own for the block, with:

    - ``lambdas``: the :class:`~localaws.lambdas.LambdaRuntime` (functions, execution environments,
      ``invocations``, ``before_invoke`` hooks);
    - ``paging``, ``faults``, ``calls``: AWS-like page sizes, injected failures, the call log;
    - :meth:`organization`, :meth:`deploy`, :meth:`client` to seed it, deploy template.yaml and look inside.

    ``quiet`` silences what handlers print and the libraries' logs (for the demo and the benchmark).
    """

    def __init__(self, fast_retries: bool = True, quiet: bool = False) -> None:
        self.deployment_account = DEPLOYMENT_ACCOUNT
        self.region = REGION
        self.lambdas = LambdaRuntime(_RUNTIME_VARIABLES)
        self.awslike = AwsLike()
        self._fast_retries = fast_retries
        self._quiet = quiet
        self._admin: AdminClients | None = None
        self._exit = ExitStack()
        # Seeded organizations (their member roles) and the FunctionRoleArns of the stack deployed last.
        self._organizations: list[Organization] = []
        self._function_role_arns: list[str] = []

    @property
    def paging(self) -> Paging:
        return self.awslike.paging

    @property
    def faults(self) -> Faults:
        return self.awslike.faults

    @property
    def calls(self) -> CallLog:
        return self.awslike.calls

    @property
    def admin(self) -> AdminClients:
        if self._admin is None:
            raise RuntimeError("LocalAws is not entered: use it as `with LocalAws() as aws:`")
        return self._admin

    def __enter__(self) -> LocalAws:
        with ExitStack() as entering:
            for name, value in _PROCESS_VARIABLES.items():
                entering.enter_context(_process_variable(name, value))
            entering.enter_context(isolation.restored_logging())
            entering.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
            entering.enter_context(shared_service_models())
            entering.enter_context(self.awslike.installed(self._fast_retries))
            entering.enter_context(self.lambdas.serving())
            entering.enter_context(isolation.overlay_environ())
            if self._quiet:
                entering.enter_context(isolation.silent_invocations())
                entering.enter_context(_log_levels(_QUIET_LOGGERS, logging.CRITICAL))
                entering.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore")
            self._admin = AdminClients()
            self._exit = entering.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._admin = None
        self._organizations.clear()
        self._function_role_arns.clear()
        self._exit.close()

    # -- using it ------------------------------------------------------------------------------------------------

    def client(self, service: str, account_id: str | None = None) -> Any:
        """A client in ``account_id`` (default: the deployment account), as its administrator."""
        return self.admin.client(service, account_id or self.deployment_account)

    def organization(
        self,
        accounts: int | Sequence[str] = 3,
        ous: Mapping[str, Sequence[str]] | None = None,
        member_role: bool = True,
        without_role: Iterable[str] = (),
    ) -> Organization:
        """An organization whose management account is the deployment account.

        ``accounts`` names the member accounts, or is how many (named ``account1``, ``account2``...).
        ``ous`` maps an OU path (``"Prod/Web"`` nests) to the account names it holds. The member-account
        role (member-account/role.yaml) is deployed in every account, management included, unless
        ``member_role`` is false; not in the accounts named in ``without_role``. Member roles trust the
        function roles of the stack deployed last (see :meth:`deploy`).

            >>> org = aws.organization(["alpha", "beta"], without_role=["beta"])     # doctest: +SKIP
            >>> org = aws.organization(accounts=3)                                   # doctest: +SKIP
        """
        names = [f"account{n}" for n in range(1, accounts + 1)] if isinstance(accounts, int) else list(accounts)
        org = Organization.create(self.admin, names, ous, self._function_role_arns)
        self._organizations.append(org)
        if member_role:
            excluded = set(without_role)
            for name, account_id in [("management", org.management_account), *org.accounts.items()]:
                if name not in excluded:
                    org.deploy_member_role(account_id)
        return org

    def verify_sender(self, address: str) -> None:
        """Verify an SES identity of the deployment account (the product's sender)."""
        self.client("ses").verify_email_identity(EmailAddress=address)

    def deploy(
        self, parameters: Mapping[str, str] | None = None, template: Path | None = None, stack_name: str = STACK_NAME
    ) -> Stack:
        """Deploy ``template`` (default: the repository's template.yaml) with ``parameters``.

        If the stack outputs ``FunctionRoleArns``, every member role then trusts those roles (and only
        those), as the member-account StackSet does once updated with the new stack's output.
        """
        stack = deploy(
            self.admin, self.lambdas, template or cfn.REPO / "template.yaml", dict(parameters or {}), stack_name
        )
        if stack.outputs.get("FunctionRoleArns"):
            self._function_role_arns = stack.outputs["FunctionRoleArns"].split(",")
            for org in self._organizations:
                org.trust_function_roles(self._function_role_arns)
        return stack


@contextmanager
def _process_variable(name: str, value: str | None) -> Iterator[None]:
    saved = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@contextmanager
def _log_levels(names: Iterable[str], level: int) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, previous in zip(loggers, saved, strict=True):
            logger.setLevel(previous)
