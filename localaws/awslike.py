"""Make moto behave like AWS where the difference would hide bugs.

- IAM ListUsers returns every user in one page in moto; AWS returns 100 (MaxItems) a page.
- Organizations ListAccounts pages at 100 in moto; AWS returns at most 20, and sometimes an
  empty page with a NextToken.
- STS AssumeRole succeeds in moto for roles that do not exist; AWS refuses (AccessDenied).
- moto accepts requests signed with an IAM user's access key that is Inactive or deleted; AWS refuses
  them (``InvalidClientTokenId``, or ``UnrecognizedClientException`` for JSON services): :class:`UserKeys`.
- moto's DynamoDB is not thread-safe: a Query or Scan walking a partition while another thread writes to
  it fails (``RuntimeError: dictionary changed size during iteration``); AWS serves both. DynamoDB calls
  are served one at a time (a run's functions write the run's partition while an operator reads it):
  :class:`OneAtATime`.
- Step Functions Retry intervals really sleep; ``fast_retries`` keeps the retries (and their
  history events) but not the waiting.
- IAM credential reports are served as AWS serves them (:mod:`localaws.reports`).
- moto's EventBridge sends a PutEvents event to every rule of the bus, a schedule rule (no event pattern)
  or a DISABLED rule too, and then fails on a target it cannot deliver to (the stack's schedule rule
  targets the state machine); AWS matches an event only to ENABLED rules with an event pattern.
- moto's Distributed Map worker recurses once per item and dies of ``RecursionError`` past about a
  thousand items a worker; here it loops (:mod:`localaws.map_workers`).
- moto finds an account's backend by listing every account, and a DynamoDB Query sorts the whole table:
  both grow with the organization on every request; here they are direct (:mod:`localaws.lookups`).
- :class:`Faults` makes chosen AWS calls fail, as a test or the demo asks; :class:`CallLog` records
  the calls made, and while watching, the access key id that signed each (each Lambda invocation also
  records its own calls, see :func:`localaws.lambdas.current_invocation`).
- moto ignores session policies; here a call signed by an assumed-role session whose session policy
  does not grant its action is refused (AccessDenied), as AWS would (:class:`SessionPolicies`): every
  test then proves that each function's session grants what the function calls (actions only;
  resources and conditions are evaluated by tests/statemachine/test_session_policies.py).

Each :class:`~localaws.LocalAws` has its own :class:`AwsLike` (``aws.paging``, ``aws.faults``,
``aws.calls``, ``aws.sessions``, ``aws.user_keys``, ``aws.serving``, ``aws.reports``);
:meth:`AwsLike.installed` patches moto and botocore for the LocalAws's lifetime and puts the originals
back when it ends.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
from botocore.exceptions import ClientError
from moto.core.responses import ActionResult
from moto.events.models import Rule as EventsRule
from moto.iam.models import iam_backends
from moto.iam.responses import IamResponse
from moto.organizations.responses import OrganizationsResponse
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend, sts_backends

from localaws.key_accounts import KeyAccounts
from localaws.lambdas import current_invocation
from localaws.lookups import direct_lookups
from localaws.map_workers import looping_workers
from localaws.patching import patched
from localaws.reports import CredentialReports

IAM_PAGE_SIZE = 100
ACCOUNTS_PAGE_SIZE = 20
# Roles AssumeRole may enter although IAM has no such role: the organization's own admin role,
# which AWS creates in every account it creates, used here only to seed the accounts.
SEED_ROLES = frozenset({"OrganizationAccountAccessRole"})


@dataclass
class Paging:
    """Page sizes in force (tests lower them to exercise paging with fewer objects).

    >>> paging = Paging()
    >>> paging.users, paging.accounts
    (100, 20)
    """

    users: int = IAM_PAGE_SIZE
    accounts: int = ACCOUNTS_PAGE_SIZE
    empty_first_accounts_page: bool = True


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
    """AWS calls that fail on purpose: ``aws.faults.add("iam", "CreateAccessKey", "Throttling", times=1)``."""

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
    """Every AWS call made while recording, as ``(service, operation)``; while watching, as a :class:`SignedCall`."""

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

    def note(self, service: str, operation: str, access_key_id: str | None, parameters: Mapping[str, Any]) -> None:
        """Log a call about to be made, as recording and watching ask.

        >>> log = CallLog()
        >>> with log.watch() as seen:
        ...     log.note("iam", "DeleteAccessKey", "ASIAEXAMPLE", {"UserName": "alice", "Marker": "2"})
        >>> [(call.operation, call.access_key_id, call.identifiers) for call in seen]
        [('DeleteAccessKey', 'ASIAEXAMPLE', {'UserName': 'alice'})]
        """
        if self.recording:
            self.calls.append((service, operation))
        if self.watching:
            named = {name: str(value) for name, value in parameters.items() if name in IDENTIFYING_PARAMETERS}
            self.signed.append(SignedCall(service, operation, access_key_id, named))


# Calls that need a second permission when they carry a parameter (AWS checks both).
IMPLIED_ACTIONS = {("secretsmanager", "CreateSecret", "Tags"): "TagResource"}


def implied_actions(service: str, operation: str, parameters: Any) -> list[str]:
    """The operations a call is authorized as: itself, and e.g. TagResource for a CreateSecret with Tags.

    >>> implied_actions("secretsmanager", "CreateSecret", {"Name": "s", "Tags": []})
    ['CreateSecret', 'TagResource']
    """
    return [operation] + [
        implied
        for (on_service, on_operation, parameter), implied in IMPLIED_ACTIONS.items()
        if (on_service, on_operation) == (service, operation) and parameter in parameters
    ]


@dataclass
class SessionPolicies:
    """The actions each assumed-role session's session policy grants, read once per session from moto's STS.

    moto keeps the policy an AssumeRole was given but never applies it; :meth:`refuse_outside` does, for
    the actions a call is authorized as (see :func:`implied_actions`).
    """

    granted: dict[str, tuple[str, ...] | None] = field(default_factory=dict)  # access key id -> action patterns

    def actions(self, access_key_id: str) -> tuple[str, ...] | None:
        """What the session policy of the session ``access_key_id`` grants (lowercased); None without one."""
        if access_key_id not in self.granted:
            found: tuple[str, ...] | None = None
            for account_id in list(sts_backends):
                session = sts_backends[account_id]["aws"].get_assumed_role_from_access_key(access_key_id)
                if session is None:
                    continue
                if session.policy:
                    found = _allowed_actions(json.loads(session.policy))
                break
            self.granted[access_key_id] = found
        return self.granted[access_key_id]

    def note(self, access_key_id: str, policy: str | None) -> None:
        """Keep what a session just made by AssumeRole grants, so that no lookup walks every account for it."""
        self.granted[access_key_id] = _allowed_actions(json.loads(policy)) if policy else None

    def refuse_outside(self, service: str, operation: str, access_key_id: str | None, parameters: Any) -> None:
        """Raise AccessDenied, as AWS would, if the call is signed by a session whose policy does not grant it.

        ``service`` is the signing name (the prefix of IAM actions); credentials that are not an
        assumed role's (``ASIA...``) or a session without a session policy are not limited here.
        """
        if access_key_id is None or not access_key_id.startswith("ASIA"):
            return
        granted = self.actions(access_key_id)
        if granted is None:
            return
        for authorized_as in implied_actions(service, operation, parameters):
            action = f"{service}:{authorized_as}".lower()
            if not any(fnmatch.fnmatchcase(action, pattern) for pattern in granted):
                raise ClientError(
                    {
                        "Error": {"Code": "AccessDenied", "Message": f"{action} is not allowed by the session policy"},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    },
                    operation,
                )


def _allowed_actions(policy: Mapping[str, Any]) -> tuple[str, ...]:
    """The action patterns a policy's Allow statements name, lowercased.

    >>> _allowed_actions({"Statement": {"Effect": "Allow", "Action": "iam:ListUsers"}})
    ('iam:listusers',)
    """
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    return tuple(
        action.lower()
        for statement in statements
        if statement.get("Effect") == "Allow"
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    )


# Long-term IAM user keys start with AKIA (moto's too); temporary credentials (ASIA) and the local ones do not.
USER_KEY_PREFIX = "AKIA"
# Services whose protocol is a query (IAM, STS...) answer a refused key with InvalidClientTokenId; JSON ones
# (Secrets Manager, DynamoDB...) with UnrecognizedClientException.
QUERY_PROTOCOLS = frozenset({"query", "ec2"})


@dataclass
class UserKeys:
    """IAM user access keys as AWS authenticates them: a request signed with one that is Inactive, or that no
    longer exists, is refused (moto serves it).

    >>> UserKeys().refuse_unusable("json", "GetSecretValue", "ASIAEXAMPLE")  # not a user's key: not judged here
    """

    def refuse_unusable(self, protocol: str, operation: str, access_key_id: str | None) -> None:
        """Raise the error AWS answers a request signed with ``access_key_id`` if it is a user's key not Active."""
        if access_key_id is None or not access_key_id.startswith(USER_KEY_PREFIX):
            return
        if self.status(access_key_id) == "Active":
            return
        code = "InvalidClientTokenId" if protocol in QUERY_PROTOCOLS else "UnrecognizedClientException"
        raise ClientError(
            {
                "Error": {"Code": code, "Message": "The security token included in the request is invalid."},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            operation,
        )

    @staticmethod
    def status(access_key_id: str) -> str | None:
        """The key's status (Active, Inactive) in whichever account holds it; None once it is deleted."""
        for account_id in list(iam_backends):
            key = iam_backends[account_id]["aws"].access_keys.get(access_key_id)
            if key is not None:
                return str(key.status)
        return None


@dataclass
class OneAtATime:
    """Services whose calls moto must serve one at a time, and the lock that takes turns.

    moto's DynamoDB is not thread-safe (a Query walking a partition while another thread writes to it fails);
    AWS's is. Other services are served as they come.

    >>> serving = OneAtATime()
    >>> with serving.turn("dynamodb"):
    ...     serving.lock.locked()
    True
    >>> with serving.turn("iam"):
    ...     serving.lock.locked()
    False
    """

    services: frozenset[str] = frozenset({"dynamodb"})
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def turn(self, service: str) -> Iterator[None]:
        """The block runs alone among calls to ``service`` if that service is served one at a time."""
        if service not in self.services:
            yield
            return
        with self.lock:
            yield


class _NoSleep:
    """The ``time`` module as the retrier sees it, minus the waiting."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:  # noqa: ARG002 - the point is not to wait
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _matching_rules_only(send: Callable[..., None]) -> Callable[..., None]:
    """AWS-like: an event goes to an ENABLED rule that has an event pattern (a schedule rule has none)."""

    def send_to_targets(rule: EventsRule, event: Any, *args: Any, **kwargs: Any) -> None:
        if rule.state == "ENABLED" and rule.event_pattern.get_pattern():
            send(rule, event, *args, **kwargs)

    return send_to_targets


@dataclass
class AwsLike:
    """One LocalAws's AWS-like behaviour: paging, injected faults, call log, session policies, user keys, DynamoDB
    served one call at a time, credential reports."""

    paging: Paging = field(default_factory=Paging)
    faults: Faults = field(default_factory=Faults)
    calls: CallLog = field(default_factory=CallLog)
    sessions: SessionPolicies = field(default_factory=SessionPolicies)
    user_keys: UserKeys = field(default_factory=UserKeys)
    serving: OneAtATime = field(default_factory=OneAtATime)
    reports: CredentialReports = field(default_factory=CredentialReports)
    key_accounts: KeyAccounts = field(default_factory=KeyAccounts)

    @contextmanager
    def installed(self, fast_retries: bool = True) -> Iterator[AwsLike]:
        """Patch moto and botocore for the block; every original is back in place at its end."""
        with ExitStack() as stack:
            stack.enter_context(patched(IamResponse, "list_users", self._list_users()))
            stack.enter_context(patched(OrganizationsResponse, "list_accounts", self._list_accounts()))
            stack.enter_context(
                patched(STSBackend, "assume_role", self._assume_role(STSBackend.assume_role, self.sessions))
            )
            stack.enter_context(self.key_accounts.installed())
            stack.enter_context(looping_workers())
            stack.enter_context(direct_lookups())
            generate, get = self.reports.responses()
            stack.enter_context(patched(IamResponse, "generate_credential_report", generate))
            stack.enter_context(patched(IamResponse, "get_credential_report", get))
            stack.enter_context(
                patched(botocore.client.BaseClient, "_make_api_call", self._api_call(botocore.client.BaseClient))
            )
            stack.enter_context(
                patched(EventsRule, "send_to_targets", _matching_rules_only(EventsRule.send_to_targets))
            )
            if fast_retries:
                stack.enter_context(patched(retrier_decl, "time", _NoSleep(retrier_decl.time)))
            yield self

    def _list_users(self) -> Callable[[IamResponse], Any]:
        paging = self.paging

        def list_users(response: IamResponse) -> Any:
            """AWS-like: at most MaxItems (default 100) users a page, in name order, with a Marker."""
            marker = response._get_param("Marker")
            max_items = int(response._get_param("MaxItems") or paging.users)
            users = sorted(
                response.backend.list_users(response._get_param("PathPrefix"), None, None), key=lambda user: user.name
            )
            start = int(marker) if marker else 0
            page = users[start : start + max_items]
            truncated = start + max_items < len(users)
            result: dict[str, Any] = {"Users": page, "IsTruncated": truncated}
            if truncated:
                result["Marker"] = str(start + max_items)
            return ActionResult(result)

        return list_users

    def _list_accounts(self) -> Callable[[OrganizationsResponse], str]:
        paging = self.paging

        def list_accounts(response: OrganizationsResponse) -> str:
            """AWS-like: at most ``paging.accounts`` a page, and an empty first page that carries a NextToken."""
            token = response._get_param("NextToken")
            size = min(int(response._get_param("MaxResults") or paging.accounts), paging.accounts)
            if token is None and paging.empty_first_accounts_page:
                return json.dumps({"Accounts": [], "NextToken": "page-0"})
            start = int(token.removeprefix("page-")) if token else 0
            accounts = sorted(
                (account.describe() for account in response.organizations_backend.accounts),
                key=lambda account: (account["JoinedTimestamp"], account["Id"]),
            )
            result: dict[str, Any] = {"Accounts": accounts[start : start + size]}
            if start + size < len(accounts):
                result["NextToken"] = f"page-{start + size}"
            return json.dumps(result)

        return list_accounts

    @staticmethod
    def _assume_role(original: Callable[..., Any], sessions: SessionPolicies) -> Callable[..., Any]:
        def assume_role(backend: STSBackend, **kwargs: Any) -> Any:
            """AWS-like: AccessDenied for a role that does not exist (but the organization's own admin role)."""
            role_arn = kwargs["role_arn"]
            account_id, role_name = role_arn.split(":")[4], role_arn.split("/")[-1]
            if role_name not in SEED_ROLES:
                roles = iam_backends[account_id]["aws"].roles.values()
                if not any(role.arn == role_arn or role.name == role_name for role in roles):
                    raise STSClientError(
                        "AccessDenied", f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                    )
            session = original(backend, **kwargs)
            sessions.note(session.access_key_id, session.policy)
            return session

        return assume_role

    def _api_call(self, client_class: type[botocore.client.BaseClient]) -> Callable[..., Any]:
        original = client_class._make_api_call
        faults, calls, sessions, user_keys = self.faults, self.calls, self.sessions, self.user_keys
        serving = self.serving

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            service_model = client.meta.service_model
            credentials = client._get_credentials()
            access_key_id = str(credentials.access_key) if credentials is not None else None
            calls.note(service_model.service_name, operation_name, access_key_id, api_params)
            invocation = current_invocation()
            if invocation is not None:
                invocation.calls.append((service_model.service_name, operation_name))
            # After the note: a test sees the attempt that AWS refuses. A key is authenticated before its
            # session policy is applied.
            user_keys.refuse_unusable(service_model.protocol, operation_name, access_key_id)
            sessions.refuse_outside(service_model.signing_name, operation_name, access_key_id, api_params)
            if faults.active:
                faults.check(service_model.service_name, operation_name, api_params)
            with serving.turn(service_model.service_name):
                return original(client, operation_name, api_params)

        return make_api_call
