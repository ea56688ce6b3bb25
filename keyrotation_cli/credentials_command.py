"""``credentials``: a ``credential_process`` helper that follows the user's key across rotations.

Configured once in ``~/.aws/config``::

    [profile deploy-bot]
    credential_process = keyrotation credentials --secret-id Account_111122223333_User_deploy-bot_AccessKey

it prints ``{"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ...}`` for the AWS CLI and SDKs. It
returns the key it holds in its cache (:mod:`keyrotation_cli.credential_cache`); at most every
``--refresh-minutes`` it reads the user's secret, signed with that key, and when ``AWSCURRENT`` holds
another key, switches to it. On the day of a rotation the next check already returns the new key,
days before the old one is disabled. The cache (one per ``--secret-id`` as written) is seeded once, with
the user's current credentials::

    keyrotation --profile deploy-bot-today --region us-east-1 credentials --seed \
        --secret-id Account_111122223333_User_deploy-bot_AccessKey

The secret access key is printed on standard output in that document and nowhere else; every message
goes to standard error, and every failure exits non-zero.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from keyrotation_cli import credential_cache
from keyrotation_cli.context import options
from keyrotation_cli.credential_cache import CacheError, HeldKey
from keyrotation_cli.user_secret import KeyRefused, NoAnswer, SecretVersion, read_current, region_of, signed_client

DEFAULT_REFRESH_MINUTES = 60


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.option("--secret-id", required=True, help="The user's key secret: its name or ARN.")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path), help="The cache file.")
@click.option(
    "--refresh-minutes",
    default=DEFAULT_REFRESH_MINUTES,
    show_default=True,
    type=click.IntRange(min=0),
    help="Read the secret again at most this often (0: every time).",
)
@click.option("--seed", is_flag=True, help="Read the secret once with your current AWS credentials and cache its key.")
@click.pass_context
def credentials(ctx: click.Context, secret_id: str, cache_path: Path | None, refresh_minutes: int, seed: bool) -> None:
    """Print the user's current access key for credential_process, following its rotations."""
    path = cache_path or credential_cache.default_path(secret_id)
    now = datetime.now(UTC)
    if seed:
        _seed(ctx, secret_id, path, now)
        return
    held = credential_cache.read(path, secret_id)
    if held is None:
        raise CacheError(
            f"no key cached for {secret_id} yet ({path}). Seed it once with credentials of the user that work now, "
            f"for example: keyrotation --profile <the user's profile> credentials --seed --secret-id {secret_id}"
        )
    if now - held.checked_at >= timedelta(minutes=refresh_minutes):
        held = _refresh(held, path, now)
    click.echo(held.process_output())


def _seed(ctx: click.Context, secret_id: str, path: Path, now: datetime) -> None:
    settings = options(ctx)
    session = settings.session()
    region = region_of(secret_id) or settings.region or session.region_name
    if not region:
        raise click.ClickException("no region for the secret: give its ARN, or --region")
    try:
        version = read_current(session.client("secretsmanager", region_name=region), secret_id, "your credentials")
    except KeyRefused as refused:
        raise KeyRefused(
            f"your AWS credentials were refused ({refused.message}): they are disabled or deleted"
        ) from None
    except NoAnswer as error:
        raise click.ClickException(f"Secrets Manager did not answer ({error}); try again") from None
    credential_cache.write(path, _held(secret_id, version, now))
    cache = "" if path == credential_cache.default_path(secret_id) else f" --cache {path}"
    _say(
        f"Cached key {version.access_key_id} of {version.arn} in {path}.\n"
        "Use it from ~/.aws/config:\n"
        "  [profile <name>]\n"
        f"  credential_process = keyrotation credentials --secret-id {secret_id}{cache}"
    )


def _held(secret_id: str, version: SecretVersion, now: datetime) -> HeldKey:
    return HeldKey(
        secret_id=secret_id,
        secret_arn=version.arn,
        version_id=version.version_id,
        access_key_id=version.access_key_id,
        secret_access_key=version.secret_access_key,
        checked_at=now,
    )


def _refresh(held: HeldKey, path: Path, now: datetime) -> HeldKey:
    """Read the secret signed with the held key; switch to the key AWSCURRENT holds when it is another one."""
    region = region_of(held.secret_arn)
    if region is None:
        raise CacheError(f"the cache {path} records no secret ARN: delete it and seed again")
    client = signed_client(held.access_key_id, held.secret_access_key, region)
    try:
        version = read_current(client, held.secret_arn, f"the key it holds ({held.access_key_id})")
    except KeyRefused as refused:
        raise KeyRefused(
            f"AWS refuses the key {held.access_key_id} held for {held.secret_id} ({refused.message}): it was disabled "
            f"or deleted before this helper read its replacement (last read {held.checked_at.isoformat()}). "
            "Get a working key of the user (an administrator can re-enable this one for a moment, or make one), "
            f"then seed again: keyrotation credentials --seed --secret-id {held.secret_id}"
        ) from None
    except NoAnswer as error:
        # The held key still works as far as anyone knows: return it, and look again at the next call.
        _say(f"keyrotation credentials: Secrets Manager did not answer ({error}); returning the held key")
        return held
    if version.access_key_id != held.access_key_id:
        _say(f"keyrotation credentials: switched from key {held.access_key_id} to {version.access_key_id}")
        updated = _held(held.secret_id, version, now)
    else:
        updated = held.checked(now)
    credential_cache.write(path, updated)
    return updated
