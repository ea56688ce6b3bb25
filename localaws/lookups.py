"""Two moto lookups that walk the whole organization on every request, made direct.

Both answer exactly as moto does; only the cost changes. Without them a run slows down with the square of
the organization's size, and a 10,000-account run does not end in an afternoon:

- ``BackendDict[account_id]`` (every request, for every service) makes a list of every account's id to
  see whether the account already has its backend: :func:`direct_backend_lookup` asks the dict itself.
- A DynamoDB Query on a table's own key sorts every item of the table and then keeps those of the
  queried partition: :func:`partition_query` gives the Query only that partition's items, in the same
  order. (A Query on an index, and a Scan, still walk the whole table, as moto does.)
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from moto.core.base_backend import AccountSpecificBackend, BackendDict, backend_lock
from moto.dynamodb.models.table import Table

from localaws.patching import patched


def direct_backend_lookup(backends: BackendDict[Any], account_id: str) -> None:
    """``BackendDict._create_account_specific_backend``, with a dict lookup for the account."""
    with backend_lock:
        if account_id not in backends:
            backends[account_id] = AccountSpecificBackend(
                service_name=backends.service_name,
                account_id=account_id,
                backend=backends.backend,
                use_boto3_regions=backends._use_boto3_regions,
                additional_regions=backends._additional_regions,
            )
        if backends not in BackendDict._instances:  # type: ignore[misc]
            BackendDict._instances.append(backends)  # type: ignore[misc]


def partition_query(
    query: Callable[..., Any], all_items: Callable[[Table], list[Any]]
) -> tuple[Callable[..., Any], Callable[[Table], list[Any]]]:
    """``Table.query`` and ``Table.all_items`` that work together: while a thread runs a Query on a table's
    own key, that table's ``all_items`` (which moto's Query sorts, then filters by partition) returns the
    queried partition's items alone, sorted as moto sorts them."""
    signature = inspect.signature(query)
    asked = threading.local()

    def partition_query(table: Table, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(table, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name") or hash_key is None or not table.range_key_attr:
            return query(table, *args, **kwargs)
        asked.partition = (table, hash_key)
        try:
            return query(table, *args, **kwargs)
        finally:
            asked.partition = None

    def partition_items(table: Table) -> list[Any]:
        partition = getattr(asked, "partition", None)
        if partition is None or partition[0] is not table:
            return all_items(table)
        items = table.items.get(partition[1]) or {}
        return sorted(items.values(), key=lambda item: (item.hash_key, item.range_key))

    return partition_query, partition_items


@contextmanager
def direct_lookups() -> Iterator[None]:
    """Both lookups direct for the block; moto's own are back at its end."""
    query, all_items = partition_query(Table.query, Table.all_items)
    with ExitStack() as stack:
        stack.enter_context(patched(BackendDict, "_create_account_specific_backend", direct_backend_lookup))
        stack.enter_context(patched(Table, "query", query))
        stack.enter_context(patched(Table, "all_items", all_items))
        yield
