"""Every list call, every page.

boto3's paginators follow ``NextToken``/``Marker`` until the service stops
returning one, including the empty pages with a token that Organizations
sends. Nothing in this project calls a list operation any other way.

Example:
    >>> for user in items(iam, "list_users", "Users"):   # doctest: +SKIP
    ...     print(user["UserName"])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keyrotation.aws import translate_errors


def items(client: Any, operation: str, result_key: str, **params: Any) -> Iterator[Any]:
    """Yield each element of ``result_key`` across all pages of ``operation``."""
    paginator = client.get_paginator(operation)
    with translate_errors():
        for page in paginator.paginate(**params):
            yield from page.get(result_key, [])
