"""The ``keyrotation`` command: global options, AWS errors made readable, and the commands.

$ keyrotation --help
$ keyrotation --stack iam-key-rotation --profile security status --limit 5
"""

from __future__ import annotations

from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from keyrotation.aws import error_code
from keyrotation.errors import KeyRotationError
from keyrotation_cli import credentials_command, history_command, inventory_command, run_commands, status_command
from keyrotation_cli.context import DEFAULT_STACK, Options


class _Group(click.Group):
    """Reports an AWS error as one line (its code and message; AWS never puts a secret there) and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoRegionError:
            raise click.ClickException(
                "no AWS region: give --region, or set AWS_REGION or a profile's region"
            ) from None
        except NoCredentialsError:
            raise click.ClickException(
                "no AWS credentials: give --profile, or set the standard AWS variables"
            ) from None
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            operation = getattr(error, "operation_name", "an AWS call")
            raise click.ClickException(f"{operation} failed: {error_code(error)}: {message}") from None
        except BotoCoreError as error:
            raise click.ClickException(f"AWS call failed: {error}") from None
        except KeyRotationError as error:  # an AWS error as the product's modules name it (Throttled...)
            raise click.ClickException(f"{type(error).__name__}: {error}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--stack",
    "stack_name",
    default=DEFAULT_STACK,
    show_default=True,
    envvar="KEYROTATION_STACK",
    help="Name of the deployed key rotation stack (its outputs say where the state machine and ledger are).",
)
@click.option("--profile", help="AWS profile (default: the standard credential chain).")
@click.option("--region", help="AWS region of the stack (default: the profile's or AWS_REGION).")
@click.option(
    "--local", is_flag=True, help="Act on the embedded in-memory AWS (a fresh demo organization), not a deployed stack."
)
@click.pass_context
def cli(ctx: click.Context, stack_name: str, profile: str | None, region: str | None, local: bool) -> None:
    """Operate the IAM access key rotation stack: plan, run, follow, replay, and read its ledger."""
    given = ctx.obj.target if isinstance(ctx.obj, Options) else None
    ctx.obj = Options(stack_name=stack_name, profile=profile, region=region, local=local, target=given)


for command in (
    run_commands.plan,
    run_commands.run,
    run_commands.replay,
    status_command.status,
    history_command.history,
    inventory_command.inventory,
    credentials_command.credentials,
):
    cli.add_command(command)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="keyrotation")
