"""``--local``: the commands against the embedded in-memory AWS (:mod:`localaws`), as ``make demo`` uses.

Each ``keyrotation --local ...`` starts a fresh in-memory organization (a few accounts whose users have
keys of many ages, one account without the member role), deploys template.yaml into it with
``DryRun=false`` and runs the command there; nothing leaves the process and nothing is kept after it.
Tests that already have a :class:`~localaws.LocalAws` and a deployed stack pass :func:`of_stack`'s
target to the command line instead (``CliRunner().invoke(cli, args, obj=of_stack(stack))``).

    >>> with local_target() as target:                # doctest: +SKIP
    ...     print(target.stack_name)
    iam-key-rotation
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from keyrotation_cli.stack import Target, from_outputs
from localaws import KeySeed, LocalAws, Organization, Stack

#: How often a followed execution is looked at in the in-memory AWS (seconds).
LOCAL_POLL_SECONDS = 0.05
#: The member accounts of the in-memory organization; ``legacy`` has no member role, so its account fails.
ACCOUNTS = ("payments", "analytics", "web", "legacy")


def of_stack(stack: Stack, poll_seconds: float = LOCAL_POLL_SECONDS) -> Target:
    """The target of a stack deployed into a :class:`~localaws.LocalAws` (clients as its administrator)."""
    return from_outputs(stack.name, stack.outputs, stack.admin.client, poll_seconds)


def seed(org: Organization) -> None:
    """Keys due for rotation, for disabling, for deletion, an exempt user, and fresh keys."""
    payments, analytics, web = org.account("payments"), org.account("analytics"), org.account("web")
    org.create_user(payments, "deploy-bot", [KeySeed(80, used_days_ago=1)], tags={"email": "platform@example.com"})
    org.create_user(payments, "two-keys", [KeySeed(92, used_days_ago=40), KeySeed(17, used_days_ago=0)])
    org.create_user(analytics, "etl", [KeySeed(76, used_days_ago=0, service="glue")])
    org.create_user(analytics, "old-inactive", [KeySeed(120, status="Inactive"), KeySeed(20, used_days_ago=1)])
    org.create_user(web, "break-glass", [KeySeed(200)], groups=["IAMKeyRotationExemptionGroup"])
    org.create_user(web, "uploader", [KeySeed(5)])
    org.create_user(org.account("legacy"), "mainframe", [KeySeed(300, used_days_ago=5)])


@contextmanager
def local_target() -> Iterator[Target]:
    """An in-memory organization, seeded, with template.yaml deployed (DryRun off), for the block."""
    with LocalAws(quiet=True) as aws:
        org = aws.organization(list(ACCOUNTS), without_role=["legacy"])
        seed(org)
        yield of_stack(aws.deploy({"DryRun": "false"}))
