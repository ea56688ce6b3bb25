"""A small in-memory IAM user, to replay the key-lifecycle policy day after day.

:class:`SimUser` holds one user's keys and delivery record and applies
actions the way IAM and the product's action functions would:

- ROTATE creates a new Active key (``created`` = now), delivers it (it becomes
  ``delivered_key_id``) and ends any unfinished rotation record;
- DISABLE sets a key Inactive and records when (``Delivery.disabled``);
- a run that finds a key the product disabled Active again records it
  (``Delivery.reenabled``), as the audit does;
- DELETE removes a key.

It refuses, by raising :class:`UnsafeAction`, anything that IAM would refuse
or that the product must never do: deleting an Active key, a third key,
disabling a key that is not Active, rotating a key that is not Active, or
acting on a key that does not exist.

Unlike the policy, the simulator knows the truth about every key
(:class:`Origin`): whether the user holds its secret. The tests check the
policy's safety rules against that truth.

:func:`run` carries out one run like the state machine does: decide, then for
each planned action re-read the state, decide again, and mutate only if
:func:`keyrotation.policy.wants` still says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from keyrotation.config import LifecycleConfig
from keyrotation.model import (
    AccessKey,
    Action,
    ActionType,
    Decision,
    Delivery,
    KeyStatus,
    NoticeKind,
    UserSnapshot,
)
from keyrotation.policy import USER_LEVEL_KEY_ID, decide, unrecorded_reenables, wants


class UnsafeAction(AssertionError):
    """A mutation IAM or the product's safety rules refuse."""


class Origin(Enum):
    DELIVERED = "delivered"  # created by the product and written to the user's secret
    OWN = "own"  # made by the user (by hand, or before the product was installed)
    UNDELIVERED = "undelivered"  # created by the product, never delivered: nobody holds its secret

    @property
    def readable(self) -> bool:
        """Whether the user holds this key's secret."""
        return self is not Origin.UNDELIVERED


@dataclass
class SimKey:
    key_id: str
    status: KeyStatus
    created: datetime
    origin: Origin
    last_used: datetime | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None

    @property
    def active(self) -> bool:
        return self.status is KeyStatus.ACTIVE

    def snapshot(self) -> AccessKey:
        return AccessKey(
            self.key_id,
            self.status,
            self.created,
            self.last_used,
            self.last_used_service,
            self.last_used_region,
        )


@dataclass
class SimUser:
    name: str = "alice"
    keys: list[SimKey] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    delivered_key_id: str | None = None
    pending_key_id: str | None = None
    pending_since: datetime | None = None
    warned: set[tuple[str, str]] = field(default_factory=set)
    disabled: dict[str, datetime] = field(default_factory=dict)
    disabled_before: set[tuple[str, datetime]] = field(default_factory=set)  # earlier disables of the same keys
    disabled_done: set[tuple[str, datetime]] = field(default_factory=set)  # the disables that happened
    reenabled: set[tuple[str, datetime]] = field(default_factory=set)
    created_count: int = 0

    # -- what the policy sees -------------------------------------------------

    def snapshot(self) -> UserSnapshot:
        return UserSnapshot(
            user_name=self.name,
            user_arn=f"arn:aws:iam::111122223333:user/{self.name}",
            keys=tuple(key.snapshot() for key in self.keys),
            tags=dict(self.tags),
            groups=frozenset(self.groups),
        )

    def delivery(self) -> Delivery:
        return Delivery(
            delivered_key_id=self.delivered_key_id,
            pending_key_id=self.pending_key_id,
            pending_since=self.pending_since,
            warned=frozenset(self.warned),
            disabled=frozenset(self.disabled.items()) | frozenset(self.disabled_before),
            disabled_done=frozenset(self.disabled_done),
            reenabled=frozenset(self.reenabled),
        )

    # -- the truth ----------------------------------------------------------

    def key(self, key_id: str) -> SimKey:
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise UnsafeAction(f"{self.name} has no key {key_id}")

    def origins(self) -> dict[str, Origin]:
        return {key.key_id: key.origin for key in self.keys}

    def readable_active(self) -> list[SimKey]:
        return [key for key in self.keys if key.active and key.origin.readable]

    # -- IAM and the product's action functions -----------------------------

    def apply(self, action: Action, now: datetime) -> None:
        if action.user_name != self.name:
            raise UnsafeAction(f"action for {action.user_name} applied to {self.name}")
        if action.type is ActionType.ROTATE:
            self.rotate(action.key_id, now)
        elif action.type is ActionType.DISABLE:
            self.disable(action.key_id, now)
        elif action.type is ActionType.DELETE:
            self.delete(action.key_id)
        else:  # pragma: no cover - ActionType has three members
            raise UnsafeAction(f"unknown action {action.type}")

    def rotate(self, key_id: str, now: datetime) -> SimKey:
        old = self.key(key_id)
        if not old.active:
            raise UnsafeAction(f"rotate of {key_id}, which is {old.status.value}")
        new = self._create(now, Origin.DELIVERED)
        self.delivered_key_id = new.key_id
        self.pending_key_id = None
        self.pending_since = None
        return new

    def disable(self, key_id: str, now: datetime) -> None:
        key = self.key(key_id)
        if not key.active:
            raise UnsafeAction(f"disable of {key_id}, which is already Inactive")
        key.status = KeyStatus.INACTIVE
        if key_id in self.disabled:
            self.disabled_before.add((key_id, self.disabled[key_id]))
        self.disabled[key_id] = now
        self.disabled_done.add((key_id, now))

    def delete(self, key_id: str) -> None:
        key = self.key(key_id)
        if key.active:
            raise UnsafeAction(f"delete of {key_id}, which is Active")
        self.keys.remove(key)

    def _create(self, now: datetime, origin: Origin) -> SimKey:
        if len(self.keys) >= 2:
            raise UnsafeAction(f"a third key for {self.name}")
        self.created_count += 1
        key = SimKey(f"AKIASIM{self.created_count:013d}", KeyStatus.ACTIVE, now, origin)
        self.keys.append(key)
        return key

    # -- what people do between runs ----------------------------------------

    def make_key_by_hand(self, now: datetime) -> SimKey | None:
        """CreateAccessKey by the user; IAM refuses a third key (returns None)."""
        if len(self.keys) >= 2:
            return None
        return self._create(now, Origin.OWN)

    def use(self, key_id: str, now: datetime, service: str = "s3", region: str = "eu-west-1") -> None:
        key = self.key(key_id)
        if key.active:
            key.last_used, key.last_used_service, key.last_used_region = now, service, region

    def set_status_by_hand(self, key_id: str, status: KeyStatus) -> None:
        self.key(key_id).status = status

    def delete_by_hand(self, key_id: str) -> None:
        self.keys.remove(self.key(key_id))

    # -- what the notifier remembers ----------------------------------------

    def remember(self, decision: Decision) -> None:
        for notice in decision.notices:
            if notice.kind is NoticeKind.DISABLE_SOON and notice.key_id is not None:
                self.warned.add((notice.key_id, notice.kind.value))
            if notice.kind is NoticeKind.EXEMPTION_EXPIRING:
                self.warned.add((USER_LEVEL_KEY_ID, notice.kind.value))


@dataclass(frozen=True)
class Step:
    """One action as its function met it: the state it read and the decision it made on it."""

    action: Action
    state: UserSnapshot
    origins: dict[str, Origin]
    disabled: dict[str, datetime]
    fresh: Decision
    carried_out: bool
    record: Delivery  # the delivery record the function read


@dataclass(frozen=True)
class RunResult:
    now: datetime
    before: UserSnapshot
    origins_before: dict[str, Origin]
    decision: Decision  # the plan made at the start of the run
    steps: tuple[Step, ...]
    after: UserSnapshot
    origins_after: dict[str, Origin]
    final: Decision  # decide() on the state after the run, same moment, before notices are remembered
    ended: datetime | None = None  # when the run's last step was done (``now`` plus its steps)


def run(user: SimUser, now: datetime, config: LifecycleConfig, step: timedelta = timedelta(0)) -> RunResult:
    """One run for one user, carried out like the state machine and its action functions do.

    The plan is made at ``now`` (the audit). With ``step`` the clock runs as it does in a real run:
    the n-th action's function reads the state, decides and acts ``n * step`` after the audit (so a
    key the run creates is a little younger than the run), and the final decision is made after the
    last one.
    """
    before = user.snapshot()
    origins_before = user.origins()
    decision = decide(before, user.delivery(), now, config)
    if any(notice.kind is NoticeKind.REENABLED for notice in decision.notices):  # as the audit records them
        user.reenabled.update((key_id, now) for key_id in unrecorded_reenables(before, user.delivery()))
    steps = []
    moment = now
    for action in decision.actions:
        moment += step
        state, record = user.snapshot(), user.delivery()
        fresh = decide(state, record, moment, config)
        carried_out = wants(fresh, action.type, action.key_id)
        steps.append(Step(action, state, user.origins(), dict(user.disabled), fresh, carried_out, record))
        if carried_out:
            user.apply(action, moment)
    after = user.snapshot()
    final = decide(after, user.delivery(), moment + step, config)
    user.remember(decision)
    return RunResult(now, before, origins_before, decision, tuple(steps), after, user.origins(), final, moment + step)
