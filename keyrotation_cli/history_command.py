"""``history ACCOUNT [USER]``: what the ledger says happened to the keys of an account, or of one user.

Two views: the delivery records (which key the product made and delivered to each user, which it
disabled, which a person re-enabled) and every action and notice of the last runs, newest first.

    $ keyrotation history 111122223333 deploy-bot --runs 60
"""

from __future__ import annotations

import click

from keyrotation.ids import is_account_id
from keyrotation.ledger import Ledger
from keyrotation.naming import USER_NAME
from keyrotation_cli import tables
from keyrotation_cli.context import console, target_of
from keyrotation_cli.runs import key_history


@click.command()
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("user_name", metavar="[USER]", required=False)
@click.option("--runs", "limit", default=30, show_default=True, type=click.IntRange(min=1), help="How many runs back.")
@click.pass_context
def history(ctx: click.Context, account_id: str, user_name: str | None, limit: int) -> None:
    """Show what the ledger recorded for the keys of ACCOUNT (of USER only, when given)."""
    if not is_account_id(account_id):
        raise click.BadParameter(f"{account_id!r} is not an AWS account id (12 digits)", param_hint="ACCOUNT")
    if user_name is not None and not USER_NAME.fullmatch(user_name):
        raise click.BadParameter(f"{user_name!r} is not an IAM user name", param_hint="USER")
    target = target_of(ctx)
    ledger = Ledger(target.ledger_table, target.client("dynamodb"))
    deliveries = {
        name: delivery
        for name, (delivery, _quiet) in ledger.user_records(account_id).items()
        if user_name in (None, name) and tables.has_keys(delivery)
    }
    out = console()
    who = f"{user_name} in {account_id}" if user_name else account_id
    if deliveries:
        out.print(tables.deliveries_table(account_id, deliveries))
    else:
        out.print(f"The product has made no key for {who}.")
    rows = list(key_history(target, ledger, account_id, user_name, limit))
    if rows:
        out.print(tables.history_table(rows, f"Key actions and notices of {who}, last {limit} runs (newest first)"))
    else:
        out.print(f"No key action or notice for {who} in the last {limit} runs.")
