"""What the key-action handlers share: building the action :class:`~keyrotation.actions.Context`."""

from __future__ import annotations

from typing import Any

from keyrotation import config
from keyrotation.actions import Context
from keyrotation.aws import member_session
from keyrotation.config import LifecycleConfig
from keyrotation.errors import UnsafeAction
from keyrotation.events import Account, Run, action_from_event
from keyrotation.ledger import Ledger
from keyrotation.model import Action
from keyrotation.observability import logger
from keyrotation.sessions import Purpose


def refuse_excluded(account: Account) -> None:
    """A function invoked directly, not by the state machine, still never acts in an excluded account."""
    if account.account_id in config.excluded_accounts():
        raise UnsafeAction(f"account {account.account_id} is in ExcludeAccounts: nothing is done there")


def action_context(event: dict[str, Any], purpose: Purpose) -> tuple[Context, Action]:
    """The action's context, holding a member-account session for ``purpose`` on the action's user only."""
    run, account, action = Run.from_event(event), Account.from_event(event), action_from_event(event)
    logger.append_keys(
        account_id=account.account_id,
        run_id=run.run_id,
        user=action.user_name,
        key_id=action.key_id,
        action=action.type.value,
    )
    lifecycle = LifecycleConfig.from_env()
    refuse_excluded(account)
    context = Context(
        account=account,
        run=run,
        session=member_session(account.account_id, run.run_id, purpose, user_name=action.user_name),
        ledger=Ledger(config.ledger_table()),
        config=lifecycle,
    )
    return context, action
