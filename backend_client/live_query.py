"""``LiveQuery``: a watcher's handle on one subscription.

All watchers of the same (function, canonical args) share one :class:`QueryEntry` and one server
subscription; the entry counts them and the subscription is removed when the last one closes.
The entry holds the *visible* result (server result with optimistic updates on top). The client
first updates every changed entry of a Transition, then runs callbacks, so a callback that reads
another LiveQuery sees the same snapshot.

Reading: ``.value`` / ``.loading`` / ``.error``; ``await live.wait()`` for the first value;
``async for value in live`` for changes (coalesced to the latest if the consumer is slower than
the server); ``live.subscribe(callback)`` for every change, synchronously on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from collab.backend_client.errors import ClientClosed, FunctionError, function_error
from collab.backend_client.remote_query_set import QueryResult

if TYPE_CHECKING:
    from collab.backend_client.client import ConvexClient

__all__ = ["LiveQuery", "QueryEntry"]

log = logging.getLogger(__name__)
R = TypeVar("R")


def _same(a: QueryResult | None, b: QueryResult | None) -> bool:
    """Whether a watcher would see no difference (so no callback fires)."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    if a.error != b.error or a.has_data != b.has_data:
        return False
    if a.error is not None:
        return a.error_data == b.error_data
    # type() too: 1.0 == Int64(1) == True in Python but they are distinct Convex values.
    return type(a.value) is type(b.value) and a.value == b.value


class QueryEntry:
    """Shared per-subscription state. Internal."""

    __slots__ = ("token", "udf_path", "args", "result", "version", "watchers", "server_seen")

    def __init__(self, token: str, udf_path: str, args: dict[str, Any]) -> None:
        self.token = token
        self.udf_path = udf_path
        self.args = args
        self.result: QueryResult | None = None
        self.version = 0  # bumps on every visible change
        self.watchers: list[LiveQuery[Any]] = []
        self.server_seen = False  # a server (not optimistic) result has been applied

    def set_result(self, result: QueryResult | None) -> bool:
        if _same(self.result, result):
            self.result = result
            return False
        self.result = result
        self.version += 1
        return True

    def notify(self) -> None:
        for w in list(self.watchers):
            w._notify()


class LiveQuery(Generic[R]):
    """A live view of one query. Close it (or use ``with``) when done."""

    __slots__ = ("_client", "_entry", "_callbacks", "_events", "_closed", "__weakref__")

    def __init__(self, client: "ConvexClient", entry: QueryEntry) -> None:
        self._client = client
        self._entry = entry
        self._callbacks: list[tuple[Callable[[Any], Any], Callable[[FunctionError], Any] | None]] = []
        self._events: list[asyncio.Event] = []
        self._closed = False
        entry.watchers.append(self)

    # --- reading ------------------------------------------------------------------------------

    @property
    def udf_path(self) -> str:
        return self._entry.udf_path

    @property
    def args(self) -> dict[str, Any]:
        return self._entry.args

    @property
    def loading(self) -> bool:
        return self._entry.result is None

    @property
    def value(self) -> R | None:
        """Latest value (optimistic if a pending mutation set one); None while loading or failed."""
        r = self._entry.result
        return r.value if r is not None and r.error is None else None

    @property
    def error(self) -> FunctionError | None:
        r = self._entry.result
        if r is None or r.error is None:
            return None
        return function_error(
            r.error, r.error_data, r.has_data, udf_path=self._entry.udf_path, kind="query",
            log_lines=list(r.log_lines),
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self) -> R | None:
        """The value, raising the query's error if it failed (None while loading)."""
        err = self.error
        if err is not None:
            raise err
        return self.value

    async def wait(self) -> R:
        """The first available value (returns at once if loaded); raises the query's error."""
        async for value in self.updates():
            return value
        raise ClientClosed("live query closed before it had a value")

    # --- change notification ------------------------------------------------------------------

    def subscribe(
        self,
        on_value: Callable[[R], Any],
        on_error: Callable[[FunctionError], Any] | None = None,
    ) -> Callable[[], None]:
        """Call ``on_value(value)`` on every visible change (``on_error(err)`` on a failure).
        Not called with the current value; read ``.value`` for that. Returns an unsubscribe."""
        pair = (on_value, on_error)
        self._callbacks.append(pair)

        def unsubscribe() -> None:
            try:
                self._callbacks.remove(pair)
            except ValueError:
                pass

        return unsubscribe

    def _notify(self) -> None:
        r = self._entry.result
        for ev in self._events:
            ev.set()
        if r is None or not self._callbacks:
            return
        for on_value, on_error in list(self._callbacks):
            try:
                if r.error is None:
                    on_value(r.value)
                elif on_error is not None:
                    on_error(self.error)  # type: ignore[arg-type]
            except Exception:  # one bad callback must not break the others or the transition
                log.exception("LiveQuery callback for %s raised", self._entry.udf_path)

    async def updates(self, raise_errors: bool = True) -> AsyncIterator[R]:
        """Yield the current value (once loaded), then each change. Coalesces: a slow consumer
        gets the latest value, not a backlog. On a query failure raises the error (or skips it
        if ``raise_errors`` is False). Ends when the LiveQuery or the client closes."""
        ev = asyncio.Event()
        self._events.append(ev)
        seen = -1
        try:
            while not self._closed:
                entry = self._entry
                if entry.version != seen and entry.result is not None:
                    seen = entry.version
                    r = entry.result
                    if r.error is None:
                        yield r.value
                    elif raise_errors:
                        raise self.error  # type: ignore[misc]
                    continue
                ev.clear()
                await ev.wait()
        finally:
            try:
                self._events.remove(ev)
            except ValueError:
                pass

    def __aiter__(self) -> AsyncIterator[R]:
        return self.updates()

    # --- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop watching. The server subscription goes when its last watcher closes."""
        if self._closed:
            return
        self._closed = True
        self._callbacks.clear()
        for ev in self._events:
            ev.set()
        try:
            self._entry.watchers.remove(self)
        except ValueError:
            pass
        self._client._release(self._entry)

    def _client_closed(self) -> None:
        self._closed = True
        for ev in self._events:
            ev.set()

    def __enter__(self) -> "LiveQuery[R]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "LiveQuery[R]":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "loading" if self.loading else ("error" if self.error else "ready")
        return f"<LiveQuery {self._entry.udf_path} {state}>"
