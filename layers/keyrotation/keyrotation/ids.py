"""The shapes of the AWS Organizations identifiers the product accepts, written once.

Every place that takes an account id (the stack's ExcludeAccounts, the execution
input, an account passed between states) checks it with :func:`is_account_id`.

Example:
    >>> is_account_id("111122223333"), is_account_id("1111-2222-3333"), is_account_id("11112222333")
    (True, False, False)
    >>> bool(OU_ID.match("ou-ab12-cd34ef56")), bool(OU_ID.match("r-ab12")), bool(OU_ID.match("ou-x"))
    (True, True, False)
"""

from __future__ import annotations

import re

#: A 12-digit AWS account id.
ACCOUNT_ID = re.compile(r"^\d{12}$")

#: An organizational unit id (``ou-...``) or an organization root id (``r-...``).
OU_ID = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")


def is_account_id(text: str) -> bool:
    """Whether ``text`` is written like an AWS account id (12 digits)."""
    return ACCOUNT_ID.match(text) is not None
