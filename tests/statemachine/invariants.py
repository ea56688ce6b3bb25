"""What must hold for every user after every run, checked from the outside.

A :class:`Watch` photographs every user of the watched accounts (keys, tags,
groups, the user's secret and the ledger's delivery record), straight from
moto's backends so that the photographs neither make AWS calls (which an
injected fault or a call recording would see) nor depend on the product's own
reading code. Between two photographs it checks the lifecycle's promises
(``docs/lifecycle.md``, ``keyrotation/policy.py``), restated here from the
documentation rather than imported, so that a wrong policy cannot agree with
itself:

Safety (after every run, even one that failed):

- no key that was Active at the previous photograph disappears, unless it was
  an undelivered key (the product made it, nobody ever received it);
- no key the product did not create is ever disabled or deleted as undelivered:
  not the new key DiscardNewKey takes back, not a key whose action the ledger
  records as ``undelivered``, and the ledger never records a key the product
  did not create as its pending new key (``pendingKeyId``);
- no user has more than two keys;
- a user who held an Active key they can read keeps one (a key they can read:
  the one their secret's ``AWSCURRENT`` version holds, when the stored secret
  is the key's own and the secret's policy lets the user read it; or a key
  the user made by hand);
- a user's secret, where there is one, holds a key of theirs that is Active,
  unless the user's current key is one they made by hand;
- no key of an exempt user, or of a user whose exemption tag cannot be read,
  is changed or added;
- the grace periods: a replaced key is disabled no sooner than I days after
  its creation and I-R days after its replacement's; a readable key is deleted
  no sooner than D days after its creation, D-R days after its replacement's,
  and D-I calendar days after the day the product disabled it; a key is
  replaced no sooner than R days after its creation, only when it is the
  user's current key and only when nothing else is left beside it. Each
  event happens at the last run before its date, so each age and each grace
  after a replacement may come one run interval (the longest gap between two
  runs of the stack's ScheduleExpression) early; the D-I calendar days never
  do, and a person's first re-enable of a key the product disabled is
  honoured for D-I calendar days from the day of the run that found it.

Settled (after a run that was not disturbed):

- no intent is left pending in the ledger, and every key the product created
  is or was delivered (nothing orphaned);
- no Active key reaching I days within a run interval of the audit remains,
  unless the user is exempt (or has an unreadable tag), a blocked notice was
  recorded for the user in that run, it is an old key still inside its grace
  period, or a person's re-enable of it is honoured;
- nothing due is left undone: every rotation, disable and delete whose date
  comes within a run interval of the account's audit is done by the end of
  the run (a rotation may instead be announced as blocked; a re-enabled key
  may be honoured).

Compliance (:meth:`Watch.compliance_problems`, for tests that run on the schedule):
what Prowler's ``iam_rotate_access_key_90_days`` (CIS 1.14, Security Hub
IAM.3) and ``iam_user_two_active_access_key`` would report after the run,
less the exceptions docs/lifecycle.md, "The 90-day promise (CIS 1.14, Security Hub IAM.3)"
states:

- no Active key is 90 days old or older (the benchmark's 90 days, not the
  stack's InactivePeriodDays), unless the user is exempt (or has an
  unreadable tag), a blocked notice was recorded for the user in that run,
  the key's replacement came late (when the key was already R days old: the
  old key then keeps its I-R days of grace after the replacement), or a
  person re-enabled the key after the product disabled it (honoured for D-I
  days from the day of the first run that found it Active again);
- a user has two Active keys only while the older one waits for its disable
  date (the later of I days after its creation and I-R days after the newer
  key's), or while a person's re-enable of it is honoured.

Delivered: a key counts as delivered once a secret's ``AWSCURRENT`` version
holds it without ``AWSPENDING`` (Secrets Manager labels a secret's first
version ``AWSCURRENT`` by itself; the product removes ``AWSPENDING`` when it
delivers). A key the product made and never delivered is "undelivered".

Times: a mutation happens inside the Lambda invocation that carries it out,
so the start of that invocation (recorded by a ``before_invoke`` hook) is a
lower bound for when it happened; "no sooner than" is checked against it. The
start of the account's audit is a lower bound for when the plan was made;
"must be done" is checked against it.

Secret values are read inside this process only to compare them with IAM's
own record; they are never kept, printed or put in a message: every message
here names key ids only.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from keyrotation.naming import secret_name
from localaws import REGION, FunctionSpec, KeySeed, LocalAws, Stack
from localaws.lambdas import LambdaRuntime
from localaws.organization import add_key

#: Prowler's iam_rotate_access_key_90_days (CIS AWS Foundations 1.14, Security Hub IAM.3) fails an Active key
#: this old: the benchmark's number, not the stack's InactivePeriodDays.
CIS_MAX_KEY_AGE = timedelta(days=90)
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_deserializer = TypeDeserializer()


# -- the schedule, as the stack was deployed ----------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    rotation: int = 75
    inactive: int = 90
    delete: int = 100
    exempt_tag_key: str = "key-rotation:exempt"
    exempt_group: str = "IAMKeyRotationExemptionGroup"
    interval: timedelta = timedelta(0)  # the longest gap between two scheduled runs
    max_exemption_days: int = 365

    @classmethod
    def of(cls, stack: Stack) -> Schedule:
        p = stack.parameters
        return cls(
            rotation=int(p["RotationPeriodDays"]),
            inactive=int(p["InactivePeriodDays"]),
            delete=int(p["DeletePeriodDays"]),
            exempt_tag_key=p["ExemptTagKey"],
            exempt_group=p["ExemptGroupName"],
            interval=_run_interval(p["ScheduleExpression"]),
            max_exemption_days=int(p["MaxExemptionDays"]),
        )

    @property
    def R(self) -> timedelta:  # noqa: N802 - the documentation's names
        return timedelta(days=self.rotation)

    @property
    def I(self) -> timedelta:  # noqa: N802,E743
        return timedelta(days=self.inactive)

    @property
    def D(self) -> timedelta:  # noqa: N802
        return timedelta(days=self.delete)


def _run_interval(expression: str) -> timedelta:
    """The longest gap between two runs of the schedules these tests deploy (restated, not the product's parser)."""
    if re.fullmatch(r"cron\([0-9]+ [0-9]+ \* \* \? \*\)", expression):
        return timedelta(days=1)  # once a day at a fixed time
    rate = re.fullmatch(r"rate\(([0-9]+) (minute|hour|day)s?\)", expression)
    if rate:
        return int(rate.group(1)) * {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}.get(
            rate.group(2), timedelta(days=1)
        )
    raise ValueError(f"the invariants do not know the run interval of {expression!r}")


def exemption(tags: Mapping[str, str], groups: Iterable[str], on: date, schedule: Schedule) -> str | None:
    """``"exempt"``, ``"invalid"`` (an unreadable tag: no action either) or None.

    As docs/lifecycle.md, "Exemptions" says.
    """
    if any(group.lower() == schedule.exempt_group.lower() for group in groups):
        return "exempt"
    value = next((v for k, v in tags.items() if k.lower() == schedule.exempt_tag_key.lower()), None)
    if value is None:
        return None
    value = value.strip()
    if _DATE.match(value):  # 'true' and anything else but a date is unreadable: a tag never exempts for good
        try:
            last_day = date.fromisoformat(value)
        except ValueError:
            return "invalid"
        if (last_day - on).days > schedule.max_exemption_days:
            return "invalid"
        return "exempt" if on <= last_day else None
    return "invalid"


def start_of_day(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(), tzinfo=UTC)


# -- photographs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    key_id: str
    status: str
    created: datetime

    @property
    def active(self) -> bool:
        return self.status == "Active"


@dataclass(frozen=True)
class User:
    account_id: str
    name: str
    arn: str
    tags: Mapping[str, str]
    groups: frozenset[str]
    keys: Mapping[str, Key]
    secret_key_id: str | None = None  # the AccessKeyId in AWSCURRENT of the user's secret, once delivered there
    secret_matches: bool = False  # that version's SecretAccessKey is the key's own (compared, never kept)
    secret_readable: bool = False  # the secret's policy lets the user read it
    pending_key_id: str | None = None
    pending_since: datetime | None = None
    delivered_key_id: str | None = None

    @property
    def key_label(self) -> str:
        return f"{self.account_id}/{self.name}"

    def newest_active(self, among: Iterable[Key]) -> Key | None:
        active = sorted((k for k in among if k.active), key=lambda k: (k.created, k.key_id))
        return active[-1] if active else None


@dataclass(frozen=True)
class Snapshot:
    taken: datetime
    users: Mapping[tuple[str, str], User]


def _plain(item: Any) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.to_json()["Attributes"].items()}


def ledger_items(table_name: str, pk: str | None = None) -> list[dict[str, Any]]:
    """The items of a ledger table (of one partition if ``pk``), read from moto's backend: no AWS call."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(table_name)
    if pk is None:
        return [_plain(item) for item in table.all_items()]
    return [_plain(item) for item in table.items.get(DynamoType({"S": pk}), {}).values()]


def _deliveries(table_name: str | None, accounts: Iterable[str]) -> dict[tuple[str, str], dict[str, Any]]:
    if not table_name:
        return {}
    found = {}
    for account_id in accounts:
        for item in ledger_items(table_name, f"DELIVERY#{account_id}"):
            found[(account_id, item["sk"].removeprefix("USER#"))] = item
    return found


def _user_can_read(policy: str | None, user_arn: str) -> bool:
    if not policy:
        return False
    for statement in json.loads(policy).get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal", {})
        principals = principal.get("AWS", []) if isinstance(principal, dict) else []
        principals = [principals] if isinstance(principals, str) else principals
        if statement.get("Effect") == "Allow" and user_arn in principals and "secretsmanager:GetSecretValue" in actions:
            return True
    return False


def _current_version(account_id: str, user_name: str) -> dict[str, Any] | None:
    secrets = secretsmanager_backends[account_id][REGION].secrets
    name = secret_name(account_id, user_name)
    if name not in secrets:
        return None
    for version in secrets[name].versions.values():
        if CURRENT in version.get("version_stages", []) and version.get("secret_string"):
            return version
    return None


def _current_secret(account_id: str, user_name: str) -> dict[str, str] | None:
    """The AWSCURRENT value of the user's secret. Never print it, return it to a test, or put it in a message
    (pytest shows the values in a failed ``assert``)."""
    version = _current_version(account_id, user_name)
    return None if version is None else dict(json.loads(version["secret_string"]))


def delivered_key_id(account_id: str, user_name: str) -> str | None:
    """The key id the user's secret hands out (AWSCURRENT), if it was promoted there by a delivery.

    Secrets Manager labels a secret's first version AWSCURRENT by itself; until the product removes
    AWSPENDING from it (on delivery), that version is not a delivery.
    """
    version = _current_version(account_id, user_name)
    if version is None or PENDING in version.get("version_stages", []):
        return None
    key_id = json.loads(version["secret_string"]).get("AccessKeyId")  # None: the "nothing delivered yet" version
    return None if key_id is None else str(key_id)


def secret_key_id(account_id: str, user_name: str) -> str | None:
    """The key id in the AWSCURRENT version of the user's secret, delivered or not (key id only, never the secret)."""
    value = _current_secret(account_id, user_name)
    return None if value is None else value.get("AccessKeyId")


def snapshot(accounts: Iterable[str], ledger_table: str | None = None) -> Snapshot:
    taken = datetime.now(UTC)
    accounts = list(accounts)
    deliveries = _deliveries(ledger_table, accounts)
    users: dict[tuple[str, str], User] = {}
    for account_id in accounts:
        iam = iam_backends[account_id]["aws"]
        secrets = secretsmanager_backends[account_id][REGION].secrets
        for name, user in list(iam.users.items()):
            keys = {
                k.access_key_id: Key(k.access_key_id, k.status, k.create_date.replace(tzinfo=UTC))
                for k in user.access_keys
            }
            tags = {tag["Key"]: tag["Value"] for tag in iam.list_user_tags(name)}
            groups = frozenset(group.name for group in iam.get_groups_for_user(name))
            secret_key_id, matches, readable = None, False, False
            value = _current_secret(account_id, name) if delivered_key_id(account_id, name) else None
            if value is not None:
                secret_key_id = value.get("AccessKeyId")
                own = next((k for k in user.access_keys if k.access_key_id == secret_key_id), None)
                matches = own is not None and own.secret_access_key == value.get("SecretAccessKey")
                readable = _user_can_read(getattr(secrets[secret_name(account_id, name)], "policy", None), user.arn)
            value = None
            record = deliveries.get((account_id, name), {})
            since = record.get("pendingSince")
            users[(account_id, name)] = User(
                account_id=account_id,
                name=name,
                arn=user.arn,
                tags=tags,
                groups=groups,
                keys=keys,
                secret_key_id=secret_key_id,
                secret_matches=matches,
                secret_readable=readable,
                pending_key_id=record.get("pendingKeyId"),
                pending_since=datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None,
                delivered_key_id=record.get("deliveredKeyId"),
            )
    return Snapshot(taken=taken, users=users)


# -- what the functions did, and when ----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    started: datetime
    function: str  # logical id
    event: Mapping[str, Any]

    @property
    def account_id(self) -> str | None:
        return (self.event.get("account") or {}).get("id")

    @property
    def action(self) -> Mapping[str, Any]:
        return self.event.get("action") or {}


# -- the watch -----------------------------------------------------------------------------------------


@dataclass
class Watch:
    """Photographs the accounts before and after each run and checks the invariants between them.

    Keys present at :meth:`start`, and keys added with :meth:`add_hand_made_key`, are
    the users' own; every other key was made by the product.
    """

    stack: Stack
    accounts: list[str]
    schedule: Schedule = field(init=False)
    calls: list[Call] = field(default_factory=list)
    hand_made: set[str] = field(default_factory=set)
    delivered: set[str] = field(default_factory=set)  # every key id ever seen in AWSCURRENT
    disabled_by_product: dict[str, datetime] = field(default_factory=dict)  # key id -> latest it can have happened
    previous: Snapshot | None = None
    runs: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # rotated/disabled/deleted/blocked-survivals, for the tests
    first_seen_age: dict[str, timedelta] = field(default_factory=dict)  # key id -> its age at the first photograph
    reenabled_by_hand: dict[str, int] = field(default_factory=dict)  # key id -> how often a person re-enabled it
    reenable_found: dict[str, datetime] = field(default_factory=dict)  # key id -> audit of the run that found it
    _seen_calls: int = 0

    @property
    def last(self) -> Snapshot:
        """The latest photograph."""
        if self.previous is None:
            raise RuntimeError("call start() before the first run")
        return self.previous

    def __post_init__(self) -> None:
        self.schedule = Schedule.of(self.stack)
        self.stack.runtime.before_invoke.append(self._record)

    def _record(self, spec: FunctionSpec, event: dict[str, Any]) -> None:
        self.calls.append(Call(datetime.now(UTC), spec.logical_id, json.loads(json.dumps(event))))

    @property
    def ledger_table(self) -> str:
        return self.stack.outputs["LedgerTableName"]

    def photograph(self) -> Snapshot:
        return snapshot(self.accounts, self.ledger_table)

    def start(self) -> Snapshot:
        """The first photograph: every key that exists now is the user's own."""
        self.previous = self.photograph()
        for user in self.previous.users.values():
            self.hand_made.update(user.keys)
            if user.secret_key_id:
                self.delivered.add(user.secret_key_id)
        self._note_first_seen(self.previous)
        self._seen_calls = len(self.calls)
        return self.previous

    def add_hand_made_key(self, account_id: str, user_name: str, seed: KeySeed | None = None) -> str:
        """The user makes a key by hand between two runs; the next run is checked against a photograph with it."""
        key_id = add_key(self.stack.admin, account_id, user_name, seed or KeySeed(0))
        self.hand_made.add(key_id)
        if self.previous is not None:
            self.previous = self.photograph()
        return key_id

    def set_status_by_hand(self, account_id: str, user_name: str, key_id: str, status: str) -> None:
        """A person changes a key's status between runs (the next run is checked against the changed state)."""
        self.stack.admin.client("iam", account_id).update_access_key(UserName=user_name, AccessKeyId=key_id, Status=status)
        user = self.last.users[(account_id, user_name)]
        keys = dict(user.keys)
        keys[key_id] = replace(keys[key_id], status=status)
        users = dict(self.last.users)
        users[(account_id, user_name)] = replace(user, keys=keys)
        self.previous = replace(self.last, users=users)
        if status == "Active":
            self.reenabled_by_hand[key_id] = self.reenabled_by_hand.get(key_id, 0) + 1
            self.reenable_found.pop(key_id, None)

    def _note_first_seen(self, photo: Snapshot) -> None:
        for user in photo.users.values():
            for key in user.keys.values():
                self.first_seen_age.setdefault(key.key_id, photo.taken - key.created)

    def readable(self, user: User, key: Key) -> bool:
        return key.key_id in self.hand_made or key.key_id in self.delivered

    def holds_readable_active_key(self, user: User) -> bool:
        for key in user.keys.values():
            if not key.active:
                continue
            if key.key_id in self.hand_made:
                return True
            if key.key_id == user.secret_key_id and user.secret_matches and user.secret_readable:
                return True
        return False

    def after_run(self, run_id: str | None = None, settled: bool = True) -> list[str]:
        """Photograph now; return every broken invariant since the previous photograph (key ids only)."""
        prev, cur = self.last, self.photograph()
        calls = self.calls[self._seen_calls :]
        for user in cur.users.values():
            if user.secret_key_id and user.secret_key_id in user.keys:
                self.delivered.add(user.secret_key_id)
        audits = self._audits(calls)
        for where, user in prev.users.items():  # a run that audits a key a person re-enabled finds it
            for key_id in user.keys:
                if key_id in self.reenabled_by_hand and key_id not in self.reenable_found and where[0] in audits:
                    self.reenable_found[key_id] = audits[where[0]]
        problems = self._safety(prev, cur, calls)
        problems += self._taken_for_undelivered(cur, calls, run_id)
        if settled:
            problems += self._settled(prev, cur, calls, run_id)
        self._note_first_seen(cur)
        self.previous, self._seen_calls = cur, len(self.calls)
        self.runs += 1
        return problems

    def check(self, run_id: str | None = None, settled: bool = True, when: str = "") -> None:
        problems = self.after_run(run_id, settled)
        assert not problems, f"after run {run_id or '?'} {when}:\n" + "\n".join(problems)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- safety ---------------------------------------------------------------------------------------

    def _safety(self, prev: Snapshot, cur: Snapshot, calls: list[Call]) -> list[str]:
        s, problems = self.schedule, []
        for where, before in prev.users.items():
            after = cur.users.get(where)
            if after is None:
                continue
            label = before.key_label
            status = exemption(after.tags, after.groups, cur.taken.date(), s)
            if status is not None and (
                set(after.keys) != set(before.keys)
                or any(after.keys[k].status != before.keys[k].status for k in after.keys if k in before.keys)
            ):
                problems.append(f"{label}: keys changed although the user is {status}")
            if len(after.keys) > 2:
                problems.append(f"{label}: {len(after.keys)} keys ({', '.join(sorted(after.keys))})")
            if self.holds_readable_active_key(before) and not self.holds_readable_active_key(after):
                problems.append(f"{label}: held an Active key it can read before the run, holds none after")
            problems += self._secret_problems(after)
            current = before.newest_active(k for k in before.keys.values() if self.readable(before, k))

            for key_id, key in before.keys.items():
                readable = self.readable(before, key)
                if key_id not in after.keys:
                    problems += self._deleted(before, key, readable, current, calls)
                elif key.active and not after.keys[key_id].active:
                    problems += self._disabled(before, after, key, readable, calls, cur.taken)
                elif not key.active and after.keys[key_id].active:
                    problems.append(f"{label}: key {key_id} went from Inactive to Active during the run")

            new = [after.keys[k] for k in after.keys if k not in before.keys and k not in self.hand_made]
            for key in new:
                problems += self._created(before, after, key, current, calls)
        return problems

    def _taken_for_undelivered(self, cur: Snapshot, calls: list[Call], run_id: str | None) -> list[str]:
        """Keys the product treated as its own undelivered key although it did not create them (key ids only)."""
        claims = {
            (
                call.account_id,
                call.action.get("userName"),
                (call.event.get("created") or {}).get("newKeyId"),
                "discarded",
            )
            for call in calls
            if call.function == "DiscardNewKeyFunction"
        }
        if run_id is not None:
            for item in ledger_items(self.ledger_table, f"RUN#{run_id}"):
                acted = item.get("status") in ("applying", "done")
                if item.get("kind") == "action" and item.get("undelivered") and acted:
                    claims.add(
                        (item["accountId"], item["userName"], item["keyId"], f"{item['type']} ({item['status']})")
                    )
        problems = [
            f"{account}/{user}: key {key_id} was made by the user, yet the product took it for its undelivered key "
            f"({how})"
            for account, user, key_id, how in sorted(claims, key=str)
            if key_id in self.hand_made
        ]
        for user in cur.users.values():
            if user.pending_key_id in self.hand_made:
                problems.append(f"{user.key_label}: the ledger records the user's own key {user.pending_key_id} as new")
        return problems

    def _secret_problems(self, user: User) -> list[str]:
        if user.secret_key_id is None:
            return []
        label, problems = user.key_label, []
        held = user.keys.get(user.secret_key_id)
        current = user.newest_active(user.keys.values())
        own_current = current is not None and current.key_id in self.hand_made
        if held is None or not held.active:
            if not own_current:
                state = "no longer exists" if held is None else "is Inactive"
                problems.append(f"{label}: the secret holds key {user.secret_key_id}, which {state}")
        elif not user.secret_matches:
            problems.append(f"{label}: the secret holds key {user.secret_key_id} with a secret that is not the key's")
        if not user.secret_readable:
            problems.append(f"{label}: the secret's policy does not let the user read it")
        return problems

    def _lower_bound(
        self, calls: list[Call], function: str, user: User, key_id: str, kind: str | None = None
    ) -> datetime | None:
        """When ``function`` was first called for ``kind`` of ``key_id`` (a planned action on the key)."""
        starts = [
            call.started
            for call in calls
            if call.function == function
            and call.account_id == user.account_id
            and call.action.get("userName") == user.name
            and call.action.get("keyId") == key_id
            and (kind is None or call.action.get("type") == kind)
        ]
        return min(starts) if starts else None

    def _deleted(self, before: User, key: Key, readable: bool, current: Key | None, calls: list[Call]) -> list[str]:
        s, label = self.schedule, before.key_label
        if not readable:
            return []  # an undelivered key: nobody held its secret; discarding it is the point
        if key.active:
            return [f"{label}: Active key {key.key_id} was deleted"]
        self._count("deleted")
        when = self._lower_bound(calls, "DeleteKeyFunction", before, key.key_id, "delete")
        if when is None:
            return [f"{label}: key {key.key_id} was deleted with no DeleteKey action for it"]
        problems, early = [], s.interval
        if when < key.created + s.D - early:
            problems.append(f"{label}: key {key.key_id} deleted before the last run before it was D days old")
        if current is not None and current.created > key.created and when < current.created + (s.D - s.R) - early:
            problems.append(
                f"{label}: key {key.key_id} deleted less than D-R days after its replacement {current.key_id}"
            )
        disabled = self.disabled_by_product.get(key.key_id)
        if disabled is not None and when < start_of_day(disabled) + (s.D - s.I):
            problems.append(
                f"{label}: key {key.key_id} deleted less than D-I days after the day the product disabled it"
            )
        return problems

    def _disabled(
        self, before: User, after: User, key: Key, readable: bool, calls: list[Call], upper: datetime
    ) -> list[str]:
        s, label = self.schedule, before.key_label
        if not readable:
            return []  # an undelivered key, disabled on its way to deletion
        self._count("disabled")
        self.disabled_by_product[key.key_id] = upper
        when = self._lower_bound(calls, "DisableKeyFunction", before, key.key_id, "disable")
        if when is None:
            return [f"{label}: key {key.key_id} was disabled with no DisableKey action for it"]
        replacement = after.newest_active(k for k in after.keys.values() if self.readable(after, k))
        problems, early = [], s.interval
        if replacement is None or replacement.created <= key.created:
            problems.append(f"{label}: key {key.key_id} was disabled with no newer Active key to replace it")
        elif when < replacement.created + (s.I - s.R) - early:
            problems.append(
                f"{label}: key {key.key_id} disabled less than I-R days (less a run interval) after its "
                f"replacement {replacement.key_id}"
            )
        if when < key.created + s.I - early:
            problems.append(f"{label}: key {key.key_id} disabled before the last run before it was I days old")
        honoured = self._honoured_until(key.key_id)
        if honoured is not None and when < honoured:
            problems.append(f"{label}: key {key.key_id} disabled while a person's re-enable of it was honoured")
        return problems

    def _created(self, before: User, after: User, key: Key, current: Key | None, calls: list[Call]) -> list[str]:
        s, label = self.schedule, before.key_label
        if current is None:
            return [f"{label}: key {key.key_id} was created for a user with no Active key to replace"]
        when = self._lower_bound(calls, "CreateKeyFunction", before, current.key_id, "rotate")
        if when is None:
            return [f"{label}: key {key.key_id} appeared with no CreateKey action for the current key {current.key_id}"]
        self._count("rotated")
        problems = []
        if when < current.created + s.R - s.interval:
            problems.append(f"{label}: key {current.key_id} replaced before the last run before it was R days old")
        left = set(after.keys) - {key.key_id, current.key_id}
        if left:
            problems.append(f"{label}: key {key.key_id} was created while keys {sorted(left)} were still there")
        return problems

    # -- settled ------------------------------------------------------------------------------------------

    @staticmethod
    def _audits(calls: list[Call]) -> dict[str, datetime]:
        """The start of the latest audit of each account among ``calls``."""
        audits: dict[str, datetime] = {}
        for call in calls:
            if call.function == "AuditKeysFunction" and call.account_id:
                audits[call.account_id] = max(audits.get(call.account_id, call.started), call.started)
        return audits

    def _settled(self, prev: Snapshot, cur: Snapshot, calls: list[Call], run_id: str | None) -> list[str]:
        s, problems = self.schedule, []
        audits = self._audits(calls)
        notices = self._blocked_notices(run_id)
        for where, after in cur.users.items():
            label = after.key_label
            if after.pending_key_id or after.pending_since:
                problems.append(
                    f"{label}: the ledger still holds an unfinished rotation (pending key {after.pending_key_id})"
                )
            for key in after.keys.values():
                if not self.readable(after, key):
                    problems.append(f"{label}: key {key.key_id} was made by the product and never delivered")
            before = prev.users.get(where)
            audited = audits.get(after.account_id)
            if before is None or audited is None:
                continue
            status = exemption(after.tags, after.groups, audited.date(), s)
            if status is not None:
                continue
            blocked = (after.account_id, after.name) in notices
            problems += self._stale(after, audited, blocked)
            problems += self._due(before, after, audited, blocked)
        return problems

    def _blocked_notices(self, run_id: str | None) -> set[tuple[str, str]]:
        if run_id is None:
            return set()
        found = set()
        for item in ledger_items(self.ledger_table, f"RUN#{run_id}"):
            if item.get("kind") == "notice" and item.get("type") == "blocked":
                found.add((item["accountId"], item["userName"]))
        return found

    def _stale(self, user: User, audited: datetime, blocked: bool) -> list[str]:
        """No Active key older than I remains, but for the documented exceptions."""
        s, problems = self.schedule, []
        readable = [k for k in user.keys.values() if self.readable(user, k)]
        for key in user.keys.values():
            if not key.active or audited - key.created < s.I - s.interval:
                continue
            newer = user.newest_active(k for k in readable if k.created > key.created)
            if newer is not None and audited < max(key.created + s.I, newer.created + (s.I - s.R)) - s.interval:
                continue  # an old key inside its grace period
            if newer is not None and self._honours(key.key_id, audited):
                continue  # a person re-enabled it: honoured for D-I days
            if newer is None and blocked and len(user.keys) == 2:
                self._count("blocked-survivals")
                continue  # the current key, whose rotation waits for the second slot (announced)
            problems.append(f"{user.key_label}: Active key {key.key_id} is older than I days after the run")
        return problems

    def _due(self, before: User, after: User, audited: datetime, blocked: bool) -> list[str]:
        """Every action whose date had come at the audit was carried out (or, for a rotation, announced blocked)."""
        s, label, problems, early = self.schedule, before.key_label, [], self.schedule.interval
        readable = [k for k in before.keys.values() if self.readable(before, k)]
        current = before.newest_active(readable)
        for key in before.keys.values():
            if key not in readable:
                if key.key_id in after.keys:
                    problems.append(f"{label}: undelivered key {key.key_id} was not discarded")
                continue
            if key.active and current is not None and current.created > key.created:
                if (
                    audited >= max(key.created + s.I, current.created + (s.I - s.R)) - early
                    and after.keys.get(key.key_id, key).active
                    and not self._honours(key.key_id, audited)
                ):
                    problems.append(f"{label}: key {key.key_id} was due to be disabled and is still Active")
            elif not key.active:
                due = key.created + s.D
                if current is not None and current.created > key.created:
                    due = max(due, current.created + (s.D - s.R))
                due -= early
                disabled = self.disabled_by_product.get(key.key_id)
                if disabled is not None:
                    due = max(due, start_of_day(disabled) + (s.D - s.I))
                if audited >= due and key.key_id in after.keys:
                    problems.append(f"{label}: key {key.key_id} was due to be deleted and is still there")
        if current is not None and audited >= current.created + s.R - early:
            rotated = any(k not in before.keys and k not in self.hand_made for k in after.keys)
            if not rotated and not blocked:
                problems.append(
                    f"{label}: key {current.key_id} was due for rotation; neither rotated nor announced blocked"
                )
        return problems

    # -- compliance -----------------------------------------------------------------------------------------

    def compliance_problems(self, run_id: str) -> list[str]:
        """What Prowler would report on the latest photograph, less the lifecycle's exceptions (module docstring)."""
        s, photo, problems = self.schedule, self.last, []
        blocked = self._blocked_notices(run_id)
        for user in photo.users.values():
            if exemption(user.tags, user.groups, photo.taken.date(), s) is not None:
                continue
            active = sorted((k for k in user.keys.values() if k.active), key=lambda k: (k.created, k.key_id))
            for key in active:
                age = photo.taken - key.created
                if age < CIS_MAX_KEY_AGE or (user.account_id, user.name) in blocked or self._honoured(key, photo):
                    continue
                newer = [k for k in active if (k.created, k.key_id) > (key.created, key.key_id)]
                late = newer and newer[-1].created - key.created >= s.R
                if late and photo.taken < newer[-1].created + (s.I - s.R):
                    continue  # replaced late: the old key keeps its I-R days of grace
                problems.append(f"{user.key_label}: Active key {key.key_id} is {age} old after the run")
            if len(active) == 2:
                older, newer_key = active
                waits = photo.taken < max(older.created + s.I, newer_key.created + (s.I - s.R))
                if not waits and not self._honoured(older, photo):
                    problems.append(
                        f"{user.key_label}: two Active keys ({older.key_id}, {newer_key.key_id}) after the older "
                        "one's disable date"
                    )
        return problems

    def _honoured(self, key: Key, photo: Snapshot) -> bool:
        return self._honours(key.key_id, photo.taken)

    def _honours(self, key_id: str, at: datetime) -> bool:
        """Whether a person's re-enable of the key is honoured at ``at``."""
        until = self._honoured_until(key_id)
        return until is not None and at < until

    def _honoured_until(self, key_id: str) -> datetime | None:
        """A person's first re-enable of a key is honoured for D-I days from the day of the run that found it."""
        found = self.reenable_found.get(key_id)
        if found is None or self.reenabled_by_hand.get(key_id) != 1:
            return None  # not found yet, or re-enabled a second time: not honoured
        return start_of_day(found) + (self.schedule.D - self.schedule.I)


# -- the end state the fault tests ask for ------------------------------------------------------------


def working_delivered_key_problems(account_id: str, user_name: str, verify_with_sts: bool = True) -> list[str]:
    """The user's secret holds an Active key of theirs whose secret is the key's own, and AWS accepts it.

    The key is used to sign STS GetCallerIdentity; the caller must be the user. Key ids only in the answer.
    """
    label = f"{account_id}/{user_name}"
    iam = iam_backends[account_id]["aws"]
    user = iam.users.get(user_name)
    if user is None:
        return [f"{label}: no such user"]
    if delivered_key_id(account_id, user_name) is None:
        return [f"{label}: no key was delivered to the secret (no AWSCURRENT version without AWSPENDING)"]
    value = _current_secret(account_id, user_name) or {}
    key_id = value.get("AccessKeyId")
    own = next((k for k in user.access_keys if k.access_key_id == key_id), None)
    problems = []
    if own is None:
        problems.append(f"{label}: the secret holds key {key_id}, which is not one of the user's keys")
    elif own.status != "Active":
        problems.append(f"{label}: the secret holds key {key_id}, which is {own.status}")
    elif own.secret_access_key != value.get("SecretAccessKey"):
        problems.append(f"{label}: the secret holds key {key_id} with a secret that is not the key's")
    elif verify_with_sts:
        caller = boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=value["SecretAccessKey"],
        ).get_caller_identity()["Arn"]
        if caller != user.arn:
            problems.append(f"{label}: key {key_id} signs as {caller}, not as the user")
    value = {}
    return problems


def orphan_problems(watch: Watch) -> list[str]:
    """Keys nobody can use that are not an old key in its grace period, and intents left in the ledger."""
    problems = []
    for user in watch.photograph().users.values():
        label = user.key_label
        if user.pending_key_id or user.pending_since:
            problems.append(
                f"{label}: the ledger still holds an unfinished rotation (pending key {user.pending_key_id})"
            )
        for key in user.keys.values():
            if key.key_id == user.secret_key_id or key.key_id in watch.hand_made:
                continue
            if key.key_id not in watch.delivered:
                problems.append(f"{label}: key {key.key_id} is held by no secret and was never delivered")
            elif (
                user.secret_key_id
                and user.secret_key_id in user.keys
                and user.keys[user.secret_key_id].created < key.created
            ):
                problems.append(f"{label}: key {key.key_id} is newer than the delivered key {user.secret_key_id}")
    return problems


# -- faults the tests inject -----------------------------------------------------------------------------


class ProcessDied(BaseException):
    """The Lambda process was killed mid-call: not an ``Exception``, so no ``except Exception`` cleanup runs."""


def running(stack: Stack, logical_id: str) -> bool:
    """Whether the call being made comes from inside that function (the runtime sets its name in the environment)."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") == stack.functions[logical_id].name


def nth_call_in(
    stack: Stack,
    logical_id: str,
    nth: int = 1,
    also: Callable[[dict[str, Any]], bool] | None = None,
    then: Callable[[], None] | None = None,
) -> Callable[[dict[str, Any]], bool]:
    """A ``faults.add`` ``when``: true for the ``nth`` matching call made from inside the function (``then`` runs instead
    of returning, e.g. to raise :class:`ProcessDied`)."""
    seen = [0]

    def when(params: dict[str, Any]) -> bool:
        if not running(stack, logical_id) or (also is not None and not also(params)):
            return False
        seen[0] += 1
        if seen[0] != nth:
            return False
        if then is not None:
            then()
        return True

    return when


def kill_at(aws: LocalAws, stack: Stack, logical_id: str, service: str, operation: str, nth: int = 1) -> None:
    """The function's process dies as it makes its ``nth`` ``service`` ``operation`` call."""

    def die() -> None:
        raise ProcessDied(f"{logical_id} killed at {service} {operation}")

    aws.faults.add(service, operation, "ProcessDied", times=1, when=nth_call_in(stack, logical_id, nth, then=die))


def report_crashes_as_lambda_does(monkeypatch: Any, runtime: LambdaRuntime) -> None:
    """Lambda's runtime answers for a process that died: an unhandled ``Runtime.ExitError``.

    (The in-process runtime catches ``Exception`` only; without this a killed handler would take the
    state machine's worker thread down with it.)
    """
    original = runtime.invoke

    def invoke(spec: FunctionSpec, event: dict[str, Any]) -> tuple[Any, tuple[str, str] | None]:
        try:
            return original(spec, event)
        except ProcessDied:
            error = ("Runtime.ExitError", "Error: Runtime exited with error: signal: killed")
            for record in reversed(runtime.invocations):
                if record.event is event:
                    record.error = error
                    break
            return None, error

    monkeypatch.setattr(runtime, "invoke", invoke)


@dataclass
class Pause:
    """Holds one function invocation of one run at its start, letting every other execution go on meanwhile
    (invocations run concurrently, each in an execution environment of its own)."""

    function: str
    run_id: str
    user: str | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)

    def __call__(self, spec: FunctionSpec, event: dict[str, Any]) -> None:
        if spec.logical_id != self.function or (event.get("run") or {}).get("runId") != self.run_id:
            return
        if self.user is not None and (event.get("action") or {}).get("userName") != self.user:
            return
        if self.reached.is_set():
            return
        self.reached.set()
        self.resume.wait(timeout=120)


def spy(aws: LocalAws, service: str, operation: str) -> list[dict[str, Any]]:
    """The parameters of every ``service`` ``operation`` call that reaches moto from now on (after the faults
    added before this spy). Never used for calls whose parameters hold a secret."""
    seen: list[dict[str, Any]] = []

    def when(params: dict[str, Any]) -> bool:
        seen.append(dict(params))
        return False

    aws.faults.add(service, operation, "Spy", times=10**9, when=when)
    return seen
