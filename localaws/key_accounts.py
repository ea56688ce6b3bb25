"""Which account an access key belongs to, found in one lookup instead of a walk over every account.

moto finds the account of a request's access key by looking in every account's IAM, in every partition,
on every request (``moto.iam.models.get_account_id_from``): fine for a few accounts, but an organization
of 10,000 makes each request walk 40,000 backends, so `make bench SCALE=10000` would spend hours there.
:class:`KeyAccounts` answers the same question from an index of the keys moto creates (user keys and the
temporary keys of assumed roles), and checks each answer against moto, so a key deleted since is not
taken for its old account's. A key no account holds is remembered as such until a creator makes it.

moto's GetAccessKeyLastUsed walks every user of every account the same way, on every call; it is
answered here from the same index (:meth:`KeyAccounts.last_used`), or by moto's walk when the index
does not hold the key.

>>> index = KeyAccounts()
>>> index.account_of("AKIANOSUCHKEY")  # a key moto never made: moto's own answer, the default account
'123456789012'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam import models as iam_models
from moto.iam.models import IAMBackend

from localaws.patching import patched


class KeyAccounts:
    """An index of access key id -> the IAM backend holding it, kept by the methods that create keys."""

    def __init__(self) -> None:
        self._backends: dict[str, IAMBackend] = {}
        # Keys no account holds (the local admin's own, "testing"): absent until a creator makes them.
        self._absent: set[str] = set()
        self._lock = threading.Lock()

    def account_of(self, access_key_id: str) -> str:
        """The account ``access_key_id`` belongs to, as ``get_account_id_from`` answers it."""
        backend = self._backends.get(access_key_id)
        if backend is not None and access_key_id in backend.access_keys:
            return str(backend.account_id)
        if access_key_id in self._absent:
            return DEFAULT_ACCOUNT_ID
        # Not made through the index (or gone since): moto's own walk, which is rare here.
        return self._walk(access_key_id)

    def _walk(self, access_key_id: str) -> str:
        for _account_id, account in list(iam_models.iam_backends.items()):
            for partition in iam_models.PARTITION_NAMES:
                backend = account[partition]
                if access_key_id in backend.access_keys:
                    self._note(access_key_id, backend)
                    return str(backend.account_id)
        with self._lock:
            self._absent.add(access_key_id)
        return DEFAULT_ACCOUNT_ID

    def _note(self, access_key_id: str, backend: IAMBackend) -> None:
        with self._lock:
            self._backends[access_key_id] = backend
            self._absent.discard(access_key_id)

    def last_used(self, walk: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        """``IAMBackend.get_access_key_last_used``, from the index: a user's key found in the account that
        holds it answers as moto's walk would; any other key is left to ``walk``."""
        backends = self._backends

        def get_access_key_last_used(backend: IAMBackend, access_key_id: str) -> dict[str, Any]:
            holder = backends.get(access_key_id)
            key = holder.access_keys.get(access_key_id) if holder is not None else None
            user = holder.users.get(key.user_name) if holder is not None and key is not None else None
            if key is None or user is None or key not in user.access_keys:
                return walk(backend, access_key_id)
            return {"user_name": key.user_name, "last_used": key.last_used}

        return get_access_key_last_used

    def _indexing(self, create: Callable[..., Any]) -> Callable[..., Any]:
        note = self._note

        def create_and_note(backend: IAMBackend, *args: Any, **kwargs: Any) -> Any:
            key = create(backend, *args, **kwargs)
            note(key.physical_resource_id, backend)
            return key

        return create_and_note

    @contextmanager
    def installed(self) -> Iterator[KeyAccounts]:
        """moto asks the index for a key's account for the block; its own functions are back at the end."""
        with ExitStack() as stack:
            for method in ("create_access_key", "create_temp_access_key"):
                stack.enter_context(patched(IAMBackend, method, self._indexing(getattr(IAMBackend, method))))
            stack.enter_context(patched(iam_models, "get_account_id_from", self.account_of))
            walk = IAMBackend.get_access_key_last_used
            stack.enter_context(patched(IAMBackend, "get_access_key_last_used", self.last_used(walk)))
            yield self
