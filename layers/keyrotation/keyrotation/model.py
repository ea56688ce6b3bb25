"""The data the key-lifecycle decisions are made on.

Everything here is a plain, immutable value: no boto3, no I/O. The inventory
module builds these from IAM and the ledger; :mod:`keyrotation.policy` turns
them into actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class KeyStatus(str, Enum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


class ActionType(str, Enum):
    """A mutation of one access key. Each is carried out by one Lambda."""

    ROTATE = "rotate"  # create a replacement for `key_id`, deliver it to the user's secret
    DISABLE = "disable"  # set `key_id` Inactive
    DELETE = "delete"  # delete `key_id` (only ever an Inactive key)


class NoticeKind(str, Enum):
    """Something a person is told about; never a mutation."""

    DISABLE_SOON = "disable-soon"  # the old key will be disabled within WarningDays
    BLOCKED = "blocked"  # a due rotation cannot happen; `detail` says why
    EXEMPT = "exempt"  # the user is exempt; `detail` says by what
    EXEMPTION_EXPIRING = "exemption-expiring"  # a dated exemption ends within WarningDays
    INVALID_TAG = "invalid-tag"  # the exemption tag has a value that is neither `true` nor a date
    DEFERRED = "deferred"  # an action beyond MaxActionsPerAccount, left for the next run
    REENABLED = "reenabled"  # a key the product disabled is Active again: a person's re-enable, honoured once


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    status: KeyStatus
    created: datetime
    last_used: datetime | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None

    @property
    def active(self) -> bool:
        return self.status is KeyStatus.ACTIVE


def creation_order(key: AccessKey) -> tuple[datetime, str]:
    """Sort key for keys, oldest first; IAM reports creation to the second, so ties go by key id."""
    return key.created, key.key_id


def recorded(value: str | None) -> str | None:
    """A key's last-use service or region, or None where IAM recorded none (it writes "N/A").

    The one reading of IAM's "N/A" in the layer: inventory, the policy's
    sentences and the emails all go through it.

    Example:
        >>> recorded("N/A"), recorded(""), recorded(None), recorded(" s3 ")
        (None, None, None, 's3')
    """
    if value is None or value.strip() in ("", "N/A"):
        return None
    return value.strip()


@dataclass(frozen=True)
class Delivery:
    """What the product did before for one user, read from the ledger.

    ``delivered_key_id``: the key id the user's secret holds (AWSCURRENT).
    ``pending_since`` / ``pending_run_id``: a rotation was started (the intent
    was recorded just before CreateAccessKey) and its key was never delivered.
    ``pending_key_id``: the id of the key it created, recorded as soon as
    CreateAccessKey answered: the product's proof that it made that key. It
    is None when the run died or timed out around the call: a key created
    within 15 minutes of ``pending_since`` is then of unknown origin, never
    discarded (see :func:`keyrotation.policy.unknown_origin_keys`). An intent
    whose CreateAccessKey was refused is cleared at once.
    ``warned``: the (key id, notice kind) pairs the user was already told about.
    ``disabled``: (key id, when) for each key the product itself set Inactive,
    recorded by the disable function. The policy deletes such a key no sooner
    than DeletePeriodDays - InactivePeriodDays calendar days after that day, so
    a key that was in use is never disabled and deleted on the same day.
    ``disabled_done``: the entries of ``disabled`` whose UpdateAccessKey
    succeeded (recorded right after it). A key found Active after a disable
    that is not done was not disabled at all (the call failed): it is no
    re-enable.
    ``reenabled``: (key id, when) for each time a run found Active a key the
    product had disabled (a person re-enabled it), recorded by the audit. The
    policy honours a key's first re-enable for D-I days from that day.
    ``user_id``: the IAM unique id (``UserId``) of the user the record was
    written for; None in a record no action has written to yet.
    ``secret_arn``: the ARN the user's secret got when the product created it
    for that user; ``secret_token``: the token the product tagged it with at
    creation, recorded just before (it identifies the secret when the run died
    before its ARN was recorded). ``secret_policy``: the digest of the user-only
    policy last applied to it (:func:`keyrotation.secrets.policy_digest`).
    See :mod:`keyrotation.secrets`.
    """

    delivered_key_id: str | None = None
    pending_key_id: str | None = None
    pending_since: datetime | None = None
    warned: frozenset[tuple[str, str]] = frozenset()
    disabled: frozenset[tuple[str, datetime]] = frozenset()
    disabled_done: frozenset[tuple[str, datetime]] = frozenset()
    reenabled: frozenset[tuple[str, datetime]] = frozenset()
    user_id: str | None = None
    secret_arn: str | None = None
    secret_token: str | None = None
    pending_run_id: str | None = None
    secret_policy: str | None = None
    delivered_at: datetime | None = None  # when the delivered key was made current, just after its verification

    def for_user(self, user_id: str) -> Delivery:
        """This record as it applies to the user whose IAM unique id is ``user_id``.

        IAM gives a deleted user's name to the next user created with it, with a new unique id. A
        record written for an earlier user of the name tells nothing about the new one: no delivered
        key, no unfinished rotation, no secret. Only its facts about keys stay (the warnings sent,
        the keys the product disabled, and the re-enables found), because IAM never reuses a key
        id. An empty ``user_id`` (not known) keeps the record as it is.

        Example:
            >>> earlier = Delivery(delivered_key_id="AKIAOLD", user_id="AIDAEARLIER")
            >>> earlier.for_user("AIDAEARLIER") == earlier, earlier.for_user("AIDANEW").delivered_key_id
            (True, None)
        """
        if not user_id or self.user_id in (None, user_id):
            return self
        return Delivery(
            warned=self.warned,
            disabled=self.disabled,
            disabled_done=self.disabled_done,
            reenabled=self.reenabled,
            user_id=user_id,
        )


@dataclass(frozen=True)
class UserSnapshot:
    """One IAM user as read at one moment: keys, tags and groups."""

    user_name: str
    user_arn: str
    keys: tuple[AccessKey, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    user_id: str = ""  # IAM's unique id (UserId): a user deleted and made again under the same name gets a new one


@dataclass(frozen=True)
class Action:
    type: ActionType
    user_name: str
    key_id: str
    reason: str  # a sentence a person can read

    def to_json(self) -> dict[str, str]:
        return {"type": self.type.value, "userName": self.user_name, "keyId": self.key_id, "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Action:
        return cls(ActionType(data["type"]), data["userName"], data["keyId"], data["reason"])


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    user_name: str
    key_id: str | None  # None for user-level notices (exempt, invalid tag)
    detail: str  # a sentence a person can read
    due: datetime | None = None  # when the announced event happens (disable date, exemption end)


@dataclass(frozen=True)
class Decision:
    """The policy's verdict for one user: mutations in the order they must run, and notices."""

    actions: tuple[Action, ...] = ()
    notices: tuple[Notice, ...] = ()
    exempt: bool = False
