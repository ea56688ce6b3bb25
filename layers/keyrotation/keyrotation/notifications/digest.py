"""What one person is told about one account in one run: a :class:`Digest` and its events.

Each section of a digest is a tuple of one event type (``rotated`` holds
:class:`Rotation`, ``disabled`` and ``deleted`` hold :class:`KeyChange`, ...);
:data:`SECTIONS` is their order in the emails. The templates read these
objects (see ``templates/README.md``).

Example:
    >>> from keyrotation.events import Account
    >>> digest = Digest("a@example.com", Account("111122223333", "prod", ""), "run-1", False,
    ...                 disabled=(KeyChange("alice", "AKIAOLD", "Replaced 15 days ago."),))
    >>> digest.user_names, digest.key_ids, digest.counts["disabled"]
    (['alice'], ['AKIAOLD'], 1)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from keyrotation.adoption import IN_USE, STILL_USED
from keyrotation.events import Account
from keyrotation.model import NoticeKind


@dataclass(frozen=True)
class KeyUse:
    """One key of a rotated user: ``state`` (:mod:`keyrotation.adoption`: ``in use``, ``not yet``, ``still
    used``, ``not used since``) and its last use as IAM records it (None: never)."""

    key_id: str
    state: str
    last_used: datetime | None


@dataclass(frozen=True)
class Adoption:
    """Whether a rotated user's new key is in use yet, and whether an older key is still used (issue 11).

    Counted from ``delivered_at``, when the product made the new key current: the product's own
    verification call, just before, is no use of the key.

    >>> from datetime import UTC
    >>> when = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    >>> seen = Adoption(when, KeyUse("AKIANEW", "in use", when), (KeyUse("AKIAOLD", "still used", when),))
    >>> seen.new_key_in_use, seen.still_used("AKIAOLD"), seen.still_used("AKIANEW")
    (True, True, False)
    """

    delivered_at: datetime | None
    new_key: KeyUse | None
    old_keys: tuple[KeyUse, ...] = ()

    @property
    def new_key_in_use(self) -> bool:
        return self.new_key is not None and self.new_key.state == IN_USE

    def still_used(self, key_id: str) -> bool:
        """Whether ``key_id``, an older key, was used after the new key was delivered."""
        return any(key.key_id == key_id and key.state == STILL_USED for key in self.old_keys)


@dataclass(frozen=True)
class Hint:
    """A way off a long-lived key of ``user_name`` (:func:`keyrotation.adoption.hint`): an IAM role, IAM Roles
    Anywhere, or deleting it. Told along with a digest's events; never a reason to send one."""

    user_name: str
    key_id: str
    text: str


#: The ``~/.aws/config`` line that makes ``keyrotation credentials`` a profile's credential_process.
HELPER_LINE = "credential_process = keyrotation credentials --secret-id {secret_id}"
#: The one command that seeds its cache, with the credentials of the user that still work.
HELPER_SEED = (
    "keyrotation --profile <a profile with the user's current key> --region {region} "
    "credentials --seed --secret-id {secret_id}"
)


@dataclass(frozen=True)
class Rotation:
    """A key rotated (or, in a preview, that would be rotated).

    In a preview ``new_key_id`` and ``secret_arn`` are None, ``read_command``
    names the secret by name, and the dates are the earliest possible ones.
    """

    user_name: str
    old_key_id: str
    new_key_id: str | None
    secret_name: str
    secret_arn: str | None
    read_command: str
    disable_on: date | None
    delete_on: date | None
    reason: str

    @property
    def key_id(self) -> str:
        """The key the event is about: the old one."""
        return self.old_key_id


@dataclass(frozen=True)
class KeyChange:
    """An old key disabled or deleted (or, in a preview, that would be)."""

    user_name: str
    key_id: str
    reason: str
    #: For a disable: whether the user's new key was in use, and this key still used (None: not known).
    adoption: Adoption | None = None


@dataclass(frozen=True)
class DisableSoon:
    """An old key that will be disabled soon, with its last use so the person can find what still uses it."""

    user_name: str
    key_id: str
    disable_on: date | None
    detail: str
    last_used: datetime | None
    last_used_service: str | None
    last_used_region: str | None
    key_created: date | None
    secret_name: str
    read_command: str
    #: Whether the user's new key is in use yet, and this key still used (None: not known).
    adoption: Adoption | None = None
    #: ``keyrotation credentials`` set up for the user's secret: the ``~/.aws/config`` line, and the seed command.
    helper_line: str = ""
    helper_seed: str = ""

    @property
    def still_in_use(self) -> bool:
        """The key is still used after the new one was delivered: whatever uses it breaks on ``disable_on``."""
        return self.adoption is not None and self.adoption.still_used(self.key_id)


@dataclass(frozen=True)
class Reenabled:
    """A key the product disabled that a person re-enabled: honoured until ``honoured_until``, or (None) not at all.

    A key's first re-enable is honoured for D-I days; a second one is not, and the key is disabled again at once.
    """

    user_name: str
    key_id: str
    honoured_until: date | None
    detail: str
    #: Whether the user's new key is in use yet, and this key still used (None: not known).
    adoption: Adoption | None = None


@dataclass(frozen=True)
class Blocked:
    """A due rotation that cannot happen; ``why`` says why and what would unblock it."""

    user_name: str
    key_id: str | None
    why: str
    retry_on: date | None


@dataclass(frozen=True)
class ExemptionExpiring:
    """A user's exemption from rotation whose last exempt day (UTC, inclusive) is ``last_day``, as the tag gives it."""

    user_name: str
    last_day: date | None
    detail: str

    @property
    def key_id(self) -> None:
        """An exemption is the user's, not a key's."""
        return None


#: The digest's sections (fields of :class:`Digest`), in the order the emails show them.
SECTIONS = ("rotated", "disable_soon", "reenabled", "disabled", "deleted", "blocked", "exemption_expiring")


@dataclass(frozen=True)
class InvalidOwnerTag:
    """The owner tag of ``user_name`` holds ``value``, which is not sent to: reported instead.

    ``outside_domains``: the value is an address, but outside AllowedEmailDomains (a tag cannot send a
    user's key notices to an outsider); otherwise it is not an address at all.
    """

    user_name: str
    value: str
    outside_domains: bool = False


@dataclass(frozen=True)
class Digest:
    """Everything one person is told about one account in one run."""

    recipient: str
    account: Account
    run_id: str
    preview: bool
    rotated: tuple[Rotation, ...] = ()
    disable_soon: tuple[DisableSoon, ...] = ()
    reenabled: tuple[Reenabled, ...] = ()
    disabled: tuple[KeyChange, ...] = ()
    deleted: tuple[KeyChange, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    exemption_expiring: tuple[ExemptionExpiring, ...] = ()
    invalid_owner_tags: tuple[InvalidOwnerTag, ...] = ()
    #: Earlier runs whose undelivered news this digest carries again (their digest did not reach this person).
    resent_from: tuple[str, ...] = ()
    #: A dry run's preview of the whole account, for the security team alone (DryRunNotifyOwners false).
    for_security_team: bool = False
    #: Ways off the long-lived keys of the users this digest tells about (none of them news on its own).
    hints: tuple[Hint, ...] = ()

    @property
    def still_in_use(self) -> tuple[DisableSoon, ...]:
        """The warnings about an old key still used after its replacement was delivered: told first."""
        return tuple(event for event in self.disable_soon if event.still_in_use)

    def events(self) -> Iterator[Any]:
        """Every event of the digest, section by section."""
        for section in SECTIONS:
            yield from getattr(self, section)

    @property
    def counts(self) -> dict[str, int]:
        """How many events of each section (camelCase, as in the ledger), for the ledger and the logs.

        >>> Digest("a@example.com", Account("111122223333", "", ""), "run-1", False).counts["disableSoon"]
        0
        """
        return {_camel(section): len(getattr(self, section)) for section in SECTIONS}

    @property
    def user_names(self) -> list[str]:
        return sorted({event.user_name for event in self.events()})

    @property
    def key_ids(self) -> list[str]:
        return sorted({event.key_id for event in self.events() if event.key_id})

    @property
    def fingerprint(self) -> str:
        """What the digest tells, as a hash: which keys of which users, in which section, for whom.

        Wording and dates are left out: a preview's dates and ages move on by a day every day, and
        that alone is no news. Two previews with the same fingerprint say the same thing.

        >>> account = Account("111122223333", "", "")
        >>> one = Digest("a@example.com", account, "run-1", True, disabled=(KeyChange("al", "AKIA1", "16 days"),))
        >>> two = Digest("a@example.com", account, "run-2", True, disabled=(KeyChange("al", "AKIA1", "17 days"),))
        >>> empty = Digest("a@example.com", account, "run-1", True)
        >>> one.fingerprint == two.fingerprint, one.fingerprint == empty.fingerprint
        (True, False)
        """
        told = sorted(
            f"{section}|{event.user_name}|{event.key_id or ''}"
            for section in SECTIONS
            for event in getattr(self, section)
        )
        told += sorted(f"invalid-owner-tag|{tag.user_name}|{tag.value}" for tag in self.invalid_owner_tags)
        text = "\n".join([self.recipient, self.account.account_id, *told])
        return hashlib.sha256(text.encode()).hexdigest()

    def warned_marks(self) -> dict[str, list[tuple[str, str]]]:
        """The (key id, notice kind) pairs this digest warns each user about (for ``Ledger.record_warned``)."""
        marks: dict[str, list[tuple[str, str]]] = {}
        for soon in self.disable_soon:
            marks.setdefault(soon.user_name, []).append((soon.key_id, NoticeKind.DISABLE_SOON.value))
        for ending in self.exemption_expiring:
            marks.setdefault(ending.user_name, []).append(("", NoticeKind.EXEMPTION_EXPIRING.value))
        return marks


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)
