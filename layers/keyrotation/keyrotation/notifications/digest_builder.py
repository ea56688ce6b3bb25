"""Who is told what: the ledger records of one account of a run, turned into one digest per person.

The person of an IAM user is the address in the user's owner tag
(``OwnerEmailTagKey``) when it is a valid address in ``AllowedEmailDomains``
(any domain when that is empty), else the account's email from Organizations.
A tag that holds something else, or an address outside those domains, is
reported (an :class:`Unreachable`, recorded ``invalid-address``, and a line in
the digest) and never sent to; the user's events then go to the account's
email, so nobody's key changes unannounced, and tagging a user cannot send
its key notices to an outsider. Pure: no AWS call.

Example:
    >>> from keyrotation.events import Account, Run
    >>> from keyrotation.notifications.settings import Guide
    >>> from keyrotation.ledger_records import run_records
    >>> items = [{"kind": "action", "type": "disable", "userName": "alice", "keyId": "AKIAOLD",
    ...           "reason": "Replaced 15 days ago.", "status": "done", "ownerEmail": "not an address"}]
    >>> account = Account("111122223333", "prod", "aws@example.com")
    >>> plan = build_digests(run_records(items), account, Run("run-1", False),
    ...                      Guide("us-east-1", "email", "key-rotation:exempt", "Exempt", None, 15, 25))
    >>> [digest.recipient for digest in plan.digests], [problem.address for problem in plan.unreachable]
    (['aws@example.com'], ['not an address'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from keyrotation import clock
from keyrotation.events import Account, Run
from keyrotation.ledger_records import ActionRecord, NoticeRecord, RunRecord
from keyrotation.notifications.addresses import in_domains, normalize_address
from keyrotation.notifications.digest import SECTIONS, Digest, Hint, InvalidOwnerTag
from keyrotation.notifications.digest_events import digest_event
from keyrotation.notifications.settings import Guide


@dataclass(frozen=True)
class Unreachable:
    """An address found where a recipient should be that is not one (recorded ``invalid-address``)."""

    address: str
    users: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class DigestPlan:
    """The digests to send, and the addresses nobody can be sent to."""

    digests: tuple[Digest, ...]
    unreachable: tuple[Unreachable, ...]


@dataclass
class _Collecting:
    """One person's digest while the items are read: section name -> events."""

    events: dict[str, list[Any]] = field(default_factory=dict)
    invalid_owner_tags: set[InvalidOwnerTag] = field(default_factory=set)
    resent_from: set[str] = field(default_factory=set)
    hints: dict[tuple[str, str], str] = field(default_factory=dict)  # (user name, key id) -> hint

    def add_hints(self, user_name: str, found: Iterable[tuple[str, str]]) -> None:
        """A record's ``hints``: (key id, hint), at most a user's two keys; the first told of a key is kept."""
        for key_id, text in found:
            self.hints.setdefault((user_name, key_id), text)

    def freeze(self, recipient: str, account: Account, run: Run, for_security_team: bool = False) -> Digest:
        sections = {
            section: tuple(
                sorted(self.events.get(section, ()), key=lambda event: (event.user_name, event.key_id or ""))
            )
            for section in SECTIONS
        }
        tags = tuple(sorted(self.invalid_owner_tags, key=lambda tag: (tag.user_name, tag.value)))
        resent = tuple(sorted(self.resent_from))
        return Digest(
            recipient,
            account,
            run.run_id,
            run.dry_run,
            invalid_owner_tags=tags,
            resent_from=resent,
            for_security_team=for_security_team,
            hints=tuple(Hint(user, key_id, text) for (user, key_id), text in sorted(self.hints.items())),
            **sections,
        )


def build_digests(
    records: Iterable[RunRecord],
    account: Account,
    run: Run,
    guide: Guide,
    today: date | None = None,
    only_to: str | None = None,
) -> DigestPlan:
    """One digest per person from the ledger records of one account of a run.

    In a real run the digest tells what was done (actions ``done``) and what is
    coming (``disable-soon``, ``reenabled``, ``blocked``, ``exemption-expiring`` notices).
    In a dry run actions stay ``planned``: they are shown as what would happen.
    The hints off long-lived keys (a record's ``hints``) ride along with the events of their user:
    a record that is nobody's news brings none, so a hint alone never makes a digest.
    Exempt users, deferred actions and invalid exemption tags are the security
    team's business: they are in the run report, not in digests. A record of an
    earlier run sent again names that run (``resent_from``); the digest lists it.

    ``only_to`` (a dry run whose previews go to the security team only): one digest of
    every event of the account, to that address; no owner is addressed, so no owner
    tag is unreachable (an invalid one is still pointed out in the digest).
    """
    today = today or clock.now().date()
    people: dict[str, _Collecting] = {}
    unreachable: dict[str, set[str]] = {}
    outside: set[str] = set()
    account_address = normalize_address(account.email)
    for record in records:
        found = digest_event(record, account, run, guide, today)
        if found is None:
            continue
        section, event = found
        owner = record.owner_email.strip() if isinstance(record, ActionRecord | NoticeRecord) else ""
        owner_address = normalize_address(owner) if owner else None
        if owner_address is not None and not in_domains(owner_address, guide.allowed_domains):
            outside.add(owner)
            owner_address = None
        recipient = only_to or owner_address or account_address
        if only_to is None and owner and owner_address is None:
            unreachable.setdefault(owner, set()).add(event.user_name)
        if recipient is None:
            unreachable.setdefault(account.email, set()).add(event.user_name)
            continue
        person = people.setdefault(recipient, _Collecting())
        person.events.setdefault(section, []).append(event)
        if isinstance(record, ActionRecord | NoticeRecord):
            person.add_hints(event.user_name, record.hints)
            if record.resent_from:
                person.resent_from.add(record.resent_from)
        if owner and owner_address is None:
            person.invalid_owner_tags.add(InvalidOwnerTag(event.user_name, owner, outside_domains=owner in outside))
    digests = tuple(
        people[recipient].freeze(recipient, account, run, for_security_team=only_to is not None)
        for recipient in sorted(people)
    )
    return DigestPlan(digests=digests, unreachable=_unreachable(unreachable, outside, account, guide))


def _unreachable(
    found: Mapping[str, set[str]], outside: set[str], account: Account, guide: Guide
) -> tuple[Unreachable, ...]:
    problems = []
    for address, users in sorted(found.items()):
        if address in outside:
            reason = (
                f"tag {guide.owner_tag_key!r} holds {address!r}, which is outside AllowedEmailDomains "
                f"({', '.join(guide.allowed_domains)}); the events went to the account's email instead"
            )
        elif address == account.email:
            reason = f"the account's email {address!r} is not a valid address: these users' events were not sent"
        else:
            reason = (
                f"tag {guide.owner_tag_key!r} holds {address!r}, which is not a valid email address; "
                "the events went to the account's email instead"
            )
        problems.append(Unreachable(address=address, users=tuple(sorted(users)), reason=reason))
    return tuple(problems)
