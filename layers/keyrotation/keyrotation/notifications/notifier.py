"""Bookkeeping: render, send and record every digest of an account, and the run report, at most once each.

Every digest is recorded in the ledger as an ``email`` item (``sent``,
``preview`` for a dry run's digest, ``unchanged`` for a preview the same as the
last one mailed to that person, ``failed``, ``invalid-address``,
``not-configured``). People already sent a digest for this account and run
are skipped, so a retried or replayed invocation never sends twice. No
ledger item or log line holds a message body.

Nothing is lost to an SES outage. When a digest SES did not take told a user's
person news that no later run says again (a key rotated, disabled or deleted,
a re-enable found), the run's id is recorded against the user (``owedRuns``).
The next runs carry that news again, from the earlier run's items, in the
user's digest, until one is delivered; then it is forgotten. (Warnings and
blocked notices need no carrying: the policy repeats them until they are sent.)
A dry run neither carries owed news nor settles it: its previews tell no owner.

A dry run's previews go to the security team alone, one per account, unless
``DryRunNotifyOwners`` is true; the fingerprint of each preview mailed is kept
per account and recipient (:meth:`~keyrotation.ledger.Ledger.record_preview`),
so the same preview is not mailed again the next day.

Example (as the notify function wires it):
    >>> notifier = Notifier(Ledger(table_name), Renderer(templates), Mailer(ses, sender))  # doctest: +SKIP
    >>> notifier.notify_account(account, run, settings.guide).to_json()  # doctest: +SKIP
    {'sent': 2, 'failed': 0, 'skipped': 0, 'invalid': 0}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

from keyrotation import clock
from keyrotation.events import Account, Run, RunFailure
from keyrotation.key_events import Publisher, key_events
from keyrotation.ledger import Ledger
from keyrotation.ledger_records import ActionRecord, ActionStatus, EmailRecord, NoticeRecord, OwedRecord, RunRecord
from keyrotation.model import NoticeKind
from keyrotation.notifications.addresses import normalize_address
from keyrotation.notifications.digest import Digest
from keyrotation.notifications.digest_builder import build_digests
from keyrotation.notifications.outcome import Outcome
from keyrotation.notifications.rendering import Renderer
from keyrotation.notifications.report_builder import build_run_report
from keyrotation.notifications.sending import Mailer
from keyrotation.notifications.settings import Guide
from keyrotation.notifications.status import DELIVERED, EmailStatus
from keyrotation.observability import logger


@dataclass(frozen=True)
class Notifier:
    """Renders, sends and records the emails. ``mailer`` None: SenderEmail is empty, nothing is sent."""

    ledger: Ledger
    renderer: Renderer
    mailer: Mailer | None
    #: Where the account's key events go once its digests are sent (Notify's); None: not published.
    events: Publisher | None = None

    def notify_account(self, account: Account, run: Run, guide: Guide, owners_in_dry_run: bool = False) -> Outcome:
        """Send each person of ``account`` their digest for ``run``, at most once, and record it.

        People whose digest the ledger already records as sent for this run are
        skipped (a retried or replayed invocation). Without a mailer every digest
        is still rendered, and recorded ``not-configured``. Once a digest that
        warns (disable soon, exemption expiring) is sent in a real run, the
        warning is marked in the user's delivery record so the policy does not
        repeat it. In a dry run without ``owners_in_dry_run``, the account's one
        preview goes to the security team (none without SecurityTeamEmail).
        """
        only_to = None
        if run.dry_run and not owners_in_dry_run:
            only_to = normalize_address(guide.security_team)
            if only_to is None:
                logger.info(
                    "no preview sent: a dry run previews to SecurityTeamEmail only (DryRunNotifyOwners is false), "
                    "and it is empty",
                    extra={"account_id": account.account_id},
                )
                return Outcome()
        records = self.ledger.run_records(run.run_id, account.account_id)
        emails = [record for record in records if isinstance(record, EmailRecord)]
        delivered = {email.recipient for email in emails if email.status in DELIVERED}
        owed = {} if run.dry_run else _owed(records)  # a preview neither carries nor settles owed news
        carried = self._carried(account, owed) if self.mailer is not None else []
        news = {record.user_name for record in records if _said_once(record)}
        failed_before = {email.recipient for email in emails if email.status is EmailStatus.FAILED}
        plan = build_digests([*records, *carried], account, run, guide, only_to=only_to)
        outcome = Outcome()
        for problem in plan.unreachable:
            self._record(
                run.run_id,
                account.account_id,
                problem.address or "-",
                EmailStatus.INVALID_ADDRESS,
                users=list(problem.users),
                error=problem.reason,
            )
            logger.warning(
                "not an email address", extra={"account_id": account.account_id, "users": list(problem.users)}
            )
            outcome.invalid += 1
        told: set[str] = set()
        for digest in plan.digests:
            told.update(digest.user_names)
            if digest.recipient in delivered:
                self._remember_warnings(digest)
                logger.info("digest already sent in this run", extra=_log_fields(digest))
                outcome.skipped += 1
            else:
                self._send_digest(digest, guide, outcome, _Owing(owed, news, digest.recipient in failed_before))
        if self.mailer is not None:
            for user_name, runs in sorted(owed.items()):
                if user_name not in told:  # nothing of theirs is left to tell (the earlier runs' items expired)
                    self.ledger.forget_owed(account.account_id, user_name, runs)
        if self.events is not None:  # after the emails: an EventBridge outage delays no one's digest
            self.events.publish(key_events(records, account, run))  # this run's items only, none in a dry run
        return outcome

    def _carried(self, account: Account, owed: Mapping[str, frozenset[str]]) -> list[RunRecord]:
        """The records of earlier runs whose news did not reach the owed users' people, marked with their run."""
        users_of: dict[str, set[str]] = {}
        for user_name, runs in owed.items():
            for earlier in runs:
                users_of.setdefault(earlier, set()).add(user_name)
        carried: list[RunRecord] = []
        for earlier, users in sorted(users_of.items()):
            for record in self.ledger.run_records(earlier, account.account_id):
                if _said_once(record) and record.user_name in users and not record.dry_run:
                    carried.append(replace(record, resent_from=earlier))
        return carried

    def send_run_report(
        self,
        run: Run,
        summary: Mapping[str, Any],
        replay_input: Any,
        *,
        recipient: str | None,
        started_at: str | None = None,
        run_failure: RunFailure | None = None,
    ) -> Outcome:
        """Send the security team the run's report: one per invocation, as each execution has its own.

        ``run_failure``: the run failed before or after its accounts; the report says where and why.
        """
        if recipient is None or self.mailer is None:
            logger.info("run report not sent: SecurityTeamEmail or SenderEmail is empty")
            return Outcome(skipped=1)
        records = self.ledger.run_records(run.run_id)
        report = build_run_report(run, summary, replay_input, records, started_at=started_at, failure=run_failure)
        email = self.renderer.render_run_report(report)
        result = self.mailer.send(recipient, email)
        outcome = Outcome(fallbacks=len(email.fallbacks))
        if result.failure is None:
            logger.info("run report sent", extra={"recipient": recipient, "message_id": result.message_id})
            outcome.sent = 1
            return outcome
        failure = result.failure
        logger.error(
            "run report not sent",
            extra={
                "recipient": recipient,
                "error_code": failure.code,
                "error": failure.message,
                "transient": failure.transient,
            },
        )
        outcome.count_failure(failure)
        return outcome

    def _send_digest(self, digest: Digest, guide: Guide, outcome: Outcome, owing: _Owing | None = None) -> None:
        run_id, account_id = digest.run_id, digest.account.account_id
        if self._previewed_already(digest):
            told = {"users": digest.user_names, "events": digest.counts, "dryRun": True}
            self._record(run_id, account_id, digest.recipient, EmailStatus.UNCHANGED, **told)
            logger.info("preview unchanged since the last one mailed: not sent again", extra=_log_fields(digest))
            outcome.skipped += 1
            return
        email = self.renderer.render_digest(digest, guide)
        outcome.fallbacks += len(email.fallbacks)
        details: dict[str, Any] = {
            "users": digest.user_names,
            "events": digest.counts,
            "dryRun": digest.preview,
            "templateFallbacks": [{"template": f.template, "reason": f.reason} for f in email.fallbacks] or None,
        }
        if self.mailer is None:
            self._record(run_id, account_id, digest.recipient, EmailStatus.NOT_CONFIGURED, **details)
            logger.info("digest not sent: SenderEmail is empty", extra=_log_fields(digest))
            outcome.skipped += 1
            return
        result = self.mailer.send(digest.recipient, email)
        if result.failure is not None:
            failure = result.failure
            self._record(
                run_id,
                account_id,
                digest.recipient,
                EmailStatus.FAILED,
                errorCode=failure.code,
                error=failure.message,
                transient=failure.transient,
                **details,
            )
            logger.warning(
                "digest not sent",
                extra={**_log_fields(digest), "error_code": failure.code, "transient": failure.transient},
            )
            outcome.count_failure(failure)
            if owing is not None and not digest.preview:
                for user_name in digest.user_names:
                    if user_name in owing.news:  # this run's news for them is owed to a later run
                        self.ledger.record_undelivered(account_id, user_name, run_id)
            return
        status = EmailStatus.PREVIEW if digest.preview else EmailStatus.SENT
        self._record(
            run_id,
            account_id,
            digest.recipient,
            status,
            messageId=result.message_id,
            sentAt=clock.to_iso(clock.now()),
            **details,
        )
        if digest.preview:
            self.ledger.record_preview(account_id, digest.recipient, digest.fingerprint, run_id)
        self._remember_warnings(digest)
        if owing is not None and not digest.preview:
            for user_name in digest.user_names:
                # What was owed, and this run's news if an earlier attempt of this run recorded it undelivered.
                runs = owing.owed.get(user_name, frozenset()) | ({run_id} if owing.failed_before else set())
                self.ledger.forget_owed(account_id, user_name, runs)
        logger.info("digest sent", extra={**_log_fields(digest), "message_id": result.message_id})
        outcome.sent += 1

    def _previewed_already(self, digest: Digest) -> bool:
        """A preview that would be mailed (there is a sender) and says what the last one mailed to that person did."""
        if not digest.preview or self.mailer is None:
            return False
        return self.ledger.preview_fingerprint(digest.account.account_id, digest.recipient) == digest.fingerprint

    def _remember_warnings(self, digest: Digest) -> None:
        if digest.preview:
            return
        for user_name, marks in digest.warned_marks().items():
            self.ledger.record_warned(digest.account.account_id, user_name, marks)

    def _record(self, run_id: str, account_id: str, recipient: str, status: EmailStatus, **fields: Any) -> None:
        self.ledger.record_email(run_id, account_id, recipient, status=status.value, **fields)


@dataclass(frozen=True)
class _Owing:
    """What a digest's delivery settles: ``owed`` (user -> earlier runs carried again), ``news`` (users this run
    tells something no later run says again), ``failed_before``."""

    owed: Mapping[str, frozenset[str]]
    news: set[str]
    failed_before: bool = False  # an earlier attempt of this run did not deliver this recipient's digest


def _owed(records: Iterable[RunRecord]) -> dict[str, frozenset[str]]:
    """User -> the earlier runs whose news is still owed to its person (the audit's ``owed`` records)."""
    return {record.user_name: record.runs for record in records if isinstance(record, OwedRecord)}


def _said_once(record: RunRecord) -> TypeGuard[ActionRecord | NoticeRecord]:
    """News that no later run says again: a key action done, a re-enable found."""
    if isinstance(record, ActionRecord):
        return record.status is ActionStatus.DONE
    return isinstance(record, NoticeRecord) and record.type is NoticeKind.REENABLED


def _log_fields(digest: Digest) -> dict[str, Any]:
    """What a log line says about a digest: who and which users and keys, never its text."""
    return {
        "account_id": digest.account.account_id,
        "recipient": digest.recipient,
        "users": digest.user_names,
        "key_ids": digest.key_ids,
        "events": digest.counts,
    }
