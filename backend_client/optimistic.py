"""Optimistic updates: local edits layered over the server's query results.

The *view* a watcher sees is: server results (by query token) with every pending optimistic
update replayed on top, in mutation order. Each update is a plain function of a
:class:`LocalStore`; it is replayed whenever new server results arrive (so it must be a pure
function of what it reads, like Convex's ``OptimisticLocalStore`` updates), and dropped in the
very step that applies the Transition reaching its mutation's commit ts, so the server value
(which includes the write) replaces the optimistic one in a single frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collab.backend_client.local_state import QueryToken, query_token
from collab.backend_client.refs import FnLike, udf_path_of
from collab.backend_client.remote_query_set import QueryResult

__all__ = ["LocalStore", "OptimisticUpdate", "OptimisticView", "ViewEntry"]

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class ViewEntry:
    udf_path: str
    args: Mapping[str, Any]
    result: QueryResult | None  # None: loading (an optimistic update may set that)


class LocalStore:
    """What an optimistic update may read and write: the current local query results."""

    __slots__ = ("_view", "modified")

    def __init__(self, view: dict[QueryToken, ViewEntry]) -> None:
        self._view = view
        self.modified: list[QueryToken] = []

    def get_query(self, fn: FnLike, args: Mapping[str, Any] | None = None, default: Any = None) -> Any:
        """The local value of a query, or ``default`` if it is loading, failed, or unknown.
        (``None`` is a real Convex value, hence the explicit default.)"""
        path = udf_path_of(fn)
        entry = self._view.get(query_token(path, dict(args or {})))
        if entry is None or entry.result is None or not entry.result.ok:
            return default
        return entry.result.value

    def has_query(self, fn: FnLike, args: Mapping[str, Any] | None = None) -> bool:
        path = udf_path_of(fn)
        entry = self._view.get(query_token(path, dict(args or {})))
        return entry is not None and entry.result is not None and entry.result.ok

    def get_all_queries(self, fn: FnLike) -> list[tuple[dict[str, Any], Any]]:
        """``(args, value)`` for every local query of this function (value None if not loaded)."""
        path = udf_path_of(fn)
        out: list[tuple[dict[str, Any], Any]] = []
        for entry in self._view.values():
            if entry.udf_path == path:
                r = entry.result
                out.append((dict(entry.args), r.value if r is not None and r.ok else None))
        return out

    def set_query(self, fn: FnLike, args: Mapping[str, Any] | None, value: Any) -> None:
        """Show ``value`` for this query until the mutation's result is reflected."""
        self._put(fn, args, QueryResult(value=value))

    def set_loading(self, fn: FnLike, args: Mapping[str, Any] | None = None) -> None:
        """Show this query as loading (Convex's ``setQuery(..., undefined)``)."""
        self._put(fn, args, None)

    def _put(self, fn: FnLike, args: Mapping[str, Any] | None, result: QueryResult | None) -> None:
        path = udf_path_of(fn)
        a = dict(args or {})
        token = query_token(path, a)
        self._view[token] = ViewEntry(path, a, result)
        self.modified.append(token)


OptimisticUpdate = Callable[[LocalStore], Any]


class OptimisticView:
    """Server results + pending optimistic updates = what watchers see.

    ``server`` is maintained incrementally from Transitions (O(changes)). With no update
    pending, ``view`` *is* ``server``; otherwise it is a copy with the updates replayed on top,
    rebuilt on every server change (a dict copy, then only the replays). Change detection
    looks only at tokens a Transition touched or an update wrote, old or new."""

    __slots__ = ("server", "view", "updates", "_touched")

    def __init__(self) -> None:
        self.server: dict[QueryToken, ViewEntry] = {}
        self.view: dict[QueryToken, ViewEntry] = self.server
        self.updates: list[tuple[int, OptimisticUpdate]] = []
        self._touched: set[QueryToken] = set()

    def apply(self, request_id: int, update: OptimisticUpdate) -> list[QueryToken]:
        """Run a new update on the current view. If it raises, nothing is kept and the error
        propagates (the mutation is then not sent: the caller's update is broken)."""
        view = dict(self.view)
        store = LocalStore(view)
        update(store)
        self.view = view
        self.updates.append((request_id, update))
        self._touched.update(store.modified)
        return store.modified

    def has_updates(self) -> bool:
        return bool(self.updates)

    def forget(self, token: QueryToken) -> None:
        """The last watcher left: drop the server result (the next rebuild drops it from view)."""
        self.server.pop(token, None)

    def ingest(
        self, changed: Iterable[tuple[QueryToken, ViewEntry | None]], drop: Iterable[int] = ()
    ) -> list[QueryToken]:
        """Apply server result changes (None = removed), drop the updates of ``drop`` and
        replay the rest. Returns the tokens whose visible result object changed."""
        server = self.server
        candidates: set[QueryToken] = set()
        for token, entry in changed:
            candidates.add(token)
            if entry is None:
                server.pop(token, None)
            else:
                server[token] = entry
        drop_set = set(drop)
        if drop_set and self.updates:
            self.updates = [(rid, u) for rid, u in self.updates if rid not in drop_set]
        old_view, old_touched = self.view, self._touched
        if not self.updates:
            if old_view is server:  # fast path: nothing optimistic before or after
                return list(candidates)
            self.view, self._touched = server, set()
        else:
            view = dict(server)
            store = LocalStore(view)
            for rid, update in self.updates:
                try:
                    update(store)
                except Exception:  # a broken replay must not take down the transition
                    log.exception("optimistic update of request %s raised on replay", rid)
            self.view, self._touched = view, set(store.modified)
        candidates |= old_touched
        candidates |= self._touched
        new_view = self.view
        out: list[QueryToken] = []
        for t in candidates:
            o, n = old_view.get(t), new_view.get(t)
            if (o.result if o is not None else _ABSENT) is not (n.result if n is not None else _ABSENT):
                out.append(t)
        return out


_ABSENT = object()
