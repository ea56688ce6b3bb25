"""The user's secret in the member account: ``Account_<id>_User_<name>_AccessKey``.

A secret is the product's for a user only when the product created it for that
very user. A name proves nothing (anyone allowed to may create a secret under
any name, and IAM gives a deleted user's name to the next user made with it),
so the binding is kept where no member-account principal can write: the
ledger's delivery record of the user holds the user's IAM unique id
(``UserId``) and the ARN the secret got when the product created it. An ARN
ends in six random characters, so a secret deleted and created again under the
same name has another one. Every read and write here goes to that exact ARN,
and fails for a secret that is gone or scheduled for deletion (a read names the
version and its label too).

Life of a delivery:

1. :func:`find` and :func:`bound_arn` (create_key, before CreateAccessKey): the
   secret under the user's name is either absent, or the one bound to the user;
   anything else is a :class:`~keyrotation.errors.SecretConflict` and nothing
   is changed. An absent secret is made by :func:`create`, tagged with a token
   the ledger recorded just before, so that a run that dies before the ARN is
   recorded still knows its own secret next time. Skipped when the ledger shows
   the bound secret with its user-only policy applied as it is now: that policy
   keeps everyone else from deleting or replacing it, and only create_key's
   session may change it.
2. :func:`apply_policy` (create_key, before CreateAccessKey) applies the user-only
   policy to a secret it has just created, or whose policy the ledger does not
   show applied as it is now (:func:`policy_digest`), then :func:`stage_pending`
   writes ``{"AccessKeyId", "SecretAccessKey"}`` as a new version labelled
   ``AWSPENDING``, whose id is the key's own (:func:`version_for`).
3. :func:`read_pending` (verify_key) reads it back to sign one STS call.
4. :func:`promote` (store_secret) moves ``AWSCURRENT`` to it: straight away when
   create_key saw where ``AWSCURRENT`` was, else after a fresh DescribeSecret.

The secret value is never returned to a caller outside this package's
functions, never logged, and never put in an exception.

Example:
    >>> arn = bound_arn(name, find(sm, name), user, delivery)          # doctest: +SKIP
    >>> apply_policy(sm, arn, user.user_arn, user.user_id, role_arn)   # doctest: +SKIP
    >>> staged = stage_pending(sm, arn, access_key)                    # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from keyrotation import clock, secret_policy
from keyrotation.aws import error_code, translate_errors
from keyrotation.errors import DeliveryFailed, SecretConflict, Throttled, TransientAwsError
from keyrotation.model import Delivery, UserSnapshot

PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"
MANAGED_BY = "iam-key-rotation"
#: The secret's tags a person can read: who it is for. The binding itself is in the ledger.
USER_ID_TAG = "UserId"
#: The tag that carries the token recorded in the ledger just before the secret was created.
TOKEN_TAG = "KeyRotationToken"  # a tag's name, not a password  # nosec B105
#: Names the version ids :func:`version_for` derives from key ids.
_VERSIONS = uuid.UUID("6f1f4a52-2b1c-4c0e-9a57-3e1d2c7b8a90")
#: What UpdateSecretVersionStage answers when the labels are not where the caller thought (or the secret is
#: gone, or scheduled for deletion): nothing was changed, and a fresh DescribeSecret says what to do.
_STALE = frozenset({"InvalidParameterException", "InvalidRequestException", "ResourceNotFoundException"})


def user_only_policy(user_arn: str, user_id: str, manager_role_arn: str) -> str:
    """The secret's resource policy (:mod:`keyrotation.secret_policy`): the user reads, the role writes, nobody else."""
    return json.dumps(secret_policy.user_only_policy(user_arn, user_id, manager_role_arn))


def tag_value(text: str) -> str:
    """``text`` as a tag value: Secrets Manager refuses a comma there, written ``/`` as in secret names.

    >>> tag_value("ops,admin")
    'ops/admin'
    """
    return text.replace(",", "/")


def new_token() -> str:
    return str(uuid.uuid4())


def version_for(key_id: str) -> str:
    """The id of the secret version that holds ``key_id``: one per key, known to every step without a read.

    IAM never reuses a key id, so no two versions of a secret get the same id. The step that makes a
    version current knows where ``AWSCURRENT`` is without asking: on the version of the key being rotated.

    >>> version_for("AKIAEXAMPLE") == version_for("AKIAEXAMPLE") != version_for("AKIAOTHER")
    True
    """
    return str(uuid.uuid5(_VERSIONS, key_id))


def policy_digest(arn: str, user_arn: str, user_id: str, manager_role_arn: str) -> str:
    """A digest of the user-only policy as it is to be on the secret ``arn`` (its ARN included).

    Recorded in the ledger when the policy is applied; a rotation applies it again only when this differs:
    the user's ARN changed (a new path), the member role's name, the product's policy, or the secret.
    """
    document = json.dumps([arn, secret_policy.user_only_policy(user_arn, user_id, manager_role_arn)], sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()


# -- whose secret is it ---------------------------------------------------------------------------------


def find(sm: Any, name: str) -> dict[str, Any] | None:
    """DescribeSecret of the secret named ``name``; None when there is none."""
    try:
        with translate_errors():
            return dict(sm.describe_secret(SecretId=name))
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def bound_arn(name: str, described: dict[str, Any], user: UserSnapshot, delivery: Delivery) -> str:
    """The ARN of ``described`` when it is the secret the product created for ``user``; else SecretConflict.

    It is when the ledger recorded its ARN for this user, or, when the run that created it died
    before the ARN was recorded, when it carries the token the ledger recorded for this user just
    before creating it. A secret scheduled for deletion is not written to either.
    """
    arn = str(described["ARN"])
    binding = delivery.for_user(user.user_id)
    if binding.secret_arn is not None:
        ours = arn == binding.secret_arn
    else:
        ours = binding.secret_token is not None and _tags(described).get(TOKEN_TAG) == binding.secret_token
    if not ours:
        raise SecretConflict(
            f"the secret {name} ({arn}) was not created by key rotation for user {user.user_name} "
            f"(UserId {user.user_id}): someone else made it, or it was made for an earlier user of that name, "
            "or it was replaced since. It was not read or written, and nothing was changed; delete it or give "
            "it another name to let the rotation go on"
        )
    _refuse_deleted(name, described)
    return arn


def create(sm: Any, name: str, user: UserSnapshot, token: str, kms_key: str | None = None) -> str:
    """Create the user's secret, tagged with ``token`` (already in the ledger); return its ARN.

    ``kms_key``: the alias of the customer managed key that encrypts it (SecretsKmsKeyAlias); None,
    Secrets Manager's AWS managed key. Raises SecretConflict when a secret of that name appeared
    meanwhile (or is scheduled for deletion).
    """
    tags = {"ManagedBy": MANAGED_BY, "UserName": tag_value(user.user_name), USER_ID_TAG: user.user_id, TOKEN_TAG: token}
    try:
        with translate_errors():
            created = sm.create_secret(
                Name=name,
                Description=f"IAM access key of {user.user_arn}, delivered by key rotation",
                Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
                **({"KmsKeyId": kms_key} if kms_key else {}),
            )
    except ClientError as error:
        if error_code(error) == "ResourceExistsException":
            raise SecretConflict(
                f"the secret {name} appeared while key rotation was creating it for user {user.user_name} "
                f"(UserId {user.user_id}), or it is scheduled for deletion; it was not written"
            ) from None
        raise
    return str(created["ARN"])


def _describe_bound(sm: Any, arn: str) -> dict[str, Any]:
    """DescribeSecret of the exact secret ``arn``; SecretConflict when it is gone or scheduled for deletion."""
    try:
        with translate_errors():
            described = dict(sm.describe_secret(SecretId=arn))
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise _gone(arn) from None
        raise
    _refuse_deleted(arn, described)
    return described


def _gone(arn: str) -> SecretConflict:
    return SecretConflict(
        f"the secret {arn} that key rotation created for this user no longer exists (it was deleted, "
        "or replaced by another of the same name); it is not written"
    )


def _refuse_deleted(name: str, described: dict[str, Any]) -> None:
    if described.get("DeletedDate"):
        raise SecretConflict(
            f"the secret {name} is scheduled for deletion: restore it (restore-secret) or let it be deleted "
            "before the rotation can go on; it was not written"
        )


def _tags(described: dict[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in described.get("Tags", [])}


# -- one delivery --------------------------------------------------------------------------------------


def apply_policy(sm: Any, arn: str, user_arn: str, user_id: str, manager_role_arn: str) -> None:
    """Put the user-only policy on the bound secret ``arn`` (with ``BlockPublicPolicy``), before any value is written.

    Only the member role's create session may call PutResourcePolicy on a key secret (its session policy,
    the secret's own policy and the organization's SCP), so a policy applied stays as it was applied.
    """
    with translate_errors():
        sm.put_resource_policy(
            SecretId=arn,
            ResourcePolicy=user_only_policy(user_arn, user_id, manager_role_arn),
            BlockPublicPolicy=True,
        )


@dataclass(frozen=True)
class Staged:
    """The version :func:`stage_pending` wrote: its id, and whether Secrets Manager made it current already.

    A secret's first version gets ``AWSCURRENT`` by itself, whatever the caller asks for.
    """

    version_id: str
    current: bool


def stage_pending(sm: Any, arn: str, access_key: dict[str, Any]) -> Staged:
    """Store the new key as the pending version of the bound secret ``arn``, whose policy is already applied.

    The version's id is :func:`version_for` the key. The caller found ``arn`` there and bound to the user
    a moment ago, in this invocation (:func:`find` and :func:`bound_arn`, or :func:`create`).

    Any failure is raised as :class:`DeliveryFailed` without the original
    exception attached, so no stack trace can carry the value.
    """
    version_id = version_for(str(access_key["AccessKeyId"]))
    try:
        with translate_errors():
            written = sm.put_secret_value(
                SecretId=arn,
                ClientRequestToken=version_id,
                SecretString=json.dumps(
                    {"AccessKeyId": access_key["AccessKeyId"], "SecretAccessKey": access_key["SecretAccessKey"]}
                ),
                VersionStages=[PENDING],
            )
    except (Throttled, TransientAwsError, SecretConflict):
        raise  # their messages name the operation or the secret only, never the value
    except Exception as error:  # noqa: BLE001 - re-raised without the original, which may hold the value
        reason = error_code(error) if isinstance(error, ClientError) else type(error).__name__
        raise DeliveryFailed(f"could not write the new key {access_key['AccessKeyId']} to {arn}: {reason}") from None
    return Staged(version_id=version_id, current=CURRENT in written.get("VersionStages", []))


def current_version(described: dict[str, Any]) -> str | None:
    """The id of the version labelled ``AWSCURRENT`` in a DescribeSecret answer, or None."""
    labels: dict[str, list[str]] = described.get("VersionIdsToStages", {})
    return next((version for version, names in labels.items() if CURRENT in names), None)


class NotPending(Exception):
    """The version is no longer labelled AWSPENDING (made current, or replaced): the role may not read it."""


def read_pending(sm: Any, arn: str, version_id: str) -> dict[str, str]:
    """The value of ``version_id`` of the bound secret ``arn`` while it is still pending: one call.

    Naming the version and its label makes Secrets Manager refuse a secret that is gone or scheduled
    for deletion, and a version that is no longer pending (:class:`NotPending`) or not there
    (:class:`DeliveryFailed`). No error carries the value. Both are needed anyway: the member role may
    read a version only by its AWSPENDING label (``secretsmanager:VersionStage``).
    """
    try:
        with translate_errors():
            value = sm.get_secret_value(SecretId=arn, VersionId=version_id, VersionStage=PENDING)["SecretString"]
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise _gone(arn) from None
        if error_code(error) == "InvalidRequestException":  # the label is on another version, or on none
            raise NotPending(f"version {version_id} of {arn} is no longer pending") from None
        raise DeliveryFailed(f"version {version_id} of {arn} cannot be read ({error_code(error)})") from None
    return dict(json.loads(value))


def stages(sm: Any, arn: str) -> dict[str, list[str]]:
    """Version id -> labels, for the versions of the bound secret that still have a label."""
    return dict(_describe_bound(sm, arn).get("VersionIdsToStages", {}))


def is_delivered(sm: Any, arn: str | None, version_id: str) -> bool:
    """Whether :func:`promote` made ``version_id`` of the bound secret ``arn`` current.

    Secrets Manager labels a secret's first version AWSCURRENT by itself, whatever
    :func:`stage_pending` asks for; such a version still has AWSPENDING until promoted.
    A secret that is gone or not bound (``arn`` None) delivered nothing.
    """
    if arn is None:
        return False
    try:
        labels = stages(sm, arn).get(version_id, [])
    except SecretConflict:
        return False
    return CURRENT in labels and PENDING not in labels


def promote(sm: Any, arn: str, version_id: str, tags: dict[str, str], current_on: str | None = None) -> str:
    """Make ``version_id`` current (idempotent) and tag; return the secret ARN.

    ``current_on``: the version that holds ``AWSCURRENT``, as create_key saw it when it wrote ``version_id``
    (``version_id`` itself when Secrets Manager made the first version current). Then the labels are moved
    without reading them first: UpdateSecretVersionStage moves a label only from the version named in
    ``RemoveFromVersionId``, and refuses, changing nothing, when the label is not there (moved since, or
    this is a retry whose first attempt moved it), or when the secret is gone or scheduled for deletion.
    Any such refusal, or no ``current_on``, and the labels are read afresh (DescribeSecret) and moved from
    where they are. The user-only policy was applied before the value was written (create_key).
    """
    if current_on is not None:
        try:
            _move_labels(
                sm, arn, version_id, pending=True, current_from=None if current_on == version_id else current_on
            )
            _tag(sm, arn, tags)
            return arn
        except ClientError as error:
            if error_code(error) not in _STALE:
                raise
    described = _describe_bound(sm, arn)
    labels: dict[str, list[str]] = described.get("VersionIdsToStages", {})
    # A version with no label left is not listed: an earlier attempt took AWSPENDING off it and stopped before
    # AWSCURRENT moved. Moving AWSCURRENT to it then fails, changing nothing, if there is no such version.
    held = labels.get(version_id, [])
    try:
        _move_labels(
            sm,
            arn,
            version_id,
            pending=PENDING in held,
            current_from=None if CURRENT in held else current_version(described) or "",
        )
    except ClientError as error:
        if error_code(error) not in ("InvalidParameterException", "ResourceNotFoundException") or version_id in labels:
            raise
        raise DeliveryFailed(f"version {version_id} of {arn} does not exist") from None
    _tag(sm, arn, tags)
    return str(described["ARN"])


def _move_labels(sm: Any, arn: str, version_id: str, pending: bool, current_from: str | None) -> None:
    """Take ``AWSPENDING`` off ``version_id`` (if ``pending``), then move ``AWSCURRENT`` to it from ``current_from``.

    ``current_from`` None: ``AWSCURRENT`` is on ``version_id`` already; "": on no version.
    AWSPENDING goes first: a version that has AWSCURRENT and still AWSPENDING counts as undelivered
    (:func:`is_delivered`), so a run that dies between the two moves must not leave AWSCURRENT on it.
    """
    with translate_errors():
        if pending:
            sm.update_secret_version_stage(SecretId=arn, VersionStage=PENDING, RemoveFromVersionId=version_id)
        if current_from is not None:
            move: dict[str, Any] = {"SecretId": arn, "VersionStage": CURRENT, "MoveToVersionId": version_id}
            if current_from:
                move["RemoveFromVersionId"] = current_from
            sm.update_secret_version_stage(**move)


def _tag(sm: Any, arn: str, tags: dict[str, str]) -> None:
    stamped = {**tags, "RotatedAt": clock.to_iso(clock.now())}
    with translate_errors():
        sm.tag_resource(SecretId=arn, Tags=[{"Key": key, "Value": tag_value(value)} for key, value in stamped.items()])
