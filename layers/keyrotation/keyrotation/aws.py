"""boto3 clients, and the one way into a member account.

Retries are the state machine's job (Retry blocks in the ASL, visible in the
execution history), so clients make a single attempt. AWS errors worth
retrying are turned into :class:`~keyrotation.errors.Throttled` or
:class:`~keyrotation.errors.TransientAwsError` by :func:`translate_errors`,
the names the ASL retries on.

The AWS SDK never logs below INFO in a process that imports this module
(:func:`silence_sdk_debug`): at DEBUG, botocore writes request and response
bodies, which here hold secret access keys.

Example:
    >>> session = member_session("111122223333", "2026-11-24", Purpose.AUDIT)  # doctest: +SKIP
    >>> iam = client("iam", session)                                    # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from keyrotation import config
from keyrotation.errors import MemberRoleUnavailable, Throttled, TransientAwsError
from keyrotation.sessions import Purpose, Target, policy_text, session_name

_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=20)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
    }
)
TRANSIENT_CODES = frozenset(
    {"ServiceUnavailable", "ServiceUnavailableException", "InternalError", "InternalFailure", "InternalServerError"}
)
_ASSUME_ROLE_REFUSALS = frozenset({"AccessDenied", "AccessDeniedException", "NoSuchEntity", "RegionDisabledException"})


@dataclass(frozen=True, repr=False)
class MemberSession:
    """Credentials in a member account (the role's, or a new key being verified). ``repr`` hides them."""

    account_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


#: The AWS SDK's loggers (and their children). At DEBUG they log the wire: botocore.endpoint the request
#: parameters and body (PutSecretValue's SecretString), botocore.parsers the response body (the secret of
#: CreateAccessKey, GetSecretValue and AssumeRole), botocore.auth the signed headers (the session token).
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


class _NoSdkDebug(logging.Filter):
    """Drops every record below INFO. On a logger, a filter applies to the records created there,
    whatever level any logger or handler is set to, and before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO


_NO_SDK_DEBUG = _NoSdkDebug()


def silence_sdk_debug() -> None:
    """Make the AWS SDK unable to log below INFO in this process. Idempotent, and cheap enough to repeat.

    Two locks, because no setting may undo this (POWERTOOLS_LOG_LEVEL, Lambda's AWS_LAMBDA_LOG_LEVEL,
    which sets the root logger's level, LOG_LEVEL, a template's LoggingConfig, a Powertools Logger that
    copies its level to other loggers or handles the root logger's records):

    - the SDK's top loggers are set to INFO at least, so their children, which keep the level NOTSET,
      create no DEBUG record at all, whatever the root logger's level;
    - every SDK logger that exists gets a filter that drops records below INFO, so a level set to DEBUG
      on any of them later is of no use either.

    Dropping all of the SDK's DEBUG output, rather than that of the calls that carry secrets, is on purpose:
    the record of a response body does not name its operation, and the signed headers of every call carry
    the session token. The product's own logs are unaffected: they go through the Powertools Logger.
    :func:`client` calls this again after creating a client, for the SDK loggers created since.
    """
    for name in SDK_LOGGERS:
        top = logging.getLogger(name)
        if top.level < logging.INFO:  # NOTSET (0) included: it would take the root logger's level
            top.setLevel(logging.INFO)
    for name, existing in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(existing, logging.Logger) or name.split(".", 1)[0] not in SDK_LOGGERS:
            continue
        if _NO_SDK_DEBUG not in existing.filters:
            existing.addFilter(_NO_SDK_DEBUG)


@functools.cache
def _base_session() -> boto3.Session:
    # One session per process: creating a session re-reads botocore's service models (slow).
    return boto3.Session()


def region() -> str:
    return str(_base_session().region_name or "us-east-1")


def client(service: str, session: MemberSession | None = None) -> Any:
    """A client with the project's timeouts and no hidden retries; in a member account if ``session``."""
    if session is None:
        made = _base_session().client(service, config=_CLIENT_CONFIG)
    else:
        made = _base_session().client(
            service,
            config=_CLIENT_CONFIG,
            aws_access_key_id=session.access_key_id,
            aws_secret_access_key=session.secret_access_key,
            aws_session_token=session.session_token,
        )
    silence_sdk_debug()  # loggers the SDK created while making the client
    return made


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def partition(region_name: str | None = None) -> str:
    """The partition of ``region_name`` (default: the functions' own region): aws, aws-us-gov, aws-cn."""
    return str(_base_session().get_partition_for_region(region_name or region()))


def member_role_arn(account_id: str, partition_name: str | None = None) -> str:
    """The member-account role's ARN in ``account_id``, in the functions' partition unless told."""
    return f"arn:{partition_name or partition()}:iam::{account_id}:role/{config.member_role_name()}"


def member_session(
    account_id: str,
    run_id: str,
    purpose: Purpose,
    user_name: str | None = None,
    exemption_group: str | None = None,
) -> MemberSession:
    """A session in ``account_id`` through the member-account role, narrowed to ``purpose``.

    The session policy of ``purpose`` (:mod:`keyrotation.sessions`) limits it to what that
    function calls, on ``user_name`` and that user's secret only when the purpose acts on one
    user's key; the session name says which function of which run holds it.

    Raises :class:`MemberRoleUnavailable`, naming the role and the account, when
    the role is missing or does not trust us.
    """
    sts = client("sts")
    target = Target(
        partition=partition(sts.meta.region_name),
        region=sts.meta.region_name,
        account_id=account_id,
        user_name=user_name,
        exemption_group=exemption_group,
    )
    role_arn = member_role_arn(account_id, target.partition)
    try:
        with translate_errors():
            credentials = sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName=session_name(purpose, run_id),
                Policy=policy_text(purpose, target),
            )["Credentials"]
    except ClientError as error:
        if error_code(error) in _ASSUME_ROLE_REFUSALS:
            raise MemberRoleUnavailable(
                f"cannot assume {role_arn} in account {account_id} ({error_code(error)}): deploy the member-account "
                "role there (member-account/role.yaml) or exclude the account"
            ) from None
        raise
    return MemberSession(
        account_id=account_id,
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise AWS throttling and 5xx errors under the names the ASL retries on."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        operation = getattr(error, "operation_name", "AWS call")
        if code in THROTTLING_CODES:
            raise Throttled(f"{operation} was throttled ({code})") from None
        if code in TRANSIENT_CODES or status >= 500:
            raise TransientAwsError(f"{operation} failed with {code or status}") from None
        raise
    except (ConnectionError, ReadTimeoutError) as error:
        raise TransientAwsError(f"network error: {type(error).__name__}") from None


F = TypeVar("F", bound=Callable[..., Any])


def retry_names(func: F) -> F:
    """Decorator form of :func:`translate_errors` for handlers."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with translate_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


silence_sdk_debug()  # before any client exists: every handler imports this module
