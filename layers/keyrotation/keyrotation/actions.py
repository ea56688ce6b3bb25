"""Carrying out one planned action, safely and at most once.

Each function that decides re-reads the user (keys, tags, groups) and the ledger,
asks the policy again, and mutates only if the action is still wanted (CreateKey
takes the user's groups as the audit read them, see :data:`GROUPS_AS_AUDITED`). A retried step
or a repeated run therefore finds nothing left to do and says ``skipped``.
Two rules are also checked right before the IAM call, whatever the policy
says: an Active key is never deleted, and CreateAccessKey is never called for
a user who already has two keys. A key is only ever written to, or read from,
the secret the product created for that very user (:mod:`keyrotation.secrets`);
that is checked before CreateAccessKey, so a conflict changes nothing (a secret
the ledger shows bound and under its user-only policy is written to its exact ARN
without a look: if it were gone, the write fails and the new key is taken back).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from keyrotation import clock, config, naming, policy, secrets
from keyrotation.aws import MemberSession, client, error_code, member_role_arn, translate_errors
from keyrotation.config import LifecycleConfig
from keyrotation.errors import DeliveryFailed, KeyNotYetValid, NoFreeKeySlot, UnsafeAction
from keyrotation.events import Account, Created, Run
from keyrotation.inventory import read_user
from keyrotation.ledger import ActionStatus, Ledger
from keyrotation.model import AccessKey, Action, Delivery, KeyStatus, UserSnapshot
from keyrotation.observability import logger
from keyrotation.paging import items

#: The groups CreateKey takes its user to be in: none, as the audit read them when it planned the rotation.
#: The audit read the exemption group's members (GetGroup) and planned this rotation, so the user was not in
#: it; the actions of an account run one at a time within that execution, so the reading is minutes old. An
#: exemption by group only holds a rotation back (a preference): a rotation never loses a key (the old key
#: stays Active, and is disabled only by DisableKey, which reads the groups again). An exemption by tag is
#: read afresh all the same: GetUser, which CreateKey needs for the user's unique id, returns the tags.
GROUPS_AS_AUDITED: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Context:
    """What every action needs: where, which run, and the clients into the member account."""

    account: Account
    run: Run
    session: MemberSession
    ledger: Ledger
    config: LifecycleConfig

    @cached_property
    def iam(self) -> Any:
        return client("iam", self.session)

    @cached_property
    def secretsmanager(self) -> Any:
        return client("secretsmanager", self.session)

    @property
    def manager_role_arn(self) -> str:
        return member_role_arn(self.account.account_id)


def _skip(ctx: Context, action: Action, why: str) -> dict[str, Any]:
    """Record and report an action that is no longer needed (a retry, a repeated run, a changed user).

    A retry of this run's own step, whose change was made before the step failed, completes it instead.
    """
    if ctx.ledger.complete_applying(ctx.run.run_id, ctx.account.account_id, action):
        _log(ctx, "done by an earlier attempt of this step", action)
        return {"status": ActionStatus.DONE.value}
    ctx.ledger.record_action(
        ctx.run.run_id, ctx.account.account_id, action, status=ActionStatus.SKIPPED, skipReason=why
    )
    _log(ctx, "skipped", action, reason=why)
    return {"status": ActionStatus.SKIPPED.value, "reason": why}


def _still_wanted(
    ctx: Context, action: Action, groups: frozenset[str] | None = None
) -> tuple[UserSnapshot | None, Delivery, str | None]:
    """Re-read the user (its ``groups`` too, unless given), ask the policy again: (user, delivery, why not)."""
    user = read_user(ctx.iam, action.user_name, groups=groups)
    delivery = ctx.ledger.delivery(ctx.account.account_id, action.user_name, user.user_id if user else "")
    if user is None:
        return None, delivery, f"user {action.user_name} no longer exists"
    decision = policy.decide(user, delivery, clock.now(), ctx.config)
    if not policy.wants(decision, action.type, action.key_id):
        return user, delivery, f"{action.type.value} of {action.key_id} is no longer needed"
    return user, delivery, None


def _find(user: UserSnapshot, key_id: str) -> AccessKey | None:
    return next((key for key in user.keys if key.key_id == key_id), None)


def _log(ctx: Context, message: str, action: Action, **extra: Any) -> None:
    logger.info(
        message,
        extra={
            "account_id": ctx.account.account_id,
            "user": action.user_name,
            "key_id": action.key_id,
            "action": action.type.value,
            "run_id": ctx.run.run_id,
            **extra,
        },
    )


def _refuse_dry_run(ctx: Context, action: Action) -> None:
    """No mutation in a dry run: the run's, or the stack's own DryRun, whatever the event says.

    A function invoked directly, not by the state machine, cannot talk its way out of the stack's
    DryRun=true with ``"dryRun": false``.
    """
    if ctx.run.dry_run or config.dry_run():
        why = "the run is a dry run" if ctx.run.dry_run else "the stack's DryRun is true"
        raise UnsafeAction(f"{why}: {action.type.value} of {action.key_id} must not be carried out")


# -- rotate: create, verify, store ---------------------------------------------------------------------------


def create_replacement(ctx: Context, action: Action) -> dict[str, Any]:
    _refuse_dry_run(ctx, action)
    user, delivery, why_not = _still_wanted(ctx, action, groups=GROUPS_AS_AUDITED)
    unknown = policy.unknown_origin_keys(user.keys, delivery) if user is not None else ()
    if unknown:  # e.g. a retry after CreateAccessKey timed out: fail visibly rather than skip
        listed = ", ".join(key.key_id for key in unknown)
        raise UnsafeAction(
            f"user {action.user_name} in account {ctx.account.account_id} has key {listed} of unknown origin: an "
            "earlier CreateAccessKey may have made it but its id was not recorded. Nothing is changed for this user "
            "until a person resolves it (docs/lifecycle.md, 'Keys of unknown origin')"
        )
    if why_not or user is None:
        return _skip(ctx, action, why_not or f"user {action.user_name} no longer exists")
    if len(user.keys) >= 2:
        raise NoFreeKeySlot(f"user {user.user_name} in account {ctx.account.account_id} already has two keys")

    iam, sm = ctx.iam, ctx.secretsmanager
    account_id, name = ctx.account.account_id, naming.secret_name(ctx.account.account_id, user.user_name)
    secret_arn, digest, current = _user_secret(ctx, user, delivery, action)
    access_key = _create_access_key(ctx, user)
    new_key_id = access_key["AccessKeyId"]
    new_key = AccessKey(key_id=new_key_id, status=KeyStatus.ACTIVE, created=access_key["CreateDate"])
    try:
        ctx.ledger.record_created(account_id, user.user_name, user.user_id, new_key_id, secret_arn, digest)
        # To the exact ARN bound to the user, whose user-only policy is in place: a secret gone since (which
        # that policy forbids) fails the write, and the key is taken back below.
        staged = secrets.stage_pending(sm, secret_arn, access_key)
        _log(ctx, "created replacement key", action, new_key_id=new_key_id)
        # Inside the try: if this fails, a retry must not find a key of ours it cannot carry on with.
        ctx.ledger.record_action(
            ctx.run.run_id,
            account_id,
            action,
            status=ActionStatus.CREATED,
            newKeyId=new_key_id,
            secretName=name,
            secretArn=secret_arn,
            **_retirement_dates(ctx, _find(user, action.key_id), new_key),
        )
    except Exception:
        # The key cannot reach its user: take it back before failing (disable, then delete). The next rotation
        # reads the secret again rather than trust the ledger's record of it.
        access_key = {}
        _discard_key(iam, user.user_name, new_key_id)
        ctx.ledger.clear_pending(account_id, user.user_name, user.user_id, forget_secret_policy=True)
        raise
    finally:
        access_key = {}  # drop the only reference to the secret value
    result = {
        "status": ActionStatus.CREATED.value,
        "newKeyId": new_key_id,
        "versionId": staged.version_id,
        "userId": user.user_id,
        "secretArn": secret_arn,
    }
    current = "new" if staged.current else current
    return {**result, "current": current} if current else result


def _retirement_dates(ctx: Context, old_key: AccessKey | None, new_key: AccessKey) -> dict[str, str]:
    """When the rotated key is to be disabled and deleted, from both keys' creation as IAM gave them.

    Written on the action's item with its new key's id, where the delivery leaves them (StoreSecret reads
    no key again), for the digest to quote.
    """
    if old_key is None:
        return {}
    disable_run, delete_run = policy.retirement_runs(old_key, new_key, ctx.config)  # the days they happen
    return {"disableOn": clock.to_iso(disable_run), "deleteOn": clock.to_iso(delete_run)}


def _user_secret(ctx: Context, user: UserSnapshot, delivery: Delivery, action: Action) -> tuple[str, str, str | None]:
    """The user's secret, ready for the new key before any key exists; (ARN, policy digest, where AWSCURRENT is).

    The secret the product made for this user, its user-only policy applied as it must be now (the ledger
    records the digest of the policy applied): only CreateKey's session can change that policy or delete
    the secret, so it is not read again (AWSCURRENT is on the version of the key delivered, "old", when that
    is the key being rotated). Otherwise the secret under the user's name is read: absent, it is created
    (and its policy applied); present, it must be the one made for this very user (else SecretConflict,
    nothing changed), and its policy is applied when the ledger does not show it applied as it is now.
    """
    account_id, name, role_arn = (
        ctx.account.account_id,
        naming.secret_name(ctx.account.account_id, user.user_name),
        ctx.manager_role_arn,
    )
    sm = ctx.secretsmanager

    def digest_of(arn: str) -> str:
        return secrets.policy_digest(arn, user.user_arn, user.user_id, role_arn)

    bound = delivery.secret_arn
    if bound is not None and delivery.secret_policy == digest_of(bound):
        ctx.ledger.record_intent(account_id, user.user_name, user.user_id, ctx.run.run_id, secret_arn=bound)
        return bound, digest_of(bound), "old" if delivery.delivered_key_id == action.key_id else None
    found = secrets.find(sm, name)
    if found is None:
        token = secrets.new_token()
        ctx.ledger.record_intent(account_id, user.user_name, user.user_id, ctx.run.run_id, secret_token=token)
        try:
            secret_arn = secrets.create(sm, name, user, token, kms_key=config.secrets_kms_key_alias())
            secrets.apply_policy(sm, secret_arn, user.user_arn, user.user_id, role_arn)
        except Exception:
            ctx.ledger.clear_pending(account_id, user.user_name, user.user_id)  # no CreateAccessKey: no key made
            raise
        return secret_arn, digest_of(secret_arn), None
    secret_arn = secrets.bound_arn(name, found, user, delivery)
    if delivery.secret_policy != digest_of(secret_arn):
        secrets.apply_policy(sm, secret_arn, user.user_arn, user.user_id, role_arn)
    ctx.ledger.record_intent(account_id, user.user_name, user.user_id, ctx.run.run_id, secret_arn=secret_arn)
    current = "old" if secrets.current_version(found) == secrets.version_for(action.key_id) else None
    return secret_arn, digest_of(secret_arn), current


def _create_access_key(ctx: Context, user: UserSnapshot) -> dict[str, Any]:
    """CreateAccessKey, the rotation's intent already recorded.

    An error answer (HTTP 4xx: refused, throttled, the user has two keys) means no key was made: the intent
    is cleared at once, so that a key the user makes next is never taken for the product's. Any other failure
    (5xx, a timeout, the process dying) leaves the outcome unknown, and the intent in place: a key created
    around then is of unknown origin, reported and never deleted on a guess (see policy.unknown_origin_keys).
    """
    with translate_errors():
        try:
            return dict(ctx.iam.create_access_key(UserName=user.user_name)["AccessKey"])
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if not 400 <= status < 500:
                raise
            ctx.ledger.clear_pending(ctx.account.account_id, user.user_name, user.user_id)
            if error_code(error) == "LimitExceeded":
                raise NoFreeKeySlot(
                    f"CreateAccessKey refused a key for user {user.user_name} in account {ctx.account.account_id} "
                    "(LimitExceeded): the user made a second key since it was read"
                ) from None
            raise


def verify_new_key(ctx: Context, action: Action, created: Created) -> dict[str, Any]:
    """Sign STS GetCallerIdentity with the new key, read back from the secret. Raises KeyNotYetValid.

    Three calls: the member session, GetSecretValue of the pending version, and the signed call. Who the
    user is (its unique id) and which secret is theirs, CreateKey checked and passed on (``created``).
    """
    user_id, secret_arn = _user_and_secret(action.user_name, created)
    try:
        value = secrets.read_pending(ctx.secretsmanager, secret_arn, created.version_id)
    except secrets.NotPending as why:
        # Called again after StoreSecret made it current: the product may not read a delivered key, nor need to.
        _log(ctx, "nothing to verify", action, new_key_id=created.new_key_id, reason=str(why))
        return {"status": ActionStatus.SKIPPED.value, "reason": f"{why} (made current, or replaced): nothing to verify"}
    try:
        if value.get("AccessKeyId") != created.new_key_id:
            raise DeliveryFailed(f"{secret_arn} version {created.version_id} does not hold key {created.new_key_id}")
        sts = client("sts", MemberSession(ctx.account.account_id, value["AccessKeyId"], value["SecretAccessKey"]))
        try:
            identity = sts.get_caller_identity()
        except ClientError as error:
            raise KeyNotYetValid(f"key {created.new_key_id} is not accepted yet ({error_code(error)})") from None
    finally:
        value = {}
    if identity.get("UserId") != user_id:
        raise KeyNotYetValid(f"key {created.new_key_id} signed as {identity.get('Arn')}, not as user {user_id}")
    _log(ctx, "verified new key", action, new_key_id=created.new_key_id)
    return {"status": "verified"}


def deliver(ctx: Context, action: Action, created: Created) -> dict[str, Any]:
    """Make the verified version current; the user can now read the new key.

    IAM is not read again. Who the user is and which secret is theirs, CreateKey checked and passed on
    (``created``), and where ``AWSCURRENT`` was: a label found elsewhere makes Secrets Manager refuse the
    move, changing nothing, and the labels are then read afresh (:func:`keyrotation.secrets.promote`). That
    the new key exists and is Active, VerifyKey proved a moment ago by signing a call with it as the user. A
    person who disables or deletes it after that all the same (as one could a second after any re-read here)
    loses nothing: the old key is disabled only for a newer Active key (:mod:`keyrotation.policy`, rule 3),
    which DisableKey checks on the keys as they are then, so the user keeps the old key, and a later run
    rotates it again. What the product itself may have done meanwhile, the ledger says (:func:`_still_ours`).
    The dates the old key is disabled and deleted on, CreateKey wrote with the new key's id.
    """
    _refuse_dry_run(ctx, action)
    user_id, arn = _user_and_secret(action.user_name, created)
    _still_ours(ctx, action, created, user_id)
    new_key_id = created.new_key_id
    name = naming.secret_name(ctx.account.account_id, action.user_name)
    tags = {
        "UserName": action.user_name,
        "AccessKeyId": new_key_id,
        "ManagedBy": secrets.MANAGED_BY,
        secrets.USER_ID_TAG: user_id,
    }
    current_on = {"new": created.version_id, "old": secrets.version_for(action.key_id)}.get(created.current or "")
    secret_arn = secrets.promote(ctx.secretsmanager, arn, created.version_id, tags, current_on=current_on)
    done = {
        "status": ActionStatus.DONE.value,
        "newKeyId": new_key_id,
        "secretName": name,
        "secretArn": secret_arn,
    }
    ctx.ledger.record_delivered(
        ctx.account.account_id,
        action.user_name,
        user_id,
        new_key_id,
        secret_arn,
        and_action=(ctx.run.run_id, action, done),
    )
    _log(ctx, "delivered new key", action, new_key_id=new_key_id)
    return {"status": ActionStatus.DONE.value, "newKeyId": new_key_id}


# -- disable and delete --------------------------------------------------------------------------------------


def disable(ctx: Context, action: Action) -> dict[str, Any]:
    _refuse_dry_run(ctx, action)
    user, delivery, why_not = _still_wanted(ctx, action)
    if why_not or user is None:
        result = _skip(ctx, action, why_not or f"user {action.user_name} no longer exists")
        key = None if user is None else _find(user, action.key_id)
        disabled = None if key is None else policy.disabled_by_product_on(key, delivery)
        if result["status"] == ActionStatus.DONE and key is not None and not key.active and disabled is not None:
            # An earlier attempt of this step made the change and failed before recording that it happened.
            ctx.ledger.record_disable_done(ctx.account.account_id, action.user_name, action.key_id, disabled)
        return result
    marks = _undelivered_mark(user, delivery, action.key_id)
    disabled = ctx.ledger.record_disabled(ctx.account.account_id, user.user_name, action.key_id)  # before: fails safe
    ctx.ledger.record_action(ctx.run.run_id, ctx.account.account_id, action, status=ActionStatus.APPLYING, **marks)
    with translate_errors():
        ctx.iam.update_access_key(UserName=user.user_name, AccessKeyId=action.key_id, Status="Inactive")
    # After: a key found Active again is one a person re-enabled only if its disable really happened.
    ctx.ledger.record_disable_done(ctx.account.account_id, user.user_name, action.key_id, disabled)
    ctx.ledger.record_action(ctx.run.run_id, ctx.account.account_id, action, status=ActionStatus.DONE, **marks)
    _log(ctx, "disabled key", action)
    return {"status": ActionStatus.DONE.value}


def delete(ctx: Context, action: Action) -> dict[str, Any]:
    _refuse_dry_run(ctx, action)
    user, delivery, why_not = _still_wanted(ctx, action)
    if why_not or user is None:
        return _skip(ctx, action, why_not or f"user {action.user_name} no longer exists")
    key = _find(user, action.key_id)
    if key is None or key.active:
        raise UnsafeAction(f"refusing to delete {action.key_id} of {user.user_name}: it is Active")
    marks = _undelivered_mark(user, delivery, key.key_id)
    ctx.ledger.record_action(ctx.run.run_id, ctx.account.account_id, action, status=ActionStatus.APPLYING, **marks)
    # IAM has no conditional delete: read the key's status once more, right before deleting it, so the only
    # window left for an owner's re-enable is this one round trip
    # (docs/lifecycle.md, "How a run carries out the plan safely").
    status = _key_status(ctx.iam, user.user_name, action.key_id)
    if status == "gone":
        return _skip(ctx, action, f"key {action.key_id} of {user.user_name} was deleted meanwhile")
    if status != "Inactive":
        ctx.ledger.record_action(
            ctx.run.run_id, ctx.account.account_id, action, status=ActionStatus.FAILED, reason=f"key became {status}"
        )
        raise UnsafeAction(f"refusing to delete {action.key_id} of {user.user_name}: it is {status} now")
    with translate_errors():
        ctx.iam.delete_access_key(UserName=user.user_name, AccessKeyId=action.key_id)
    if marks:
        ctx.ledger.clear_pending(ctx.account.account_id, user.user_name, user.user_id)
    ctx.ledger.record_action(ctx.run.run_id, ctx.account.account_id, action, status=ActionStatus.DONE, **marks)
    _log(ctx, "deleted key", action)
    return {"status": ActionStatus.DONE.value}


def discard_new_key(ctx: Context, action: Action, created: Created) -> dict[str, Any]:
    """Take back a new key that could not be verified or delivered, unless its secret version is current."""
    _refuse_dry_run(ctx, action)
    name = naming.secret_name(ctx.account.account_id, action.user_name)
    user_id = _user_id(ctx, action.user_name)  # None: the user is gone, and its keys with it
    delivery = ctx.ledger.delivery(ctx.account.account_id, action.user_name, user_id or "")
    arn = delivery.secret_arn if user_id is not None else None
    if user_id is not None and arn is not None and secrets.is_delivered(ctx.secretsmanager, arn, created.version_id):
        if delivery.delivered_key_id != created.new_key_id:
            # The secret moved to the new key but the ledger never heard of it (the step failed or died after
            # the move): record the delivery, or the next run would take the user's key for an undelivered one.
            ctx.ledger.record_delivered(ctx.account.account_id, action.user_name, user_id, created.new_key_id, arn)
        _log(ctx, "new key was delivered; not discarded", action, new_key_id=created.new_key_id)
        return {
            "status": ActionStatus.SKIPPED.value,
            "reason": f"key {created.new_key_id} is already the current version of {name}",
        }
    _discard_key(ctx.iam, action.user_name, created.new_key_id)
    if user_id is not None:
        ctx.ledger.clear_pending(ctx.account.account_id, action.user_name, user_id)
    ctx.ledger.record_action(
        ctx.run.run_id, ctx.account.account_id, action, status=ActionStatus.DISCARDED, newKeyId=created.new_key_id
    )
    _log(ctx, "discarded undelivered key", action, new_key_id=created.new_key_id)
    return {"status": ActionStatus.DISCARDED.value, "newKeyId": created.new_key_id}


def _still_ours(ctx: Context, action: Action, created: Created, user_id: str) -> None:
    """Refuse to deliver a new key that is no longer this rotation's, as the ledger records it (one read).

    Another execution acting on the account meanwhile (a second deployment, or an operator's) may have taken
    the key back as undelivered (clearing the ledger's pending key) or rotated again (recording its own), and
    VerifyKey then found nothing pending to verify. The key is this rotation's while the ledger holds it as
    the pending key, or, for a retry of this step, as the delivered key with no other rotation open.
    """
    delivery = ctx.ledger.delivery(ctx.account.account_id, action.user_name, user_id)
    key_id = created.new_key_id
    if delivery.pending_key_id == key_id or (delivery.delivered_key_id == key_id and not delivery.pending_key_id):
        return
    shown = delivery.pending_key_id or delivery.delivered_key_id or "none"
    raise DeliveryFailed(
        f"new key {key_id} of {action.user_name} is no longer this rotation's: the ledger holds {shown} "
        "(another execution took it back, or rotated since); it is not delivered"
    )


def _user_id(ctx: Context, user_name: str) -> str | None:
    """The user's IAM unique id, or None when there is no user of that name."""
    try:
        with translate_errors():
            return str(ctx.iam.get_user(UserName=user_name)["User"]["UserId"])
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return None
        raise


def _user_and_secret(user_name: str, created: Created) -> tuple[str, str]:
    """The user's unique id and the ARN of its secret, as CreateKey checked and passed them on.

    An event without them (from before CreateKey passed them on) is refused: the key is then discarded,
    and the next run rotates again.
    """
    if not (created.user_id and created.secret_arn):
        raise DeliveryFailed(
            f"the rotation of {user_name}'s key {created.new_key_id} carries no userId and secretArn from CreateKey "
            "(an execution started before they were passed on): it is not carried on"
        )
    return created.user_id, created.secret_arn


def _discard_key(iam: Any, user_name: str, key_id: str) -> None:
    """Disable then delete a key that never reached its user (an Active key is never deleted)."""
    with translate_errors():
        try:
            iam.update_access_key(UserName=user_name, AccessKeyId=key_id, Status="Inactive")
            iam.delete_access_key(UserName=user_name, AccessKeyId=key_id)
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise


def _undelivered_mark(user: UserSnapshot, delivery: Delivery, key_id: str) -> dict[str, Any]:
    """``{"undelivered": True}`` for the key the ledger proves the product made and never delivered, else {}.

    Written on the action's ledger item, so the audit trail says which disable or delete took back the
    product's own key (and the tests can check it was never a key the user made).
    """
    proven = {key.key_id for key in policy.undelivered_keys(user.keys, delivery.for_user(user.user_id))}
    return {"undelivered": True} if key_id in proven else {}


def _key_status(iam: Any, user_name: str, key_id: str) -> str:
    """The key's status as IAM says now ("Active", "Inactive"), or "gone"."""
    with translate_errors():
        keys = list(items(iam, "list_access_keys", "AccessKeyMetadata", UserName=user_name))
    return next((str(key["Status"]) for key in keys if key["AccessKeyId"] == key_id), "gone")
