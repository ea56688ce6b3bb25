"""Make moto behave like AWS where the difference would hide bugs.

- IAM ListUsers returns every user in one page in moto; AWS returns 100 (MaxItems) a page.
- Organizations ListAccounts pages at 100 in moto; AWS returns at most 20, and sometimes an
  empty page with a NextToken.
- STS AssumeRole succeeds in moto for roles that do not exist; AWS refuses (AccessDenied).
- Step Functions Retry intervals really sleep; :func:`fast_retries` keeps the retries (and their
  history events) but not the waiting.
- :class:`Faults` makes chosen AWS calls fail, as a test or the demo asks.
- moto ignores session policies; here a call signed by an assumed-role session whose session policy
  does not grant its action is refused (AccessDenied), as AWS would: every test then proves that
  each function's session grants what the function calls (actions only; resources and conditions
  are evaluated by tests/statemachine/test_session_policies.py).
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
from botocore.exceptions import ClientError
from moto.iam.responses import IamResponse
from moto.organizations.responses import OrganizationsResponse
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

IAM_PAGE_SIZE = 100
ACCOUNTS_PAGE_SIZE = 20


@dataclass
class Paging:
    """Page sizes in force (tests lower them to exercise paging with fewer objects)."""

    users: int = IAM_PAGE_SIZE
    accounts: int = ACCOUNTS_PAGE_SIZE
    empty_first_accounts_page: bool = True


PAGING = Paging()
# Roles AssumeRole may enter although IAM has no such role: the organization's own admin role,
# which AWS creates in every account it creates, used here only to seed the accounts.
SEED_ROLES = frozenset({"OrganizationAccountAccessRole"})


def _list_users(self: IamResponse) -> Any:
    marker = self._get_param("Marker")
    max_items = int(self._get_param("MaxItems") or PAGING.users)
    users = sorted(self.backend.list_users(self._get_param("PathPrefix"), None, None), key=lambda user: user.name)
    start = int(marker) if marker else 0
    page = users[start : start + max_items]
    truncated = start + max_items < len(users)
    from moto.core.responses import ActionResult

    result: dict[str, Any] = {"Users": page, "IsTruncated": truncated}
    if truncated:
        result["Marker"] = str(start + max_items)
    return ActionResult(result)


def _list_accounts(self: OrganizationsResponse) -> str:
    """AWS-like: at most PAGING.accounts a page, and an empty first page that carries a NextToken."""
    token = self._get_param("NextToken")
    size = min(int(self._get_param("MaxResults") or PAGING.accounts), PAGING.accounts)
    if token is None and PAGING.empty_first_accounts_page:
        return json.dumps({"Accounts": [], "NextToken": "page-0"})
    start = int(token.removeprefix("page-")) if token else 0
    accounts = sorted(
        (account.describe() for account in self.organizations_backend.accounts),
        key=lambda account: (account["JoinedTimestamp"], account["Id"]),
    )
    response: dict[str, Any] = {"Accounts": accounts[start : start + size]}
    if start + size < len(accounts):
        response["NextToken"] = f"page-{start + size}"
    return json.dumps(response)


_original_assume_role = STSBackend.assume_role


def _assume_role(self: STSBackend, **kwargs: Any) -> Any:
    from moto.iam.models import iam_backends

    role_arn = kwargs["role_arn"]
    account_id, role_name = role_arn.split(":")[4], role_arn.split("/")[-1]
    if role_name not in SEED_ROLES:
        roles = iam_backends[account_id]["aws"].roles.values()
        if not any(role.arn == role_arn or role.name == role_name for role in roles):
            raise STSClientError(
                "AccessDenied", f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            )
    return _original_assume_role(self, **kwargs)


def install() -> None:
    """Apply the AWS-like behaviour (idempotent)."""
    IamResponse.list_users = _list_users  # type: ignore[method-assign]
    OrganizationsResponse.list_accounts = _list_accounts  # type: ignore[method-assign]
    STSBackend.assume_role = _assume_role  # type: ignore[method-assign]
    botocore.client.BaseClient._make_api_call = _faulty_api_call  # type: ignore[method-assign]


def set_page_sizes(users: int = IAM_PAGE_SIZE, accounts: int = ACCOUNTS_PAGE_SIZE) -> None:
    PAGING.users, PAGING.accounts = users, accounts


class _NoSleep:
    """The ``time`` module as the retrier sees it, minus the waiting."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:  # noqa: ARG002 - the point is not to wait
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def fast_retries() -> Iterator[None]:
    real = retrier_decl.time
    retrier_decl.time = _NoSleep(real)
    try:
        yield
    finally:
        retrier_decl.time = real


# -- injected failures -------------------------------------------------------------------------


@dataclass
class Fault:
    service: str
    operation: str
    code: str
    times: int
    when: Callable[[dict[str, Any]], bool] | None = None
    status: int = 400
    hits: int = 0


@dataclass
class Faults:
    """AWS calls that fail on purpose: ``FAULTS.add("iam", "CreateAccessKey", "Throttling", times=1)``."""

    active: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        service: str,
        operation: str,
        code: str,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
        status: int = 400,
    ) -> Fault:
        fault = Fault(service, operation, code, times, when, status)
        with self.lock:
            self.active.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.active.clear()

    def check(self, service: str, operation: str, params: dict[str, Any]) -> None:
        with self.lock:
            for fault in self.active:
                if (
                    fault.service == service
                    and fault.operation == operation
                    and fault.hits < fault.times
                    and (fault.when is None or fault.when(params))
                ):
                    fault.hits += 1
                    raise ClientError(
                        {
                            "Error": {"Code": fault.code, "Message": f"injected {fault.code}"},
                            "ResponseMetadata": {"HTTPStatusCode": fault.status},
                        },
                        operation,
                    )


FAULTS = Faults()


# Parameters of a call that name what it acts on (never a value: SecretString and the like are left out).
IDENTIFYING_PARAMETERS = frozenset(
    {
        "UserName",
        "GroupName",
        "AccessKeyId",
        "SecretId",
        "Name",
        "VersionId",
        "VersionStage",
        "BlockPublicPolicy",
        "Bucket",
        "Key",
        "ExpectedBucketOwner",
        "Tags",
    }
)


@dataclass(frozen=True)
class SignedCall:
    """An AWS call, the access key id it was signed with (an assumed role's tells its session), what it names."""

    service: str
    operation: str
    access_key_id: str | None
    identifiers: dict[str, str] = field(default_factory=dict)


@dataclass
class CallLog:
    """Every AWS call made while recording: (service, operation); with its credentials while watching."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    recording: bool = False
    signed: list[SignedCall] = field(default_factory=list)
    watching: bool = False

    @contextmanager
    def record(self) -> Iterator[list[tuple[str, str]]]:
        self.calls.clear()
        self.recording = True
        try:
            yield self.calls
        finally:
            self.recording = False

    @contextmanager
    def watch(self) -> Iterator[list[SignedCall]]:
        """Record every call with the access key id that signed it."""
        self.signed.clear()
        self.watching = True
        try:
            yield self.signed
        finally:
            self.watching = False


CALLS = CallLog()
_original_api_call = botocore.client.BaseClient._make_api_call


_SESSION_ACTIONS: dict[str, tuple[str, ...] | None] = {}


def _session_actions(access_key_id: str) -> tuple[str, ...] | None:
    """The actions the session policy of the assumed-role session ``access_key_id`` grants; None without one."""
    if access_key_id not in _SESSION_ACTIONS:
        from moto.sts.models import sts_backends

        found: tuple[str, ...] | None = None
        for account_id in list(sts_backends):
            session = sts_backends[account_id]["aws"].get_assumed_role_from_access_key(access_key_id)
            if session is not None and session.policy:
                statements = json.loads(session.policy)["Statement"]
                found = tuple(
                    action.lower()
                    for statement in (statements if isinstance(statements, list) else [statements])
                    if statement.get("Effect") == "Allow"
                    for action in (
                        statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    )
                )
            if session is not None:
                break
        _SESSION_ACTIONS[access_key_id] = found
    return _SESSION_ACTIONS[access_key_id]


# Calls that need a second permission when they carry a parameter (AWS checks both).
IMPLIED_ACTIONS = {("secretsmanager", "CreateSecret", "Tags"): "TagResource"}


def implied_actions(service: str, operation: str, parameters: Any) -> list[str]:
    """The operations a call is authorized as: itself, and e.g. TagResource for a CreateSecret with Tags."""
    return [operation] + [
        implied
        for (on_service, on_operation, parameter), implied in IMPLIED_ACTIONS.items()
        if (on_service, on_operation) == (service, operation) and parameter in parameters
    ]


def _refuse_outside_session_policy(client: Any, operation_name: str, api_params: dict[str, Any]) -> None:
    credentials = client._get_credentials()
    if credentials is None or not str(credentials.access_key).startswith("ASIA"):
        return  # not an assumed-role session
    granted = _session_actions(credentials.access_key)
    if granted is None:
        return
    service = client.meta.service_model.signing_name
    for operation in implied_actions(service, operation_name, api_params):
        _refuse_unless_granted(f"{service}:{operation}".lower(), granted, operation_name)


def _refuse_unless_granted(action: str, granted: tuple[str, ...], operation_name: str) -> None:
    if not any(fnmatch.fnmatchcase(action, pattern) for pattern in granted):
        raise ClientError(
            {
                "Error": {"Code": "AccessDenied", "Message": f"{action} is not allowed by the session policy"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            operation_name,
        )


def _faulty_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    if CALLS.recording:
        CALLS.calls.append((self.meta.service_model.service_name, operation_name))
    if CALLS.watching:
        credentials = self._get_credentials()
        key = credentials.access_key if credentials is not None else None
        named = {name: str(value) for name, value in api_params.items() if name in IDENTIFYING_PARAMETERS}
        CALLS.signed.append(SignedCall(self.meta.service_model.service_name, operation_name, key, named))
    _refuse_outside_session_policy(self, operation_name, api_params)  # recorded first: a test sees the attempt
    if FAULTS.active:
        FAULTS.check(self.meta.service_model.service_name, operation_name, api_params)
    return _original_api_call(self, operation_name, api_params)
