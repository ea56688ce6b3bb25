"""The global options, and the stack the commands act on, resolved once per invocation when a command needs it.

Tests (or a program driving the command line) may hand in a ready :class:`~keyrotation_cli.stack.Target`:

    >>> CliRunner().invoke(cli, ["status"], obj=Options(target=of_stack(stack)))   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import click
from botocore.exceptions import ProfileNotFound
from rich.console import Console

from keyrotation_cli.stack import Target, resolve

#: The stack name samconfig.toml deploys to.
DEFAULT_STACK = "iam-key-rotation"


@dataclass
class Options:
    """The group's options; ``target`` is set once resolved (or handed in)."""

    stack_name: str = DEFAULT_STACK
    profile: str | None = None
    region: str | None = None
    local: bool = False
    target: Target | None = None

    def session(self) -> Any:
        """A boto3 session with the standard credential chain, ``--profile`` and ``--region`` applied."""
        try:
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except ProfileNotFound as error:
            raise click.ClickException(str(error)) from None


def options(ctx: click.Context) -> Options:
    found = ctx.find_object(Options)
    if found is None:
        raise click.ClickException("keyrotation's options are missing: run the `keyrotation` command")
    return found


def target_of(ctx: click.Context) -> Target:
    """The stack to act on: the one handed in, the in-memory one (``--local``), or the deployed one by name."""
    settings = options(ctx)
    if settings.target is None:
        if settings.local:
            from keyrotation_cli.local import local_target  # the in-memory AWS needs moto: only loaded for --local

            settings.target = ctx.find_root().with_resource(local_target())
        else:
            settings.target = resolve(settings.session(), settings.stack_name)
    return settings.target


def console() -> Console:
    """Where tables and progress go: standard output, as the command line finds it now."""
    # Values from AWS are shown as they are: never as markup, never an emoji (an ARN holds ":secret:").
    return Console(highlight=False, markup=False, emoji=False)
