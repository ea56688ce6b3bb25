"""The ledger: one DynamoDB table that is both the run record and the audit trail.

Several families of items share the table (``pk``/``sk`` strings):

============================  ====================================================  ======================
pk                            sk                                                    what
============================  ====================================================  ======================
``RUN#<runId>``               ``ACCOUNT#<accountId>``                               the account's result
``RUN#<runId>``               ``ACCOUNT#<accountId>#ACTION#<user>#<keyId>#<type>``  one key action
``RUN#<runId>``               ``ACCOUNT#<accountId>#NOTICE#<user>#<keyId>#<kind>``  a warning, exemption...
``RUN#<runId>``               ``ACCOUNT#<accountId>#EMAIL#<recipient>``             one email sent or not
``RUN#<runId>``               ``ACCOUNT#<accountId>#OVERDUE``                       Active keys over 90 days
``RUN#<runId>``               ``ACCOUNT#<accountId>#OWED#<user>``                   notices owed from earlier runs
``RUN#<runId>``               ``REPLAY``                                            the run's failed accounts
``RUN#<runId>``               ``RUN``                                               which execution is the run
``PLAN#<runId>#<accountId>``  ``ACTION#<n>``                                        one planned action
``DELIVERY#<accountId>``      ``USER#<userName>``                                   what the user was given
``PREVIEW#<accountId>``       ``RECIPIENT#<recipient>``                             the last preview mailed
============================  ====================================================  ======================

Every item has a ``kind`` (:class:`~keyrotation.ledger_records.RecordKind`, the one list of them).
An action item's ``status`` is an :class:`~keyrotation.ledger_records.ActionStatus`, an account
result's an :class:`~keyrotation.ledger_records.AccountStatus`: the state machine writes ``failed``
and ``SUCCEEDED``/``FAILED`` with these very values
(tests/test_ledger_layout.py checks the ASL against this module and :mod:`keyrotation.naming`).

A run id is the execution's name, or ``<name>@<start time>`` when an earlier
execution had that name (Step Functions accepts a name again 90 days after its
execution closed; run items live longer): see :meth:`Ledger.claim_run`. The
``RUN`` item that records which execution holds a run id never expires.

Run items expire (``expiresAt``, a DynamoDB TTL attribute) after
:data:`RUN_RETENTION_DAYS`; delivery items live as long as the user's keys.
No item ever holds a secret access key. Readers take a run's items as typed records
(:meth:`Ledger.run_records`, :mod:`keyrotation.ledger_records`), never as the stored dicts.

A run's plan for an account is under ``PLAN#<runId>#<accountId>``: one item per
planned action, sort key ``ACTION#<n>`` (n from 0, in the order they must run),
read one at a time by the state machine; it expires as run items do.

A digest SES did not take is owed: each user it was about gets the run's id in
the ``owedRuns`` set of its delivery item, until a later digest to that user's
person is delivered (:meth:`Ledger.record_undelivered`, :meth:`Ledger.forget_owed`).
The audit copies the set into its run (an ``owed`` item per user) and notify
sends again what those runs did that no later run says again.

A delivery item names the user it was written for (``userId``, IAM's unique
id), since IAM gives a deleted user's name to the next user made with it. The
actions write it on every change; a change for another user id than the
item's first forgets what the item said about the earlier user (see
:data:`USER_FACTS`). Reading applies :meth:`~keyrotation.model.Delivery.for_user`.

Example:
    >>> ledger = Ledger("my-ledger-table")                                # doctest: +SKIP
    >>> ledger.run_records("run-1")                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from keyrotation import clock, naming
from keyrotation.aws import client, error_code, translate_errors
from keyrotation.errors import InvalidInput, Throttled
from keyrotation.ledger_records import OWNER_NOT_TOLD as OWNER_NOT_TOLD  # the vocabulary of the items, as before
from keyrotation.ledger_records import AccountStatus as AccountStatus
from keyrotation.ledger_records import ActionStatus as ActionStatus
from keyrotation.ledger_records import RecordKind as RecordKind
from keyrotation.ledger_records import RunRecord, run_records
from keyrotation.model import Action, Delivery, Notice
from keyrotation.paging import items
from keyrotation.triage import Quiet

RUN_RETENTION_DAYS = 400
#: The sort key of a run's replay item (its failed accounts).
REPLAY_SK = "REPLAY"
#: The sort key of a run's identity item: the execution (name, start time) the run id belongs to.
RUN_SK = "RUN"
#: The attribute of a delivery item holding the ids of the runs whose digest about the user was not delivered.
OWED_RUNS = "owedRuns"
#: What a delivery item says about its user rather than about a key (key ids are never reused by IAM).
USER_FACTS = (
    "deliveredKeyId",
    "deliveredAt",
    "secretArn",
    "secretToken",
    "secretPolicy",
    "pendingKeyId",
    "pendingSince",
    "pendingRunId",
    "quietUntil",
    "quietKeys",
    "quietBasis",
)
_BATCH_SIZE = 25  # BatchWriteItem's limit
_BATCH_ATTEMPTS = 5


#: Statuses of an action item that record what the run did; a later "skipped" never replaces them.
CARRIED_OUT = (ActionStatus.CREATED, ActionStatus.DONE, ActionStatus.DISCARDED)


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


@dataclass(frozen=True)
class AccountRecords:
    """An account's delivery items: each user's (record, quiet mark), and the runs still owed to each user's person."""

    users: dict[str, tuple[Delivery, Quiet | None]]
    owed: dict[str, frozenset[str]]


class Ledger:
    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._db = dynamodb or client("dynamodb")

    # -- run records ---------------------------------------------------------------------

    def claim_run(self, name: str, start_time: str) -> str:
        """The run id of the execution named ``name`` that started at ``start_time``, unique for ever.

        The name itself, unless an earlier execution of that name holds it (or left run items from before
        the ``RUN`` item existed): then ``<name>@<start time>``. The same execution asking again (a retried
        ListAccounts) gets the same id.
        """
        if self._claim(name, name, start_time, first_use=True):
            return name
        run_id = f"{name}@{_start_stamp(start_time)}"
        if not self._claim(run_id, name, start_time, first_use=False):
            raise InvalidInput(f"run id {run_id!r} is held by another execution")
        return run_id

    def _claim(self, run_id: str, name: str, start_time: str, first_use: bool) -> bool:
        key = _to_item({"pk": naming.run_pk(run_id), "sk": RUN_SK})
        with translate_errors():
            found = self._db.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        if found is not None:
            return bool(_from_item(found).get("startTime") == start_time)
        if first_use and self._has_items(naming.run_pk(run_id)):
            return False  # a run recorded before runs were claimed
        item = {"pk": naming.run_pk(run_id), "sk": RUN_SK, "kind": RecordKind.RUN.value, "executionName": name}
        item.update({"startTime": start_time, "claimedAt": clock.to_iso(clock.now())})
        try:
            with translate_errors():
                self._db.put_item(
                    TableName=self.table_name,
                    Item=_to_item(item),
                    ConditionExpression="attribute_not_exists(pk) OR startTime = :start",
                    ExpressionAttributeValues=_to_item({":start": start_time}),
                )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return False  # another execution took it in the meantime
        return True

    def _has_items(self, pk: str) -> bool:
        with translate_errors():
            response = self._db.query(
                TableName=self.table_name,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=_to_item({":pk": pk}),
                Limit=1,
                ConsistentRead=True,
            )
        return bool(response.get("Items"))

    def record_action(
        self, run_id: str, account_id: str, action: Action, *, status: ActionStatus, **fields: Any
    ) -> None:
        """Create or update the item of one key action, with its ``status``.

        A retried step finds its own work done and reports ``skipped``; that must not erase the record of
        the work, so a ``skipped`` status is only written over none, ``planned`` or ``skipped``.
        """
        sk = naming.action_sk(account_id, action.user_name, action.key_id, action.type.value)
        status = ActionStatus(status)
        values: dict[str, Any] = {"accountId": account_id, "kind": RecordKind.ACTION.value, **action.to_json()}
        values["status"] = status.value
        kept = [carried.value for carried in CARRIED_OUT] if status is ActionStatus.SKIPPED else []
        values.update(fields)
        self._update(naming.run_pk(run_id), sk, values, unless_status=kept)

    def complete_applying(self, run_id: str, account_id: str, action: Action) -> bool:
        """Mark ``done`` an action this run was applying (its IAM change was made, the step then failed).

        Returns False, changing nothing, when the action is not in the ``applying`` state.
        """
        sk = naming.action_sk(account_id, action.user_name, action.key_id, action.type.value)
        try:
            with translate_errors():
                self._db.update_item(
                    TableName=self.table_name,
                    Key=_to_item({"pk": naming.run_pk(run_id), "sk": sk}),
                    UpdateExpression="SET #status = :done, updatedAt = :now",
                    ConditionExpression="#status = :applying",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_to_item(
                        {
                            ":done": ActionStatus.DONE.value,
                            ":applying": ActionStatus.APPLYING.value,
                            ":now": clock.to_iso(clock.now()),
                        }
                    ),
                )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_notice(self, run_id: str, account_id: str, notice: Notice, **fields: Any) -> None:
        sk = naming.notice_sk(account_id, notice.user_name, notice.key_id, notice.kind.value)
        values = {
            "accountId": account_id,
            "kind": RecordKind.NOTICE.value,
            "type": notice.kind.value,
            "userName": notice.user_name,
            "keyId": notice.key_id,
            "detail": notice.detail,
            "due": clock.to_iso(notice.due) if notice.due else None,
            **fields,
        }
        self._update(naming.run_pk(run_id), sk, values)

    def record_email(self, run_id: str, account_id: str, recipient: str, **fields: Any) -> None:
        values = {"accountId": account_id, "kind": RecordKind.EMAIL.value, "recipient": recipient, **fields}
        self._update(naming.run_pk(run_id), naming.email_sk(account_id, recipient), values)

    def record_overdue(self, run_id: str, account_id: str, key_ids: Iterable[str], unread: int = 0) -> None:
        """The account's Active keys older than 90 days as the run's audit found them (CIS 1.14).

        ``key_ids``: those of the users the audit read in full; ``unread``: how many more the credential
        report shows in the users it did not read (the report has no key ids). Nothing is written when
        there are none, so that an audit with nothing due writes nothing (no item counts as none).
        """
        ids = sorted(key_ids)
        if not ids and not unread:
            return
        values = {"accountId": account_id, "kind": RecordKind.OVERDUE.value, "keyIds": ids, "unread": unread}
        self._update(naming.run_pk(run_id), naming.overdue_sk(account_id), values)

    # -- dry-run previews ----------------------------------------------------------------

    def preview_fingerprint(self, account_id: str, recipient: str) -> str | None:
        """The fingerprint of the last preview mailed to ``recipient`` about the account, or None."""
        with translate_errors():
            response = self._db.get_item(
                TableName=self.table_name,
                Key=_to_item({"pk": naming.preview_pk(account_id), "sk": naming.preview_sk(recipient)}),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return str(_from_item(item).get("fingerprint")) if item else None

    def record_preview(self, account_id: str, recipient: str, fingerprint: str, run_id: str) -> None:
        """Remember what the preview just mailed to ``recipient`` said, so the same one is not mailed again."""
        values = {"kind": RecordKind.PREVIEW.value, "fingerprint": fingerprint, "runId": run_id}
        self._update(naming.preview_pk(account_id), naming.preview_sk(recipient), values)

    def record_replay(self, run_id: str, account_ids: Iterable[str]) -> None:
        """The run's failed accounts, which a ``{"replayOf": run_id}`` input runs again."""
        values = {"kind": RecordKind.REPLAY.value, "accounts": list(account_ids)}
        self._update(naming.run_pk(run_id), REPLAY_SK, values)

    def replay_accounts(self, run_id: str) -> list[str] | None:
        """The failed accounts recorded for ``run_id``, or None when the ledger has none."""
        with translate_errors():
            response = self._db.get_item(
                TableName=self.table_name,
                Key=_to_item({"pk": naming.run_pk(run_id), "sk": REPLAY_SK}),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return [str(account) for account in _from_item(item).get("accounts", [])] if item else None

    def run_records(self, run_id: str, account_id: str | None = None) -> list[RunRecord]:
        """The records of a run (:mod:`keyrotation.ledger_records`), or of one account in that run."""
        return run_records(self.run_items(run_id, account_id))

    def run_items(self, run_id: str, account_id: str | None = None) -> list[dict[str, Any]]:
        """Every item of a run, or of one account in that run, as stored (readers take :meth:`run_records`)."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": naming.run_pk(run_id)}
        if account_id is not None:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = naming.account_sk(account_id)
        return [
            _from_item(item)
            for item in items(
                self._db,
                "query",
                "Items",
                TableName=self.table_name,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=_to_item(values),
                ConsistentRead=True,
            )
        ]

    # -- delivery records ----------------------------------------------------------------

    def user_records(self, account_id: str) -> dict[str, tuple[Delivery, Quiet | None]]:
        """Each user's delivery record and quiet mark (:class:`~keyrotation.triage.Quiet`), by user name."""
        return self.account_records(account_id).users

    def account_records(self, account_id: str) -> AccountRecords:
        """The account's delivery items, read once: each user's record and quiet mark, and what is owed."""
        found = items(
            self._db,
            "query",
            "Items",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_to_item({":pk": naming.delivery_pk(account_id)}),
            ConsistentRead=True,
        )
        records = [_from_item(item) for item in found]
        return AccountRecords(
            users={record["userName"]: (_delivery(record), _quiet(record)) for record in records},
            owed={
                record["userName"]: frozenset(str(run) for run in record[OWED_RUNS])
                for record in records
                if record.get(OWED_RUNS)
            },
        )

    def record_undelivered(self, account_id: str, user_name: str, run_id: str) -> None:
        """The digest of ``run_id`` about ``user_name`` did not reach its person: later runs send it again."""
        self._add_to_set(account_id, user_name, OWED_RUNS, {run_id})

    def forget_owed(self, account_id: str, user_name: str, run_ids: Iterable[str]) -> None:
        """A digest about ``user_name`` was delivered: what ``run_ids`` owed its person has been told."""
        entries = sorted(set(run_ids))
        if not entries:
            return
        try:
            with translate_errors():
                self._db.update_item(
                    TableName=self.table_name,
                    Key=_to_item({"pk": naming.delivery_pk(account_id), "sk": naming.delivery_sk(user_name)}),
                    UpdateExpression="DELETE #set :entries",
                    ConditionExpression="attribute_exists(#set)",  # never makes an item of its own
                    ExpressionAttributeNames={"#set": OWED_RUNS},
                    ExpressionAttributeValues={":entries": {"SS": entries}},
                )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # Nothing is owed to this user: nothing to forget.

    def record_owed(self, run_id: str, account_id: str, user_name: str, owed_runs: Iterable[str]) -> None:
        """In the run: the earlier runs whose notices to ``user_name``'s person are still owed (notify reads it)."""
        values = {
            "accountId": account_id,
            "kind": RecordKind.OWED.value,
            "userName": user_name,
            "runs": sorted(owed_runs),
        }
        self._update(naming.run_pk(run_id), naming.owed_sk(account_id, user_name), values)

    def record_quiet(self, account_id: str, user_name: str, user_id: str, quiet: Quiet) -> None:
        """Remember that a full reading of the user found nothing to do or say before ``quiet.until``."""
        values = {"quietUntil": clock.to_iso(quiet.until), "quietKeys": quiet.keys, "quietBasis": quiet.basis}
        self._update_delivery(account_id, user_name, user_id, values)

    def record_plan(self, run_id: str, account_id: str, actions: Sequence[Action]) -> None:
        """The account's planned actions, one item each, numbered from 0 in the order they must run.

        The state machine fetches them one at a time (``GetItem`` of ``naming.plan_sk(n)``), so the plan
        never travels in its state. Each item names the next one's number (``next``).
        """
        expires = int((clock.now() + clock.days(RUN_RETENTION_DAYS)).timestamp())
        requests = [
            {
                "PutRequest": {
                    "Item": _to_item(
                        {
                            "pk": naming.plan_pk(run_id, account_id),
                            "sk": naming.plan_sk(index),
                            "kind": RecordKind.PLAN.value,
                            **action.to_json(),
                            "next": index + 1,
                            "expiresAt": expires,
                        }
                    )
                }
            }
            for index, action in enumerate(actions)
        ]
        for start in range(0, len(requests), _BATCH_SIZE):
            self._batch_write(requests[start : start + _BATCH_SIZE])

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for _ in range(_BATCH_ATTEMPTS):
            with translate_errors():
                response = self._db.batch_write_item(RequestItems={self.table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not requests:
                return
        raise Throttled(f"{len(requests)} plan items left unwritten by BatchWriteItem")

    def delivery(self, account_id: str, user_name: str, user_id: str = "") -> Delivery:
        """What the product did for the user named ``user_name`` whose IAM unique id is ``user_id``."""
        with translate_errors():
            response = self._db.get_item(
                TableName=self.table_name,
                Key=_to_item({"pk": naming.delivery_pk(account_id), "sk": naming.delivery_sk(user_name)}),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return (_delivery(_from_item(item)) if item else Delivery()).for_user(user_id)

    def record_intent(
        self,
        account_id: str,
        user_name: str,
        user_id: str,
        run_id: str,
        secret_arn: str | None = None,
        secret_token: str | None = None,
    ) -> None:
        """Written just before CreateAccessKey (and before the user's secret is created, if it must be).

        ``secret_token``: the secret is about to be created with this token; ``secret_arn``: the user's
        secret, already bound to the user (recorded again when it was found by its token).
        """
        values: dict[str, Any] = {"pendingSince": clock.to_iso(clock.now()), "pendingRunId": run_id}
        removed = ["pendingKeyId"]
        if secret_token is not None:
            values["secretToken"] = secret_token
            removed += ["secretArn", "secretPolicy"]
        if secret_arn is not None:
            values["secretArn"] = secret_arn
        self._update_delivery(account_id, user_name, user_id, values, remove=removed)

    def record_created(
        self,
        account_id: str,
        user_name: str,
        user_id: str,
        key_id: str,
        secret_arn: str,
        secret_policy: str | None = None,
    ) -> None:
        """The new key's id, written as soon as CreateAccessKey answered: the proof that the product made it.

        ``secret_policy``: the digest of the user-only policy the secret has (applied before CreateAccessKey).
        """
        values = {"pendingKeyId": key_id, "secretArn": secret_arn, "secretPolicy": secret_policy}
        self._update_delivery(account_id, user_name, user_id, values)

    def record_delivered(
        self,
        account_id: str,
        user_name: str,
        user_id: str,
        key_id: str,
        secret_arn: str,
        and_action: tuple[str, Action, dict[str, Any]] | None = None,
    ) -> None:
        """The user's secret now holds ``key_id``.

        ``and_action``: (run id, action, fields) of the run's action item, written in the same call.
        """
        values = {"deliveredKeyId": key_id, "deliveredAt": clock.to_iso(clock.now()), "secretArn": secret_arn}
        removed = ("pendingKeyId", "pendingSince", "pendingRunId")
        self._update_delivery(account_id, user_name, user_id, values, remove=removed, and_action=and_action)

    def clear_pending(self, account_id: str, user_name: str, user_id: str, forget_secret_policy: bool = False) -> None:
        """The rotation made no key, or its key is gone (discarded, or deleted by the function that created it).

        ``forget_secret_policy``: the next rotation reads the user's secret again, and applies its policy again.
        """
        removed = ["pendingKeyId", "pendingSince", "pendingRunId"] + (["secretPolicy"] if forget_secret_policy else [])
        self._update_delivery(account_id, user_name, user_id, {}, remove=removed)

    def record_disabled(self, account_id: str, user_name: str, key_id: str) -> datetime:
        """Written just before UpdateAccessKey(Inactive): the policy waits D-I days from here to delete.

        Returns the moment recorded, for :meth:`record_disable_done`.
        """
        moment = clock.from_iso(clock.to_iso(clock.now()))  # to the second, as it is stored
        self._add_to_set(account_id, user_name, "disabled", {f"{key_id}#{clock.to_iso(moment)}"})
        return moment

    def record_disable_done(self, account_id: str, user_name: str, key_id: str, moment: datetime) -> None:
        """Written once UpdateAccessKey(Inactive) succeeded: the disable recorded at ``moment`` happened.

        Only then is the key, if it is Active again later, one a person re-enabled.
        """
        self._add_to_set(account_id, user_name, "disabledDone", {f"{key_id}#{clock.to_iso(moment)}"})

    def record_reenabled(self, account_id: str, user_name: str, key_ids: Iterable[str]) -> None:
        """A run found these keys, which the product disabled, Active again: a re-enable is honoured from here."""
        moment = clock.to_iso(clock.now())
        self._add_to_set(account_id, user_name, "reenabled", {f"{key_id}#{moment}" for key_id in key_ids})

    def record_warned(self, account_id: str, user_name: str, marks: Iterable[tuple[str, str]]) -> None:
        """Remember (key id, notice kind) pairs the user was told about, so each is told once."""
        self._add_to_set(account_id, user_name, "warned", {f"{key_id}#{kind}" for key_id, kind in marks})

    def _add_to_set(self, account_id: str, user_name: str, attribute: str, entries: set[str]) -> None:
        if not entries:
            return
        with translate_errors():
            self._db.update_item(
                TableName=self.table_name,
                Key=_to_item({"pk": naming.delivery_pk(account_id), "sk": naming.delivery_sk(user_name)}),
                UpdateExpression="ADD #set :entries SET userName = :user, #kind = :kind",
                ExpressionAttributeNames={"#set": attribute, "#kind": "kind"},
                ExpressionAttributeValues={
                    ":entries": {"SS": sorted(entries)},
                    ":user": {"S": user_name},
                    ":kind": {"S": RecordKind.DELIVERY.value},
                },
            )

    # -- writing -------------------------------------------------------------------------

    def _update_delivery(
        self,
        account_id: str,
        user_name: str,
        user_id: str,
        values: Mapping[str, Any],
        remove: Iterable[str] = (),
        and_action: tuple[str, Action, dict[str, Any]] | None = None,
    ) -> None:
        """Change the user's delivery item; first forget the earlier user's facts if it was written for another.

        ``and_action``: (run id, action, fields) of a run's action item to write in the same call
        (TransactWriteItems: both or neither).
        """
        pk, sk = naming.delivery_pk(account_id), naming.delivery_sk(user_name)
        values = {"userName": user_name, "userId": user_id, "kind": RecordKind.DELIVERY.value, **values}
        if and_action is not None:
            run_id, action, fields = and_action
            delivery = self._update_request(pk, sk, values, remove=remove, expires=False, for_user=user_id)
            item = self._action_request(run_id, account_id, action, fields)
            try:
                with translate_errors():
                    self._db.transact_write_items(TransactItems=[{"Update": delivery}, {"Update": item}])
                return
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
            # Written for an earlier user of this name: the two writes below, one at a time.
            self._update_delivery(account_id, user_name, user_id, values, remove)
            self.record_action(run_id, account_id, action, **fields)
            return
        try:
            self._update(pk, sk, values, remove=remove, expires=False, for_user=user_id)
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # Written for an earlier user of this name: forget it, then write again (one writer per user).
            self._update(pk, sk, {"userName": user_name, "userId": user_id}, remove=USER_FACTS, expires=False)
            self._update(pk, sk, values, remove=remove, expires=False, for_user=user_id)

    def _action_request(
        self, run_id: str, account_id: str, action: Action, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The update of one action item that :meth:`record_action` makes (not a ``skipped``)."""
        sk = naming.action_sk(account_id, action.user_name, action.key_id, action.type.value)
        values = {"accountId": account_id, "kind": RecordKind.ACTION.value, **action.to_json(), **fields}
        return self._update_request(naming.run_pk(run_id), sk, values)

    def _update(
        self,
        pk: str,
        sk: str,
        values: Mapping[str, Any],
        remove: Iterable[str] = (),
        expires: bool = True,
        unless_status: Iterable[str] = (),
        for_user: str | None = None,
    ) -> None:
        """SET ``values`` and REMOVE ``remove``; a ``skipped`` never replaces ``unless_status`` (no error);
        with ``for_user``, ConditionalCheckFailedException when the item was written for another user id."""
        kept = list(unless_status)
        request = self._update_request(pk, sk, values, remove, expires, kept, for_user)
        with translate_errors():
            try:
                self._db.update_item(**request)
            except ClientError as error:
                if not kept or error_code(error) != "ConditionalCheckFailedException":
                    raise

    def _update_request(
        self,
        pk: str,
        sk: str,
        values: Mapping[str, Any],
        remove: Iterable[str] = (),
        expires: bool = True,
        unless_status: Iterable[str] = (),
        for_user: str | None = None,
    ) -> dict[str, Any]:
        """The UpdateItem parameters :meth:`_update` sends (also one update of a TransactWriteItems)."""
        values = {name: value for name, value in values.items() if value is not None}
        values["updatedAt"] = clock.to_iso(clock.now())
        if expires:
            values["expiresAt"] = int((clock.now() + clock.days(RUN_RETENTION_DAYS)).timestamp())
        names = {f"#a{i}": name for i, name in enumerate(values)}
        placeholders = {f":v{i}": value for i, value in enumerate(values.values())}
        expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
        removed = list(remove)
        if removed:
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        kept = list(unless_status)
        condition = {}
        if for_user is not None:
            names["#user"] = "userId"
            placeholders[":user"] = for_user
            condition["ConditionExpression"] = "attribute_not_exists(#user) OR #user = :user"
        if kept:
            names["#kept"] = "status"
            placeholders.update({f":k{i}": status for i, status in enumerate(kept)})
            listed = ", ".join(f":k{i}" for i in range(len(kept)))
            condition["ConditionExpression"] = f"attribute_not_exists(#kept) OR NOT #kept IN ({listed})"
        return {
            "TableName": self.table_name,
            "Key": _to_item({"pk": pk, "sk": sk}),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _to_item(placeholders),
            **condition,
        }


def _start_stamp(start_time: str) -> str:
    """An execution's start time as Step Functions writes it, in UTC to the millisecond, whatever form it came in.

    >>> _start_stamp("2026-01-15T07:00:00.123456+01:00"), _start_stamp("2026-01-15T06:00:00Z")
    ('2026-01-15T06:00:00.123Z', '2026-01-15T06:00:00.000Z')
    """
    try:
        moment = clock.from_iso(start_time).astimezone(UTC)
    except ValueError:
        raise InvalidInput(f"execution start time {start_time!r} is not an ISO 8601 time") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _delivery(record: Mapping[str, Any]) -> Delivery:
    pending_since = record.get("pendingSince")
    warned = set()
    for entry in record.get("warned", set()):
        key_id, _, kind = str(entry).rpartition("#")
        warned.add((key_id, kind))
    return Delivery(
        delivered_key_id=record.get("deliveredKeyId"),
        pending_key_id=record.get("pendingKeyId"),
        pending_since=clock.from_iso(pending_since) if pending_since else None,
        warned=frozenset(warned),
        disabled=_moments(record.get("disabled", set())),
        disabled_done=_moments(record.get("disabledDone", set())),
        reenabled=_moments(record.get("reenabled", set())),
        user_id=record.get("userId"),
        secret_arn=record.get("secretArn"),
        secret_token=record.get("secretToken"),
        secret_policy=record.get("secretPolicy"),
        pending_run_id=record.get("pendingRunId"),
        delivered_at=clock.from_iso(record["deliveredAt"]) if record.get("deliveredAt") else None,
    )


def _moments(entries: Iterable[Any]) -> frozenset[tuple[str, datetime]]:
    """A set of ``keyId#moment`` entries, as (key id, moment) pairs."""
    found = set()
    for entry in entries:
        key_id, _, moment = str(entry).partition("#")
        found.add((key_id, clock.from_iso(moment)))
    return frozenset(found)


def _quiet(record: Mapping[str, Any]) -> Quiet | None:
    until, keys, basis = record.get("quietUntil"), record.get("quietKeys"), record.get("quietBasis")
    if not (until and isinstance(keys, str) and isinstance(basis, str)):
        return None
    return Quiet(until=clock.from_iso(until), keys=keys, basis=basis)
