"""The key-lifecycle policy, case by case.

1. A table: every combination of key count (0-2), status, age relative to
   R/I/D, usage, and origin (delivered, made by hand, created but never
   delivered), checked against the rules written out plainly in
   :func:`expected` and against the safety rules.
2. Named cases, with exact action sequences: the regressions of the tool
   this replaces, each rule of the lifecycle, exemptions, warnings and the
   per-account limit.
3. Whole schedules replayed day by day (default numbers, a late rotation, a
   short rotation period), with the exact day of every action, and the
   default schedule's runs as they meet keys made at any time of day.

The template's schedule runs daily, so every date is acted on at the last
run before it: one run interval (RUN days) before it at the earliest.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

import keyrotation.policy as policy
import keyrotation.wording as wording
from keyrotation.config import LifecycleConfig
from keyrotation.model import (
    AccessKey,
    Action,
    ActionType,
    Decision,
    Delivery,
    KeyStatus,
    Notice,
    NoticeKind,
    UserSnapshot,
)
from keyrotation.policy import (
    AccountPlan,
    decide,
    delete_on,
    disable_on,
    exemption,
    plan_account,
    wants,
)
from localaws.defaults import default_lifecycle, parameter_defaults

from .policy_sim import Origin, SimKey, SimUser, run

CONFIG = default_lifecycle()  # the template's; the cases below were written for R=75, I=90, D=100, W=7, daily runs
R, I, D, W = CONFIG.rotation_days, CONFIG.inactive_days, CONFIG.delete_days, CONFIG.warning_days
RUN = CONFIG.run_interval / timedelta(days=1)  # the longest gap between two runs, in days
ACTION_STEP = timedelta(seconds=1)  # in a run, each action comes a little after the audit (and after the last)
NOW = datetime(2030, 6, 1, 2, 0, tzinfo=UTC)
TAG = CONFIG.exempt_tag_key
GROUP = CONFIG.exempt_group_name
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

ACTIVE, INACTIVE = KeyStatus.ACTIVE, KeyStatus.INACTIVE
ROTATE, DISABLE, DELETE = ActionType.ROTATE, ActionType.DISABLE, ActionType.DELETE


def days(n: float) -> timedelta:
    return timedelta(days=n)


def key(
    key_id: str,
    age: float,
    status: KeyStatus = ACTIVE,
    used: float | None = None,
    service: str | None = "s3",
    region: str | None = "eu-west-1",
) -> AccessKey:
    """A key ``age`` days old at NOW, last used ``used`` days before NOW (None: never)."""
    if used is None:
        return AccessKey(key_id, status, NOW - days(age))
    return AccessKey(key_id, status, NOW - days(age), NOW - days(used), service, region)


def user(*keys: AccessKey, tags: dict[str, str] | None = None, groups: frozenset[str] = frozenset()) -> UserSnapshot:
    return UserSnapshot("alice", "arn:aws:iam::111122223333:user/alice", keys, tags or {}, groups)


def plan(decision: Decision) -> list[tuple[ActionType, str]]:
    return [(action.type, action.key_id) for action in decision.actions]


def kinds(decision: Decision) -> list[NoticeKind]:
    return [notice.kind for notice in decision.notices]


def notice(decision: Decision, kind: NoticeKind) -> Notice:
    """The one notice of ``kind`` (fails if there is none, or more than one)."""
    (found,) = [n for n in decision.notices if n.kind is kind]
    return found


# ==========================================================================
# 1. The table
# ==========================================================================

AGES = {"fresh": 1, "young": 40, "rotation-due": 80, "warning": 85, "disable-due": 95, "delete-due": 130}
STATUSES = {"Active": ACTIVE, "Inactive": INACTIVE}
SINGLE_ORIGINS = ["delivered", "own", "undelivered-id", "undelivered-since", "own-since"]
PAIR_ORIGINS = [
    ("own", "delivered"),  # the normal state after a rotation
    ("delivered", "own"),  # the user made a replacement by hand
    ("own", "own"),  # keys from before the product
    ("delivered", "undelivered-id"),  # a rotation died after CreateAccessKey, key id recorded
    ("own", "undelivered-since"),  # a rotation died before its key id was recorded
    ("delivered", "own-since"),  # a rotation was refused or died; minutes later the user made a key by hand
]


@dataclass(frozen=True)
class Spec:
    key_id: str
    bucket: str
    age: float
    status: KeyStatus
    origin: str
    used: bool

    @property
    def active(self) -> bool:
        return self.status is ACTIVE

    @property
    def readable(self) -> bool:
        return not self.origin.startswith("undelivered")

    @property
    def unknown_origin(self) -> bool:
        """Made within 15 minutes of a rotation's start that recorded no key id: the product's, or by hand."""
        return self.origin.endswith("-since")


@dataclass(frozen=True)
class Case:
    keys: tuple[Spec, ...]  # oldest first

    def __str__(self) -> str:
        if not self.keys:
            return "no keys"
        return " + ".join(
            f"{s.status.value}/{s.bucket}/{s.origin}/{'used' if s.used else 'unused'}" for s in self.keys
        )

    def snapshot(self) -> tuple[UserSnapshot, Delivery]:
        keys, delivery = [], Delivery()
        for spec in self.keys:
            created = NOW - days(spec.age)
            last_used = None if not spec.used else min(NOW - days(2), created + days(spec.age / 2))
            keys.append(AccessKey(spec.key_id, spec.status, created, last_used, "s3" if spec.used else None,
                                  "eu-west-1" if spec.used else None))
            if spec.origin == "delivered":
                delivery = Delivery(delivered_key_id=spec.key_id)
        for spec in self.keys:
            created = NOW - days(spec.age)
            if spec.origin == "undelivered-id":
                delivery = Delivery(delivery.delivered_key_id, spec.key_id, created - timedelta(seconds=2))
            if spec.origin.endswith("-since"):
                delivery = Delivery(delivery.delivered_key_id, None, created - timedelta(seconds=2))
        return user(*keys), delivery

    def sim(self) -> SimUser:
        snapshot, delivery = self.snapshot()
        origin = {"delivered": Origin.DELIVERED, "own": Origin.OWN}
        sim = SimUser(
            delivered_key_id=delivery.delivered_key_id,
            pending_key_id=delivery.pending_key_id,
            pending_since=delivery.pending_since,
        )
        for spec, k in zip(self.keys, snapshot.keys, strict=True):
            sim.keys.append(SimKey(k.key_id, k.status, k.created, origin.get(spec.origin, Origin.UNDELIVERED),
                                   k.last_used, k.last_used_service, k.last_used_region))
        return sim


def table() -> list[Case]:
    cases = [Case(())]
    for bucket, status, used, origin in product(AGES, STATUSES, (True, False), SINGLE_ORIGINS):
        cases.append(Case((Spec("AKIAONLY", bucket, AGES[bucket], STATUSES[status], origin, used),)))
    buckets = list(AGES)
    for older_i, newer_i in product(range(len(buckets)), repeat=2):
        if older_i < newer_i:
            continue
        older_bucket, newer_bucket = buckets[older_i], buckets[newer_i]
        older_age = AGES[older_bucket] + (0.5 if older_i == newer_i else 0)
        for (s1, s2), used, (o1, o2) in product(product(STATUSES, STATUSES), (True, False), PAIR_ORIGINS):
            cases.append(
                Case(
                    (
                        Spec("AKIAOLDER", older_bucket, older_age, STATUSES[s1], o1, used),
                        Spec("AKIANEWER", newer_bucket, AGES[newer_bucket], STATUSES[s2], o2, used),
                    )
                )
            )
    return cases


TABLE = table()


def expected(case: Case) -> tuple[list[tuple[ActionType, str]], set[NoticeKind]]:
    """The lifecycle rules, written in ages (days) rather than dates. Usage plays no part."""
    actions: list[tuple[ActionType, str]] = []
    notices: set[NoticeKind] = set()
    if any(spec.unknown_origin for spec in case.keys):  # never a guess: nothing, until a person decides
        return actions, {NoticeKind.BLOCKED}
    for spec in case.keys:  # an undelivered key is discarded: disabled if Active, then deleted
        if not spec.readable:
            if spec.active:
                actions.append((DISABLE, spec.key_id))
            actions.append((DELETE, spec.key_id))
    readable = [s for s in case.keys if s.readable]
    active = [s for s in readable if s.active]
    current = active[-1] if active else None  # the newest Active readable key
    for spec in readable:
        replacement = current if current is not None and current.age < spec.age else None
        if spec.active and replacement is not None:  # retired Active key
            days_left = max(I - spec.age, (I - R) - replacement.age)
            if days_left <= RUN:  # the last run before its disable date
                actions.append((DISABLE, spec.key_id))
            elif days_left <= RUN + W:
                notices.add(NoticeKind.DISABLE_SOON)
        elif not spec.active:  # retired or spare Inactive key
            days_left = D - spec.age
            if replacement is not None:
                days_left = max(days_left, (D - R) - replacement.age)
            if days_left <= RUN:
                actions.append((DELETE, spec.key_id))
    if current is not None and current.age >= R - RUN:
        others_left = [s for s in case.keys if s is not current and (DELETE, s.key_id) not in actions]
        if others_left:
            notices.add(NoticeKind.BLOCKED)
        else:
            actions.append((ROTATE, current.key_id))
    return actions, notices


def test_the_table_covers_every_combination() -> None:
    assert len(TABLE) == 1 + len(AGES) * 2 * 2 * len(SINGLE_ORIGINS) + 21 * 4 * 2 * len(PAIR_ORIGINS)
    outcomes = {tuple(t.value for t, _ in expected(case)[0]) for case in TABLE}
    for sequence in [(), ("rotate",), ("disable",), ("delete",), ("delete", "rotate"), ("disable", "delete"),
                     ("disable", "delete", "rotate"), ("delete", "delete")]:
        assert sequence in outcomes, f"no case in the table leads to {sequence}"


@pytest.mark.parametrize("case", TABLE, ids=str)
def test_table(case: Case) -> None:
    snapshot, delivery = case.snapshot()
    decision = decide(snapshot, delivery, NOW, CONFIG)
    want_actions, want_notices = expected(case)

    assert plan(decision) == want_actions
    assert {k for k in kinds(decision) if k in (NoticeKind.BLOCKED, NoticeKind.DISABLE_SOON)} == want_notices
    assert not decision.exempt

    # Safety: a key that is Active now is only deleted if it is undelivered and disabled first.
    for index, (action_type, key_id) in enumerate(plan(decision)):
        spec = next(s for s in case.keys if s.key_id == key_id)
        if action_type is DELETE and spec.active:
            assert not spec.readable and (DISABLE, key_id) in plan(decision)[:index]

    # Sentences: every reason names its key and a date; a disable says how the key was used.
    for action in decision.actions:
        assert action.key_id in action.reason and ISO_DATE.search(action.reason)
        spec = next(s for s in case.keys if s.key_id == action.key_id)
        if action.type is DISABLE and spec.readable:
            if spec.used:
                assert "with s3 in eu-west-1" in action.reason
            else:
                assert "never been used" in action.reason

    # Replayed like the state machine: each action still wanted, the user keeps a key, nothing left to do.
    sim = case.sim()
    had_key = bool(sim.readable_active())
    result = run(sim, NOW, CONFIG)
    assert all(step.carried_out for step in result.steps)
    assert result.final.actions == ()
    assert bool(sim.readable_active()) == had_key or not had_key
    assert len(sim.keys) <= 2


# ==========================================================================
# 2. Named cases
# ==========================================================================

# -- the regressions of the tool this replaces -----------------------------


def test_two_expired_keys_no_active_key_is_deleted() -> None:
    """The old tool deleted both keys of a user whose two Active keys were past the delete age."""
    older, newer = key("AKIAOLDER", 400, used=1), key("AKIANEWER", 300, used=0.5)
    decision = decide(user(older, newer), Delivery(), NOW, CONFIG)

    assert plan(decision) == [(DISABLE, "AKIAOLDER")]
    blocked = notice(decision, NoticeKind.BLOCKED)
    assert blocked.key_id == "AKIANEWER"
    assert blocked.due == datetime(2030, 6, 11, tzinfo=UTC)  # D-I days after the disable, counted from its day

    sim = SimUser(keys=[SimKey("AKIAOLDER", ACTIVE, older.created, Origin.OWN),
                        SimKey("AKIANEWER", ACTIVE, newer.created, Origin.OWN)])
    log = replay(sim, NOW, 12)
    assert log == {
        0: ["disable AKIAOLDER", "blocked AKIANEWER"],
        **{day: ["blocked AKIANEWER"] for day in range(1, 10)},  # disabled, not deleted, for D-I days
        10: ["delete AKIAOLDER", "rotate AKIANEWER"],
    }


def test_short_rotation_period_rotates_instead_of_deleting() -> None:
    """The old tool deleted a lone key older than the delete age when the periods were short."""
    config = default_lifecycle(rotation_days=1, inactive_days=2, delete_days=3, run_interval=timedelta(hours=1))
    only = key("AKIAONLY", 30)
    assert plan(decide(user(only), Delivery(), NOW, config)) == [(ROTATE, "AKIAONLY")]

    sim = SimUser(keys=[SimKey("AKIAONLY", ACTIVE, only.created, Origin.DELIVERED)], delivered_key_id="AKIAONLY")
    log = replay(sim, NOW, 6, config)
    assert log == {
        0: ["rotate AKIAONLY"],  # creates AKIASIM...1
        1: ["disable AKIAONLY", "blocked AKIASIM0000000000001"],  # the new key is due already; slot still taken
        2: ["delete AKIAONLY", "rotate AKIASIM0000000000001"],
        3: ["disable AKIASIM0000000000001", "blocked AKIASIM0000000000002"],
        4: ["delete AKIASIM0000000000001", "rotate AKIASIM0000000000002"],
        5: ["disable AKIASIM0000000000002", "blocked AKIASIM0000000000003"],
    }


# -- keys the product created but never delivered ---------------------------


@pytest.mark.parametrize("status", [ACTIVE, INACTIVE])
def test_undelivered_key_is_discarded_and_the_rotation_redone(status: KeyStatus) -> None:
    """The ledger recorded the new key's id: the product made it, and can prove it."""
    old = key("AKIAOLD", 80)
    lost = key("AKIALOST", 1, status)
    started = lost.created - timedelta(milliseconds=300)
    pending = Delivery("AKIAOLD", "AKIALOST", started)

    decision = decide(user(old, lost), pending, NOW, CONFIG)

    discard = [(DISABLE, "AKIALOST")] if status is ACTIVE else []
    assert plan(decision) == [*discard, (DELETE, "AKIALOST"), (ROTATE, "AKIAOLD")]
    assert "never delivered" in decision.actions[0].reason

    sim = SimUser(keys=[SimKey("AKIAOLD", ACTIVE, old.created, Origin.DELIVERED),
                        SimKey("AKIALOST", status, lost.created, Origin.UNDELIVERED)],
                  delivered_key_id="AKIAOLD", pending_key_id=pending.pending_key_id, pending_since=started)
    result = run(sim, NOW, CONFIG)
    assert all(step.carried_out for step in result.steps) and result.final.actions == ()
    assert [k.key_id for k in sim.keys] == ["AKIAOLD", "AKIASIM0000000000001"]
    assert sim.delivered_key_id == "AKIASIM0000000000001"


def test_undelivered_key_is_discarded_even_when_no_rotation_is_due() -> None:
    decision = decide(user(key("AKIAOLD", 40), key("AKIALOST", 1)), Delivery("AKIAOLD", "AKIALOST"), NOW, CONFIG)
    assert plan(decision) == [(DISABLE, "AKIALOST"), (DELETE, "AKIALOST")]


def test_creation_time_is_compared_to_the_second_as_iam_reports_it() -> None:
    started = datetime(2030, 6, 1, 1, 0, 0, 700000, tzinfo=UTC)
    same_second = AccessKey("AKIAMAYBE", ACTIVE, datetime(2030, 6, 1, 1, 0, 0, tzinfo=UTC))  # truncated by IAM
    second_before = AccessKey("AKIABEFORE", ACTIVE, datetime(2030, 5, 31, 1, 0, 59, tzinfo=UTC))
    record = Delivery("AKIAOLD", None, started)

    assert policy.unknown_origin_keys([same_second, second_before], record) == (same_second,)
    assert decide(user(key("AKIAOLD", 80), same_second), record, NOW, CONFIG).actions == ()


def test_a_key_made_by_hand_after_an_unfinished_rotation_is_not_taken_for_the_products() -> None:
    """With only a start time recorded, only a key made within 15 minutes of it can be the product's."""
    started = NOW - days(21)
    hand = key("AKIAHAND", 20)  # made a day after a rotation that died before CreateAccessKey
    decision = decide(user(key("AKIAOLD", 95), hand), Delivery("AKIAOLD", None, started), NOW, CONFIG)
    assert plan(decision) == [(DISABLE, "AKIAOLD")]  # the hand-made key is the replacement, not discarded
    assert "replaced by key AKIAHAND" in decision.actions[0].reason


def test_two_candidates_for_the_products_key_change_nothing() -> None:
    started = NOW - days(1)
    first = AccessKey("AKIAFIRST", ACTIVE, started + timedelta(seconds=1))
    second = AccessKey("AKIASECOND", ACTIVE, started + timedelta(minutes=5))
    decision = decide(user(first, second), Delivery(None, None, started), NOW, CONFIG)
    assert decision.actions == ()
    blocked = notice(decision, NoticeKind.BLOCKED)
    assert blocked.key_id is None and "AKIAFIRST" in blocked.detail and "AKIASECOND" in blocked.detail


@pytest.mark.parametrize("status", [ACTIVE, INACTIVE])
def test_a_key_made_by_hand_right_after_a_failed_rotation_is_never_discarded(status: KeyStatus) -> None:
    """CreateAccessKey was refused (or timed out); two minutes later the user made a key by hand."""
    started = NOW - days(1)
    own = AccessKey("AKIAHAND", status, started + timedelta(minutes=2))
    decision = decide(user(key("AKIAOLD", 80), own), Delivery("AKIAOLD", None, started), NOW, CONFIG)

    assert not [action for action in decision.actions if action.key_id == "AKIAHAND"]


def test_a_key_the_product_cannot_prove_it_made_blocks_the_user_and_says_what_is_known() -> None:
    started = datetime(2030, 5, 31, 6, 0, 3, tzinfo=UTC)
    unknown = AccessKey("AKIAUNKNOWN", ACTIVE, started + timedelta(seconds=1))
    record = Delivery("AKIAOLD", None, started, pending_run_id="2030-05-31-run")

    decision = decide(user(key("AKIAOLD", 80), unknown), record, NOW, CONFIG)

    assert decision.actions == ()
    blocked = notice(decision, NoticeKind.BLOCKED)
    assert blocked.key_id is None and blocked.due is None  # the whole user; it never clears by itself
    for known in ("AKIAUNKNOWN", "2030-05-31", "06:00:04", "2030-05-31-run", "delete"):
        assert known in blocked.detail, known


def test_a_pending_id_that_was_delivered_is_not_discarded() -> None:
    delivered = key("AKIANEW", 20)
    decision = decide(user(key("AKIAOLD", 95), delivered), Delivery("AKIANEW", "AKIANEW", NOW - days(20)), NOW, CONFIG)
    assert plan(decision) == [(DISABLE, "AKIAOLD")]


def test_a_stale_pending_record_without_its_key_changes_nothing() -> None:
    decision = decide(user(key("AKIAOLD", 80)), Delivery("AKIAOLD", "AKIAGONE", NOW - days(5)), NOW, CONFIG)
    assert plan(decision) == [(ROTATE, "AKIAOLD")]


def test_a_record_written_for_an_earlier_user_of_the_same_name_is_not_theirs() -> None:
    """alice was deleted and made again (a new UserId): what the product did for the earlier alice is not hers."""
    started = NOW - days(80)
    theirs = AccessKey("AKIANEWUSER", ACTIVE, started + timedelta(minutes=1))  # the new alice's own key
    earlier = Delivery(delivered_key_id="AKIAGONE", pending_since=started, user_id="AIDAEARLIER")
    new_alice = UserSnapshot("alice", "arn:aws:iam::111122223333:user/alice", (theirs,), user_id="AIDANEWUSER")

    decision = decide(new_alice, earlier, NOW, CONFIG)

    assert plan(decision) == [(ROTATE, "AKIANEWUSER")]
    assert decision.notices == ()


def test_a_record_written_for_this_very_user_is_theirs() -> None:
    lost = key("AKIALOST", 1)
    record = Delivery("AKIAOLD", "AKIALOST", lost.created - timedelta(seconds=1), user_id="AIDAALICE")
    alice = UserSnapshot("alice", "arn:aws:iam::111122223333:user/alice", (key("AKIAOLD", 80), lost), user_id="AIDAALICE")

    assert plan(decide(alice, record, NOW, CONFIG)) == [(DISABLE, "AKIALOST"), (DELETE, "AKIALOST"), (ROTATE, "AKIAOLD")]


# -- a replacement the user made by hand -------------------------------------


def test_hand_made_replacement_retires_the_older_key() -> None:
    delivered, hand = key("AKIADELIVERED", 95, used=20), key("AKIAHAND", 20)
    decision = decide(user(delivered, hand), Delivery("AKIADELIVERED"), NOW, CONFIG)
    assert plan(decision) == [(DISABLE, "AKIADELIVERED")]
    assert "replaced by key AKIAHAND" in decision.actions[0].reason


def test_hand_made_replacement_still_gets_its_grace_period() -> None:
    delivered, hand = key("AKIADELIVERED", 200), key("AKIAHAND", 3)
    decision = decide(user(delivered, hand), Delivery("AKIADELIVERED"), NOW, CONFIG)
    assert decision.actions == ()
    assert disable_on(delivered, hand, CONFIG) == hand.created + days(I - R)


def test_rotation_of_a_hand_made_current_key() -> None:
    decision = decide(user(key("AKIAHAND", 76)), Delivery("AKIAGONE"), NOW, CONFIG)
    assert plan(decision) == [(ROTATE, "AKIAHAND")]


# -- the schedule's edges -------------------------------------------------------


def test_thresholds_are_inclusive_to_the_second_one_run_interval_before_each_age() -> None:
    just_due = AccessKey("AKIAONLY", ACTIVE, NOW - days(R - RUN))  # R days old exactly one run interval from now
    not_yet = AccessKey("AKIAONLY", ACTIVE, NOW - days(R - RUN) + timedelta(seconds=1))
    assert plan(decide(user(just_due), Delivery(), NOW, CONFIG)) == [(ROTATE, "AKIAONLY")]
    assert plan(decide(user(not_yet), Delivery(), NOW, CONFIG)) == []
    exact = default_lifecycle(run_interval=timedelta(0))  # runs at any moment: each date itself
    assert plan(decide(user(AccessKey("AKIAONLY", ACTIVE, NOW - days(R))), Delivery(), NOW, exact)) == [
        (ROTATE, "AKIAONLY")
    ]
    assert plan(decide(user(just_due), Delivery(), NOW, exact)) == []


def test_a_date_is_acted_on_at_the_last_run_before_it() -> None:
    """With a daily run, a key turning R days old a second after tomorrow's run is rotated by tomorrow's run."""
    after_tomorrows_run = AccessKey("AKIAONLY", ACTIVE, NOW - days(R - 1) + timedelta(seconds=1))
    at_tomorrows_run = AccessKey("AKIAONLY", ACTIVE, NOW - days(R - 1))
    assert CONFIG.run_interval == timedelta(days=1)
    assert plan(decide(user(after_tomorrows_run), Delivery(), NOW, CONFIG)) == []
    assert plan(decide(user(after_tomorrows_run), Delivery(), NOW + days(1), CONFIG)) == [(ROTATE, "AKIAONLY")]
    assert plan(decide(user(at_tomorrows_run), Delivery(), NOW, CONFIG)) == [(ROTATE, "AKIAONLY")]
    assert policy.act_from(NOW, CONFIG) == NOW - days(1)


def test_delete_and_disable_dates_are_d_minus_i_apart() -> None:
    old = key("AKIAOLD", 0)
    for replacement_age in [-200, -80, -15, 0]:
        replacement = AccessKey("AKIANEW", ACTIVE, old.created - days(replacement_age))
        assert delete_on(old, replacement, CONFIG) - disable_on(old, replacement, CONFIG) == days(D - I)


def test_lone_inactive_key_is_deleted_at_the_last_run_before_the_delete_age_only() -> None:
    assert plan(decide(user(key("AKIAONLY", D - RUN - 0.01, INACTIVE)), Delivery(), NOW, CONFIG)) == []
    assert plan(decide(user(key("AKIAONLY", D - RUN, INACTIVE)), Delivery(), NOW, CONFIG)) == [(DELETE, "AKIAONLY")]


def test_two_inactive_keys_are_both_deleted_oldest_first_and_nothing_is_rotated() -> None:
    decision = decide(user(key("AKIAB", 120, INACTIVE), key("AKIAA", 300, INACTIVE)), Delivery(), NOW, CONFIG)
    assert plan(decision) == [(DELETE, "AKIAA"), (DELETE, "AKIAB")]


def test_inactive_old_key_is_deleted_first_then_the_rotation_in_the_same_run() -> None:
    decision = decide(user(key("AKIAOLD", 160, INACTIVE), key("AKIACUR", 80)), Delivery("AKIACUR"), NOW, CONFIG)
    assert plan(decision) == [(DELETE, "AKIAOLD"), (ROTATE, "AKIACUR")]


def test_older_active_key_in_grace_blocks_the_rotation_with_dates_and_advice() -> None:
    old, current = key("AKIAOLD", 85, used=1), key("AKIACUR", 80)  # both past R, old not yet at I
    decision = decide(user(old, current), Delivery("AKIACUR"), NOW, CONFIG)
    assert decision.actions == ()
    blocked = notice(decision, NoticeKind.BLOCKED)
    assert blocked.key_id == "AKIACUR"
    assert blocked.due == policy.act_from(delete_on(old, current, CONFIG), CONFIG)  # the last run before it
    assert "disabled at the first run on or after 2030-06-05" in blocked.detail  # the last run before 06-06
    assert "stop using key AKIAOLD and delete it" in blocked.detail
    assert "last used on 2030-05-31 with s3 in eu-west-1" in blocked.detail


def test_newer_inactive_key_holds_the_slot_until_it_is_d_days_old() -> None:
    current, spare = key("AKIACUR", 120), key("AKIASPARE", 30, INACTIVE)
    decision = decide(user(current, spare), Delivery("AKIACUR"), NOW, CONFIG)
    assert decision.actions == ()
    blocked = notice(decision, NoticeKind.BLOCKED)
    assert blocked.key_id == "AKIACUR" and blocked.due == spare.created + days(D - RUN)
    assert "re-enable it" in blocked.detail and "delete it" in blocked.detail

    aged = key("AKIASPARE", D, INACTIVE)
    assert plan(decide(user(current, aged), Delivery("AKIACUR"), NOW, CONFIG)) == [
        (DELETE, "AKIASPARE"),
        (ROTATE, "AKIACUR"),
    ]


def test_a_key_the_product_disabled_today_is_not_deleted_today() -> None:
    old, current = key("AKIAOLD", 400, INACTIVE), key("AKIACUR", 300)
    disabled_today = Delivery("AKIACUR", disabled=frozenset({("AKIAOLD", NOW - timedelta(hours=1))}))
    assert plan(decide(user(old, current), disabled_today, NOW, CONFIG)) == []
    disabled_long_ago = Delivery("AKIACUR", disabled=frozenset({("AKIAOLD", NOW - days(D - I))}))
    assert plan(decide(user(old, current), disabled_long_ago, NOW, CONFIG)) == [
        (DELETE, "AKIAOLD"),
        (ROTATE, "AKIACUR"),
    ]


# -- a key the product disabled, re-enabled by a person ----------------------------------

DISABLED_AT = NOW - days(2)  # the product disabled AKIAOLD two days ago; a person has re-enabled it since
REENABLED = (key("AKIAOLD", 93, used=0.5), key("AKIACUR", 20))


def disabled(*moments: datetime, done: bool = True) -> dict[str, frozenset[tuple[str, datetime]]]:
    """Delivery fields: the product disabled AKIAOLD at each of ``moments`` (and each disable happened)."""
    entries = frozenset(("AKIAOLD", moment) for moment in moments)
    return {"disabled": entries, "disabled_done": entries if done else frozenset()}


def test_the_run_that_finds_a_re_enabled_key_honours_it_for_d_minus_i_days_and_says_so() -> None:
    record = Delivery("AKIACUR", **disabled(DISABLED_AT))
    decision = decide(user(*REENABLED), record, NOW, CONFIG)
    assert decision.actions == ()
    found = notice(decision, NoticeKind.REENABLED)
    assert found.key_id == "AKIAOLD" and found.due == datetime(2030, 6, 1 + D - I, tzinfo=UTC)
    assert "disabled on 2030-05-30" in found.detail and "stays Active until 2030-06-11" in found.detail
    assert "will not be honoured" in found.detail and "last used on 2030-05-31" in found.detail
    assert policy.unrecorded_reenables(user(*REENABLED), record) == ("AKIAOLD",)

    recorded = Delivery("AKIACUR", **disabled(DISABLED_AT), reenabled=frozenset({("AKIAOLD", NOW)}))
    assert policy.unrecorded_reenables(user(*REENABLED), recorded) == ()
    assert decide(user(*REENABLED), recorded, NOW, CONFIG) == Decision()  # told once: the run recorded it
    assert decide(user(*REENABLED), recorded, found.due - timedelta(seconds=1), CONFIG) == Decision()
    again = decide(user(*REENABLED), recorded, found.due, CONFIG)  # honoured D-I days, a grace: never shortened
    assert plan(again) == [(DISABLE, "AKIAOLD")] and again.notices == ()
    assert "re-enable was honoured until 2030-06-11" in again.actions[0].reason


def test_a_re_enable_found_at_the_very_moment_of_the_disable_is_a_first_re_enable() -> None:
    """Found by hypothesis: a run that records the re-enable at the instant of the disable record must not
    take it for an earlier re-enable (which would make it a second one, disabled again at once)."""
    recorded = Delivery("AKIACUR", **disabled(NOW), reenabled=frozenset({("AKIAOLD", NOW)}))
    assert policy.reenable_found(REENABLED[0], recorded) == NOW
    assert not policy.reenabled_before(REENABLED[0], recorded)
    assert decide(user(*REENABLED), recorded, NOW, CONFIG) == Decision()  # honoured, and told once already


def test_a_second_re_enable_is_not_honoured() -> None:
    first_found, disabled_again = NOW - days(15), NOW - days(3)
    record = Delivery(
        "AKIACUR", **disabled(NOW - days(20), disabled_again), reenabled=frozenset({("AKIAOLD", first_found)})
    )
    decision = decide(user(*REENABLED), record, NOW, CONFIG)
    assert plan(decision) == [(DISABLE, "AKIAOLD")]
    assert "only a key's first re-enable is honoured" in decision.actions[0].reason
    refused = notice(decision, NoticeKind.REENABLED)
    assert refused.key_id == "AKIAOLD" and "not honoured" in refused.detail
    assert "deleted no sooner than 2030-06-11" in refused.detail
    assert policy.unrecorded_reenables(user(*REENABLED), record) == ()


def test_a_re_enabled_key_is_deleted_d_minus_i_days_after_it_is_disabled_again() -> None:
    old, current = key("AKIAOLD", 110, INACTIVE), key("AKIACUR", 30)
    disabled_again = NOW - days(D - I) + timedelta(hours=1)  # an hour after the run of D-I days ago
    record = Delivery(
        "AKIACUR", **disabled(NOW - days(20), disabled_again), reenabled=frozenset({("AKIAOLD", NOW - days(19))})
    )
    assert plan(decide(user(old, current), record, NOW - timedelta(hours=3), CONFIG)) == []
    assert plan(decide(user(old, current), record, NOW, CONFIG)) == [(DELETE, "AKIAOLD")]


def test_a_rotation_blocked_by_an_honoured_re_enable_waits_for_it() -> None:
    old, current = key("AKIAOLD", 160), key("AKIACUR", 80)  # the current key is due, the old one re-enabled
    record = Delivery("AKIACUR", **disabled(NOW - days(1)), reenabled=frozenset({("AKIAOLD", NOW)}))
    blocked = notice(decide(user(old, current), record, NOW, CONFIG), NoticeKind.BLOCKED)
    honoured = datetime(2030, 6, 1 + D - I, tzinfo=UTC)
    assert blocked.due == honoured + days(D - I)  # disabled when the re-enable stops being honoured, then kept
    assert "disabled at the first run on or after 2030-06-11" in blocked.detail


def test_a_re_enabled_key_that_became_the_current_one_is_rotated_not_disabled() -> None:
    only = key("AKIAOLD", 120)  # re-enabled, and its replacement deleted by hand
    record = Delivery("AKIAGONE", **disabled(NOW - days(5)))
    decision = decide(user(only), record, NOW, CONFIG)
    assert plan(decision) == [(ROTATE, "AKIAOLD")] and decision.notices == ()
    assert policy.unrecorded_reenables(user(only), record) == ()


def test_a_disable_whose_call_failed_is_no_re_enable_and_is_done_again() -> None:
    """The disable is recorded before UpdateAccessKey: if that call failed, the key is Active and never was not."""
    record = Delivery("AKIACUR", **disabled(NOW - timedelta(minutes=1), done=False))
    decision = decide(user(*REENABLED), record, NOW, CONFIG)
    assert plan(decision) == [(DISABLE, "AKIAOLD")] and decision.notices == ()
    assert policy.unrecorded_reenables(user(*REENABLED), record) == ()


def test_a_user_without_keys_gets_nothing() -> None:
    assert decide(user(), Delivery(), NOW, CONFIG) == Decision()


def test_more_than_two_keys_change_nothing() -> None:
    decision = decide(user(key("AKIA1", 200), key("AKIA2", 150), key("AKIA3", 100)), Delivery(), NOW, CONFIG)
    assert decision.actions == ()
    assert notice(decision, NoticeKind.BLOCKED).key_id is None


def test_key_order_in_the_snapshot_does_not_matter() -> None:
    keys = (key("AKIAOLD", 160, INACTIVE), key("AKIACUR", 80))
    assert decide(user(*keys), Delivery(), NOW, CONFIG) == decide(user(*reversed(keys)), Delivery(), NOW, CONFIG)


# -- exemptions -------------------------------------------------------------------

DUE_KEYS = (key("AKIAOLD", 160, INACTIVE), key("AKIACUR", 100))  # would get [DELETE, ROTATE]


@pytest.mark.parametrize("value", ["2030-06-01", "2030-06-30", " 2030-12-31 ", "2031-06-01"])  # at most 365 days on
def test_exempt_by_tag(value: str) -> None:
    decision = decide(user(*DUE_KEYS, tags={TAG: value}), Delivery(), NOW, CONFIG)
    assert decision.exempt and decision.actions == ()
    assert kinds(decision)[0] is NoticeKind.EXEMPT
    assert NoticeKind.INVALID_TAG not in kinds(decision)
    assert "AKIAOLD" in notice(decision, NoticeKind.EXEMPT).detail  # the exempt user's keys stay visible


@pytest.mark.parametrize("value", ["true", "TRUE", " True ", "2031-06-02", "2099-12-31", "9999-12-31"])
def test_a_tag_never_exempts_for_good_nor_further_than_max_exemption_days(value: str) -> None:
    # A tag takes only iam:TagUser: 'true' and dates beyond MaxExemptionDays are reported, not obeyed.
    decision = decide(user(*DUE_KEYS, tags={TAG: value}), Delivery(), NOW, CONFIG)
    assert not decision.exempt and decision.actions == ()
    assert kinds(decision) == [NoticeKind.INVALID_TAG]
    detail = decision.notices[0].detail
    assert repr(value) in detail
    assert (f"member of the group {GROUP}" in detail) if value.strip().lower() == "true" else ("2031-06-01" in detail)


def test_max_exemption_days_is_counted_from_the_day_of_the_run() -> None:
    config = default_lifecycle(max_exemption_days=30)
    assert decide(user(*DUE_KEYS, tags={TAG: "2030-07-01"}), Delivery(), NOW, config).exempt
    assert not decide(user(*DUE_KEYS, tags={TAG: "2030-07-02"}), Delivery(), NOW, config).exempt
    assert decide(user(*DUE_KEYS, tags={TAG: "2030-07-02"}), Delivery(), NOW + timedelta(days=1), config).exempt


def test_dated_exemption_lasts_through_its_day() -> None:
    tagged = user(*DUE_KEYS, tags={TAG: "2030-06-01"})
    last_moment = datetime(2030, 6, 1, 23, 59, 59, tzinfo=UTC)
    assert decide(tagged, Delivery(), last_moment, CONFIG).exempt
    assert not decide(tagged, Delivery(), last_moment + timedelta(seconds=1), CONFIG).exempt
    assert exemption(tagged, NOW, CONFIG).ends == datetime(2030, 6, 2, tzinfo=UTC)


def test_past_date_means_not_exempt() -> None:
    decision = decide(user(*DUE_KEYS, tags={TAG: "2030-05-31"}), Delivery(), NOW, CONFIG)
    assert not decision.exempt
    assert plan(decision) == [(DELETE, "AKIAOLD"), (ROTATE, "AKIACUR")]
    assert NoticeKind.EXEMPT not in kinds(decision) and NoticeKind.INVALID_TAG not in kinds(decision)


@pytest.mark.parametrize(
    "value", ["yes", "false", "1", "", "  ", "2030-02-30", "2030-W22-1", "2030-6-1", "06/01/2030", "20300601", "true!"]
)
def test_unreadable_tag_changes_nothing_and_is_reported(value: str) -> None:
    decision = decide(user(*DUE_KEYS, tags={TAG: value}), Delivery(), NOW, CONFIG)
    assert decision.actions == () and not decision.exempt
    assert kinds(decision) == [NoticeKind.INVALID_TAG]
    assert repr(value) in decision.notices[0].detail and "2030-06-01" in decision.notices[0].detail


def test_long_tag_values_are_shortened_in_the_notice() -> None:
    decision = decide(user(*DUE_KEYS, tags={TAG: "x" * 200}), Delivery(), NOW, CONFIG)
    assert "x" * 41 not in decision.notices[0].detail


@pytest.mark.parametrize("group", [GROUP, GROUP.lower()])
def test_exempt_by_group(group: str) -> None:
    decision = decide(user(*DUE_KEYS, groups=frozenset({"developers", group})), Delivery(), NOW, CONFIG)
    assert decision.exempt and decision.actions == ()
    assert kinds(decision) == [NoticeKind.EXEMPT]
    assert f"member of the group {group}" in decision.notices[0].detail


def test_group_exemption_still_reports_an_unreadable_tag() -> None:
    decision = decide(user(*DUE_KEYS, tags={TAG: "maybe"}, groups=frozenset({GROUP})), Delivery(), NOW, CONFIG)
    assert decision.exempt and decision.actions == ()
    assert kinds(decision) == [NoticeKind.EXEMPT, NoticeKind.INVALID_TAG]


def test_tag_key_is_matched_ignoring_case_as_iam_does() -> None:
    decision = decide(user(*DUE_KEYS, tags={TAG.upper(): "2030-06-30"}), Delivery(), NOW, CONFIG)
    assert decision.exempt


def test_exempt_users_keep_even_an_undelivered_key() -> None:
    keys = (key("AKIAOLD", 80), key("AKIALOST", 1))
    decision = decide(user(*keys, tags={TAG: "2030-06-30"}), Delivery("AKIAOLD", "AKIALOST"), NOW, CONFIG)
    assert decision.actions == () and decision.exempt


def test_exemption_expiring_is_announced_once_within_the_warning_days() -> None:
    ends_in_7_days = user(*DUE_KEYS, tags={TAG: "2030-06-07"})  # exempt through 06-07, so ends 06-08 00:00
    ends_in_8_days = user(*DUE_KEYS, tags={TAG: "2030-06-08"})
    decision = decide(ends_in_7_days, Delivery(), NOW, CONFIG)
    assert kinds(decision) == [NoticeKind.EXEMPT, NoticeKind.EXEMPTION_EXPIRING]
    expiring = notice(decision, NoticeKind.EXEMPTION_EXPIRING)
    # The notice's date is the last exempt day, as the tag gives it (its last second), not the next day.
    assert expiring.key_id is None and expiring.due == datetime(2030, 6, 7, 23, 59, 59, tzinfo=UTC)
    assert "2030-06-07" in expiring.detail and "2030-06-08" in expiring.detail
    assert kinds(decide(ends_in_8_days, Delivery(), NOW, CONFIG)) == [NoticeKind.EXEMPT]
    warned = Delivery(warned=frozenset({("", NoticeKind.EXEMPTION_EXPIRING.value)}))
    assert kinds(decide(ends_in_7_days, warned, NOW, CONFIG)) == [NoticeKind.EXEMPT]


def test_exemption_without_end_never_expires() -> None:
    # Only the group exempts without end.
    assert kinds(decide(user(groups=frozenset({GROUP})), Delivery(), NOW, CONFIG)) == [NoticeKind.EXEMPT]


# -- warnings ---------------------------------------------------------------------


def test_disable_soon_is_sent_once_with_the_date_and_how_the_key_is_used() -> None:
    old = key("AKIAOLD", 85, used=0.5, service="dynamodb", region="us-east-1")
    current = key("AKIACUR", 10)
    decision = decide(user(old, current), Delivery("AKIACUR"), NOW, CONFIG)
    assert decision.actions == ()
    warning = notice(decision, NoticeKind.DISABLE_SOON)
    # Its date is I days after 02:00 (2030-06-06 02:00), so the daily 06:00 run of the day before disables it
    # (the last run before the date), and deletes it D-I days later: the dates given are those runs' dates.
    assert warning.key_id == "AKIAOLD" and warning.due == datetime(2030, 6, 5, 6, 0, tzinfo=UTC)
    assert old.created + days(I) == datetime(2030, 6, 6, 2, 0, tzinfo=UTC)
    assert "disabled by 2030-06-05" in warning.detail and "deleted by 2030-06-15" in warning.detail
    assert "must switch to key AKIACUR before 2030-06-05" in warning.detail  # the last run may be the day before
    assert "last used on 2030-05-31 with dynamodb in us-east-1" in warning.detail
    assert "switch to key AKIACUR" in warning.detail

    warned = Delivery("AKIACUR", warned=frozenset({("AKIAOLD", "disable-soon")}))
    assert decide(user(old, current), warned, NOW, CONFIG) == Decision()


def test_disable_soon_for_a_key_never_used() -> None:
    decision = decide(user(key("AKIAOLD", 85), key("AKIACUR", 10)), Delivery("AKIACUR"), NOW, CONFIG)
    assert "Key AKIAOLD has never been used" in notice(decision, NoticeKind.DISABLE_SOON).detail


def test_usage_without_service_or_region_is_described_plainly() -> None:
    old = key("AKIAOLD", 85, used=3, service="N/A", region=None)
    detail = notice(decide(user(old, key("AKIACUR", 10)), Delivery(), NOW, CONFIG), NoticeKind.DISABLE_SOON).detail
    assert "Key AKIAOLD was last used on 2030-05-29." in detail


@pytest.mark.parametrize(
    ("old_age", "warned"),
    [(I - RUN - W - 0.1, False), (I - RUN - W, True), (I - RUN - 0.1, True), (I - RUN, False)],
)
def test_disable_soon_window_is_the_w_days_before_the_disable(old_age: float, warned: bool) -> None:
    decision = decide(user(key("AKIAOLD", old_age), key("AKIACUR", 20)), Delivery(), NOW, CONFIG)
    assert (NoticeKind.DISABLE_SOON in kinds(decision)) == warned
    assert plan(decision) == ([(DISABLE, "AKIAOLD")] if old_age >= I - RUN else [])


def test_no_warnings_when_warning_days_is_zero() -> None:
    config = default_lifecycle(warning_days=0)
    assert decide(user(key("AKIAOLD", 89.99), key("AKIACUR", 10)), Delivery(), NOW, config) == Decision()


# -- the per-account limit -------------------------------------------------------


def _account() -> list[Decision]:
    """Five users: 2, 1, 3, 0 and 1 actions."""
    users = [
        user(key("AKIAU1OLD", 160, INACTIVE), key("AKIAU1CUR", 80)),  # DELETE, ROTATE
        user(key("AKIAU2", 80)),  # ROTATE
        user(key("AKIAU3OLD", 80), key("AKIAU3LOST", 1)),  # DISABLE, DELETE, ROTATE
        user(key("AKIAU4", 10)),  # nothing
        user(key("AKIAU5", 100, INACTIVE)),  # DELETE
    ]
    deliveries = [Delivery(), Delivery(), Delivery("AKIAU3OLD", "AKIAU3LOST"), Delivery(), Delivery()]
    return [decide(u, d, NOW, CONFIG) for u, d in zip(users, deliveries, strict=True)]


def ids(actions: tuple[Action, ...]) -> list[str]:
    return [f"{a.type.value} {a.key_id}" for a in actions]


def test_limit_keeps_users_whole_and_defers_the_rest_in_order() -> None:
    result = plan_account(_account(), default_lifecycle(max_actions_per_account=4))
    assert ids(result.actions) == ["delete AKIAU1OLD", "rotate AKIAU1CUR", "rotate AKIAU2"]
    assert ids(result.deferred) == [
        "disable AKIAU3LOST", "delete AKIAU3LOST", "rotate AKIAU3OLD", "delete AKIAU5",
    ]  # user 3 does not fit in the one action left, and user 5 waits behind it
    deferred_notices = [n for n in result.notices if n.kind is NoticeKind.DEFERRED]
    assert [n.key_id for n in deferred_notices] == ["AKIAU3LOST", "AKIAU3LOST", "AKIAU3OLD", "AKIAU5"]
    assert "MaxActionsPerAccount" in deferred_notices[0].detail and "never delivered" in deferred_notices[0].detail


def test_limit_large_enough_takes_everything() -> None:
    decisions = _account()
    result = plan_account(decisions, CONFIG)
    assert result.actions == tuple(a for d in decisions for a in d.actions) and result.deferred == ()
    assert result.notices == tuple(n for d in decisions for n in d.notices)


def test_limit_smaller_than_one_users_sequence_still_makes_progress() -> None:
    decisions = _account()[2:]  # user 3 first, with 3 actions
    result = plan_account(decisions, default_lifecycle(max_actions_per_account=2))
    assert ids(result.actions) == ["disable AKIAU3LOST", "delete AKIAU3LOST"]
    assert ids(result.deferred) == ["rotate AKIAU3OLD", "delete AKIAU5"]


def test_limit_of_exactly_the_sum() -> None:
    result = plan_account(_account(), default_lifecycle(max_actions_per_account=7))
    assert len(result.actions) == 7 and result.deferred == ()


def test_account_plan_of_nothing() -> None:
    assert plan_account([], CONFIG) == AccountPlan()


# -- wants() -----------------------------------------------------------------------


def test_wants_only_the_next_action() -> None:
    decision = decide(user(key("AKIAOLD", 160, INACTIVE), key("AKIACUR", 80)), Delivery(), NOW, CONFIG)
    assert wants(decision, DELETE, "AKIAOLD")
    assert not wants(decision, ROTATE, "AKIACUR")  # not before AKIAOLD is gone
    assert not wants(decision, DISABLE, "AKIAOLD")
    assert not wants(decision, DELETE, "AKIACUR")
    assert not wants(Decision(), DELETE, "AKIAOLD")


# ==========================================================================
# 3. Whole schedules, day by day
# ==========================================================================


def replay(sim: SimUser, start: datetime, days_to_run: int, config: LifecycleConfig = CONFIG) -> dict[int, list[str]]:
    """Run once a day, each action a second after the one before; for each day with news, what was done and told."""
    log: dict[int, list[str]] = {}
    for day in range(days_to_run):
        result = run(sim, start + days(day), config, ACTION_STEP)
        assert all(step.carried_out for step in result.steps)
        entries = [f"{a.type.value} {a.key_id}" for a in result.decision.actions]
        entries += [f"{n.kind.value} {n.key_id}" for n in result.decision.notices]
        if entries:
            log[day] = entries
    return log


def test_default_schedule_day_by_day() -> None:
    """Key created by day 0's run -> rotated day 75 -> warned day 83 -> disabled day 90 -> deleted day 100."""
    first = SimKey("AKIAFIRST", ACTIVE, NOW + ACTION_STEP, Origin.DELIVERED)  # made by the run, as its own are
    sim = SimUser(keys=[first], delivered_key_id="AKIAFIRST")
    second, third = "AKIASIM0000000000001", "AKIASIM0000000000002"
    assert replay(sim, NOW, 251) == {
        75: ["rotate AKIAFIRST"],
        83: ["disable-soon AKIAFIRST"],
        90: ["disable AKIAFIRST"],
        100: ["delete AKIAFIRST"],
        150: [f"rotate {second}"],
        158: [f"disable-soon {second}"],
        165: [f"disable {second}"],
        175: [f"delete {second}"],
        225: [f"rotate {third}"],
        233: [f"disable-soon {third}"],
        240: [f"disable {third}"],
        250: [f"delete {third}"],
    }


def test_late_rotation_keeps_the_grace_periods() -> None:
    """A key first seen at 200 days: rotated at once, disabled 15 days later, deleted 25 days later."""
    sim = SimUser(keys=[SimKey("AKIAOLD", ACTIVE, NOW - days(200), Origin.OWN)])
    assert replay(sim, NOW, 30) == {
        0: ["rotate AKIAOLD"],
        8: ["disable-soon AKIAOLD"],
        15: ["disable AKIAOLD"],
        25: ["delete AKIAOLD"],
    }


def test_rotation_waits_for_the_old_key_when_r_is_short() -> None:
    """With 2R < D the next rotation waits until the previous old key is deleted: every D-R days."""
    config = default_lifecycle(rotation_days=30, inactive_days=60, delete_days=90, warning_days=0)
    first = SimKey("AKIAFIRST", ACTIVE, NOW + ACTION_STEP, Origin.DELIVERED)
    sim = SimUser(keys=[first], delivered_key_id="AKIAFIRST")
    log = replay(sim, NOW, 151, config)
    actions = {day: [e for e in entries if not e.startswith("blocked")] for day, entries in log.items()}
    second = "AKIASIM0000000000001"
    assert {day: a for day, a in actions.items() if a} == {
        30: ["rotate AKIAFIRST"],
        60: ["disable AKIAFIRST"],
        90: ["delete AKIAFIRST", f"rotate {second}"],
        120: [f"disable {second}"],
        150: [f"delete {second}", "rotate AKIASIM0000000000002"],
    }
    assert log[60] == ["disable AKIAFIRST", f"blocked {second}"]  # the wait is announced


# -- the default schedule as its runs meet it: no Active key reaches the CIS age ---------------

#: CIS AWS Foundations 1.14, Security Hub IAM.3 and Prowler's iam_rotate_access_key_90_days fail an Active key
#: this old: the benchmark's number, not the template's InactivePeriodDays.
CIS_MAX_KEY_AGE = timedelta(days=90)
AUDIT_LAG = timedelta(seconds=2)  # a run's audit starts a little after the scheduled moment (ACTION_STEP: its actions)
SCHEDULE_START = datetime(2030, 1, 1, tzinfo=UTC)


def default_runs(count: int) -> list[datetime]:
    """The first ``count`` runs of the template's default ScheduleExpression from SCHEDULE_START."""
    expression = parameter_defaults()["ScheduleExpression"]
    daily = re.fullmatch(r"cron\(([0-9]+) ([0-9]+) \* \* \? \*\)", expression)
    assert daily, f"these tests are written for a daily default schedule, not {expression}"
    first = SCHEDULE_START.replace(hour=int(daily.group(2)), minute=int(daily.group(1)))
    return [first + days(n) for n in range(count)]


@pytest.mark.parametrize(
    ("created_after_audit", "late_by"),
    [
        (-timedelta(hours=1), 1),  # made by hand before the day's run: every step comes a run earlier
        (-timedelta(seconds=1), 1),
        (timedelta(0), 1),
        (timedelta(seconds=1), 0),  # made by the product in a run: day 0, 75, 83, 90, 100 of the lifecycle
        (timedelta(hours=1), 0),
        (timedelta(hours=12), 0),
    ],
)
def test_default_schedule_keeps_every_active_key_younger_than_the_cis_age(
    created_after_audit: timedelta, late_by: int
) -> None:
    """At least 200 daily runs of the default schedule: after every run, every Active key is younger than 90 days.

    The first key is created on day 0, at ``created_after_audit`` from that day's audit; every later key
    is the product's own, made by a run. The first cycle's days are those of docs/lifecycle.md,
    "The normal schedule, with the default numbers", a day
    earlier for a key made before the run's time of day (the last run before each age is then a day earlier).
    """
    runs = default_runs(250)
    first = SimKey("AKIAFIRST", ACTIVE, runs[0] + AUDIT_LAG + created_after_audit, Origin.DELIVERED)
    sim = SimUser(keys=[first], delivered_key_id="AKIAFIRST")
    events: dict[str, list[int]] = {}
    for day, scheduled in enumerate(runs[1:], start=1):
        result = run(sim, scheduled + AUDIT_LAG, CONFIG, ACTION_STEP)
        assert all(step.carried_out for step in result.steps)
        for action in result.decision.actions:
            events.setdefault(f"{action.type.value} {action.key_id}", []).append(day)
        for notice in result.decision.notices:
            events.setdefault(f"{notice.kind.value} {notice.key_id}", []).append(day)
        assert result.ended is not None
        for k in sim.keys:
            age = result.ended - k.created
            assert not k.active or age < CIS_MAX_KEY_AGE, f"day {day}: Active key {k.key_id} is {age} old"
    assert {name: when for name, when in events.items() if name.endswith("AKIAFIRST")} == {
        "rotate AKIAFIRST": [R - late_by],
        "disable-soon AKIAFIRST": [I - W - late_by],
        "disable AKIAFIRST": [I - late_by],
        "delete AKIAFIRST": [D - late_by],
    }
    rotated = {name.split()[1]: when[0] for name, when in events.items() if name.startswith("rotate ")}
    assert len(rotated) >= 3  # three cycles at least
    for key_id, day in rotated.items():  # the grace, in runs: I-R runs to the disable, D-R to the delete
        assert events.get(f"disable {key_id}", [day + I - R]) == [day + I - R]
        assert events.get(f"delete {key_id}", [day + D - R]) == [day + D - R]


# ==========================================================================
# The examples in the module's docstrings are true
# ==========================================================================


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(policy, optionflags=doctest.ELLIPSIS)
    assert tried >= 10 and failures == 0


def test_wording_docstring_examples() -> None:
    failures, tried = doctest.testmod(wording, optionflags=doctest.ELLIPSIS)
    assert tried >= 5 and failures == 0
