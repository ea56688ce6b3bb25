"""Which users the audit reads in full (keyrotation.triage), checked against the policy itself.

Two properties carry the audit's correctness:

1. A user the credential report shows with nothing due has nothing due: whatever the policy would do
   or say about the user read in full (its tags, groups and ledger record included), the report's
   picture of its keys is enough to pick it, but for what an exemption tag alone says.
2. A quiet mark is never trusted past the first moment something can be due: from the moment a full
   reading found nothing, the policy stays silent until :func:`triage.quiet_until`, and speaks then.
"""

from __future__ import annotations

import doctest
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyrotation import audit, credential_report, policy, triage
from keyrotation.config import LifecycleConfig
from keyrotation.credential_report import ReportKey, ReportUser
from keyrotation.model import AccessKey, Delivery, KeyStatus, NoticeKind, UserSnapshot
from localaws.defaults import default_lifecycle

from .policy_sim import SimUser
from .test_policy_properties import BASE, EXEMPT_GROUP, configs, users

CONFIG = default_lifecycle()
NOW = datetime(2030, 6, 1, 6, 0, tzinfo=UTC)
ARN = "arn:aws:iam::111122223333:user/alice"
#: What only the user's tags (or the group) make the policy say; the report cannot show it.
TAG_NOTICES = {NoticeKind.EXEMPT, NoticeKind.INVALID_TAG, NoticeKind.EXEMPTION_EXPIRING}


def row_of(user: UserSnapshot) -> ReportUser:
    """The credential report's row for ``user``: its keys' status and creation second, no ids."""
    keys = [
        ReportKey(slot=n + 1, active=key.active, created=key.created.replace(microsecond=0))
        for n, key in enumerate(user.keys)
    ]
    return ReportUser(user.user_name, user.user_arn, tuple(sorted(keys, key=lambda k: (k.created, k.slot))))


def something(decision: policy.Decision) -> bool:
    return bool(decision.actions or decision.notices)


def picked(
    user: UserSnapshot,
    delivery: Delivery,
    now: datetime,
    config: LifecycleConfig,
    quiet: triage.Quiet | None = None,
    members: frozenset[str] = frozenset(),
) -> bool:
    selected = triage.select([row_of(user)], {user.user_name: (delivery, quiet)}, members, now, config)
    return any(chosen.user_name == user.user_name for chosen in selected)


def snapshot_of(sim: SimUser) -> tuple[UserSnapshot, Delivery]:
    return sim.snapshot(), sim.delivery()


@hypothesis.settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_report_picks_every_user_with_something_due(data: st.DataObject) -> None:
    config = data.draw(configs())
    now = BASE + timedelta(seconds=data.draw(st.integers(0, 400 * 86400)))
    user, delivery = snapshot_of(data.draw(users(now, config)))
    hypothesis.assume(len(user.keys) <= 2)  # IAM's limit: the report has two key columns
    members = frozenset({user.user_name}) if EXEMPT_GROUP in user.groups else frozenset()
    if not user.keys:  # a user without keys is never read (nor was it before the report), unless unfinished
        assert picked(user, delivery, now, config, members=members) == bool(delivery.pending_since)
        return
    decision = policy.decide(user, delivery, now, config)
    said = {notice.kind for notice in decision.notices}
    if decision.actions or said - TAG_NOTICES or members:
        assert picked(user, delivery, now, config, members=members), (decision, user, delivery)
    untagged = replace(user, tags={}, groups=frozenset())
    if something(policy.decide(untagged, delivery, now, config)):
        assert picked(user, delivery, now, config, members=members)


@hypothesis.settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_quiet_user_stays_quiet_until_the_moment_given(data: st.DataObject) -> None:
    config = data.draw(configs())
    now = BASE + timedelta(seconds=data.draw(st.integers(0, 400 * 86400)))
    user, delivery = snapshot_of(data.draw(users(now, config)))
    hypothesis.assume(not something(policy.decide(user, delivery, now, config)))
    until = triage.quiet_until(user, delivery, now, config)
    horizon = until if until is not None else now + timedelta(days=3 * 365)
    span = int((horizon - now).total_seconds())
    for seconds in {0, max(0, span - 1), *data.draw(st.lists(st.integers(0, max(0, span - 1)), max_size=8))}:
        moment = now + timedelta(seconds=seconds)
        assert not something(policy.decide(user, delivery, moment, config)), (moment, until)
    if until is not None:
        assert something(policy.decide(user, delivery, until, config))
        # And the mark is trusted up to then, not after.
        quiet = triage.Quiet(until, triage.fingerprint((k.created, k.active) for k in user.keys), triage.basis(config))
        plain = Delivery()  # no unfinished rotation (the strategy may draw one): the mark alone decides
        if not delivery.pending_key_id and not delivery.pending_since and EXEMPT_GROUP not in user.groups:
            assert not picked(user, plain, until - timedelta(seconds=1), config, quiet)
            assert picked(user, plain, until, config, quiet) or not something(
                policy.decide(replace(user, tags={}, groups=frozenset()), plain, until, config)
            )


def key(key_id: str, days_old: float, active: bool = True) -> AccessKey:
    status = KeyStatus.ACTIVE if active else KeyStatus.INACTIVE
    return AccessKey(key_id, status, (NOW - timedelta(days=days_old)).replace(microsecond=0))


def alice(*keys: AccessKey, **fields: object) -> UserSnapshot:
    return UserSnapshot("alice", ARN, keys=keys, **fields)  # type: ignore[arg-type]


def test_a_user_with_young_keys_is_not_read() -> None:
    assert not picked(alice(key("AKIAA", 20)), Delivery(), NOW, CONFIG)


def test_a_due_key_a_spare_key_to_delete_or_a_warning_gets_the_user_read() -> None:
    assert picked(alice(key("AKIAA", CONFIG.rotation_days + 0.5)), Delivery(), NOW, CONFIG)
    assert picked(alice(key("AKIAA", CONFIG.delete_days + 1, active=False)), Delivery(), NOW, CONFIG)
    retired = key("AKIAOLD", CONFIG.inactive_days - CONFIG.warning_days + 0.5)
    assert picked(alice(retired, key("AKIANEW", 30)), Delivery(), NOW, CONFIG)


def test_an_unfinished_rotation_gets_the_user_read_even_when_the_report_does_not_show_its_key() -> None:
    pending = Delivery(pending_since=NOW - timedelta(hours=1))
    assert picked(alice(key("AKIAA", 20)), pending, NOW, CONFIG)
    # The user is not in the report at all (made since): the ledger alone names it.
    selected = list(triage.select([], {"bob": (pending, None)}, frozenset(), NOW, CONFIG))
    assert [chosen.user_name for chosen in selected] == ["bob"]


def test_members_of_the_exemption_group_are_read_on_every_run() -> None:
    assert picked(alice(key("AKIAA", 20)), Delivery(), NOW, CONFIG, members=frozenset({"alice"}))
    assert not picked(alice(), Delivery(), NOW, CONFIG, members=frozenset({"alice"}))  # no key: nothing to say


def test_a_key_the_product_disabled_shown_active_again_gets_the_user_read() -> None:
    """Found by hypothesis: only the ledger knows the key was disabled; the report shows it Active, young."""
    disabled = datetime(2030, 5, 31, 6, 0, tzinfo=UTC)
    record = Delivery("AKIANEW", disabled=frozenset({("AKIAOLD", disabled)}), disabled_done=frozenset({("AKIAOLD", disabled)}))
    reenabled = alice(key("AKIAOLD", 5), key("AKIANEW", 1))
    assert policy.decide(reenabled, record, NOW, default_lifecycle(rotation_days=10, inactive_days=20, delete_days=30)).notices
    assert picked(reenabled, record, NOW, CONFIG)
    assert not picked(alice(key("AKIAOLD", 5, active=False), key("AKIANEW", 1)), record, NOW, CONFIG)  # still Inactive
    found = Delivery(**{**record.__dict__, "reenabled": frozenset({("AKIAOLD", NOW)})})
    assert not picked(reenabled, found, NOW, CONFIG)  # a run already found it: the policy was told


def test_two_keys_of_the_same_second_get_the_user_read() -> None:
    twins = alice(key("AKIAA", 20), key("AKIAB", 20))
    assert picked(twins, Delivery(), NOW, CONFIG)


def test_a_quiet_mark_holds_only_for_the_same_keys_and_settings() -> None:
    retired, current = key("AKIAOLD", CONFIG.inactive_days - 2), key("AKIANEW", 30)
    user = alice(retired, current)
    warned = Delivery(warned=frozenset({("AKIAOLD", NoticeKind.DISABLE_SOON.value)}))
    assert not something(policy.decide(user, warned, NOW, CONFIG))  # warned already: nothing to say until disabled
    assert picked(user, Delivery(), NOW, CONFIG)  # the report cannot tell the warning was given
    until = triage.quiet_until(user, warned, NOW, CONFIG)
    assert until == policy.act_from(retired.created + timedelta(days=CONFIG.inactive_days), CONFIG)  # a run early
    quiet = triage.Quiet(until, triage.fingerprint((k.created, k.active) for k in user.keys), triage.basis(CONFIG))
    assert not picked(user, Delivery(), NOW, CONFIG, quiet)
    assert picked(user, Delivery(), until, CONFIG, quiet)
    disabled = alice(replace(retired, status=KeyStatus.INACTIVE), current)
    assert picked(disabled, Delivery(), NOW + timedelta(days=1), CONFIG, quiet) or not something(
        policy.decide(disabled, Delivery(), NOW + timedelta(days=1), CONFIG)
    )
    other_schedule = default_lifecycle(warning_days=CONFIG.warning_days + 1)
    assert picked(user, Delivery(), NOW, other_schedule, quiet)


def test_fingerprint_reads_the_same_from_the_report_and_from_list_access_keys() -> None:
    created = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)  # ListAccessKeys may say microseconds; the report not
    assert triage.fingerprint([(created, True)]) == triage.fingerprint([(created.replace(microsecond=0), True)])


@pytest.mark.parametrize("module", [triage, credential_report, audit], ids=lambda module: module.__name__)
def test_the_docstring_examples_hold(module: object) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert tried and not failures
