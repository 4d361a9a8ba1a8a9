"""``ConvexClient``: the reactive client over the Convex sync protocol (PROTOCOL.md).

One asyncio task owns the socket (``_run``); everything else (watch, mutation, callbacks) runs
on the same event loop and never awaits while applying server messages, so a Transition is
applied atomically: results, completed mutations, dropped optimistic updates and watcher
callbacks happen in one synchronous step.

Outgoing messages go through a per-socket queue drained by one writer task, which keeps them in
the order the state changes happened. With no socket, messages are dropped on purpose: on every
(re)connect the whole session (Connect, Authenticate, the full query set, every in-flight
mutation with its original requestId) is rebuilt from local state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import websockets
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from collab.backend_client.auth import AdminKey, AuthSpec, TokenSource
from collab.backend_client.connection import (
    Backoff,
    ConnectionState,
    ConnectionStatus,
    ReconnectPolicy,
    StateCell,
)
from collab.backend_client.errors import AuthFailed, ClientClosed, ProtocolError
from collab.backend_client.live_query import LiveQuery, QueryEntry
from collab.backend_client.local_state import AuthToken, LocalSyncState, query_token
from collab.backend_client.optimistic import OptimisticUpdate, OptimisticView, ViewEntry
from collab.backend_client.refs import FnLike, FunctionRef, udf_path_of
from collab.backend_client.remote_query_set import RemoteQuerySet
from collab.backend_client.request_manager import RequestManager
from collab.wire.messages import (
    ActionResponse,
    AuthError,
    FatalError,
    MutationResponse,
    Ping,
    QueryFailed,
    QueryRemoved,
    QueryUpdated,
    Transition,
    server_message_adapter,
)
from collab.wire.values import convex_to_json, decode_ts, encode_ts

__all__ = ["ConvexClient", "ws_url_for", "new_idempotency_key"]

log = logging.getLogger(__name__)
R = TypeVar("R")

# After this many fresh tokens rejected in a row, stop asking and report AUTH_FAILED.
MAX_AUTH_ATTEMPTS = 2


def ws_url_for(url: str) -> str:
    """Deployment URL -> sync socket URL: http->ws, https->wss (ws/wss kept); a base path is
    kept (the JS rule) and ``/api/sync`` appended, the route both Convex and our backend serve."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not an absolute URL: {url!r}")
    ws_scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(scheme.lower())
    if ws_scheme is None:
        raise ValueError(f"unsupported URL scheme {scheme!r} (use http, https, ws or wss)")
    return f"{ws_scheme}://{rest.rstrip('/')}/api/sync"


def new_idempotency_key() -> str:
    """A fresh key for ``mutation(..., idempotency_key=...)``. Persist it with the intent
    (e.g. in the run record) *before* sending, so a retry after a crash reuses it."""
    return str(uuid.uuid4())


class _Restart(Exception):
    """Raised inside message handling to end the current socket."""

    def __init__(self, reason: str, *, client_initiated: bool, immediate: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.client_initiated = client_initiated
        self.immediate = immediate


class ConvexClient:
    """Reactive client. Use as ``async with ConvexClient(url, auth=...) as client:``.

    ``auth``: None (anonymous), a JWT string, an async fetcher ``(force_refresh) -> str|None``,
    or :class:`AdminKey`.
    """

    def __init__(
        self,
        url: str,
        *,
        auth: AuthSpec | AdminKey = None,
        reconnect: ReconnectPolicy | None = None,
        auth_refresh_leeway_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        compression: bool = False,
        session_id: str | None = None,
        ssl: Any = None,
    ) -> None:
        self.url = url
        self.ws_url = ws_url_for(url)
        # wss only: an ssl.SSLContext (e.g. one that trusts a team's self-signed certificate).
        self._ssl = ssl
        # One session id for the client's whole life: the server dedupes replayed mutations
        # on (sessionId, requestId).
        self.session_id = session_id or str(uuid.uuid4())
        self._policy = reconnect or ReconnectPolicy()
        self._leeway = auth_refresh_leeway_s
        self._headers = dict(headers or {})
        self._compression = compression

        self._local = LocalSyncState()
        self._remote = RemoteQuerySet()
        self._requests = RequestManager()
        self._optimistic = OptimisticView()
        self._entries: dict[str, QueryEntry] = {}
        self._state = StateCell()

        self._admin: AdminKey | None = auth if isinstance(auth, AdminKey) else None
        self._tokens = TokenSource(None if self._admin else auth, auth_refresh_leeway_s)
        self._auth_awaiting_confirmation = False
        self._auth_attempts = 0
        self._auth_failed_reason: str | None = None
        self._force_refetch = False
        self._refresh_task: asyncio.Task[None] | None = None

        self._next_request_id = 0
        self._outbox: asyncio.Queue[str | None] | None = None
        self._ws: ClientConnection | None = None
        self._restart_request: _Restart | None = None
        self._max_observed_ts: int | None = None
        self._connection_count = 0
        self._last_close_reason: str | None = None
        self._chunks: list[str] = []
        self._run_task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False
        self._last_rx = 0.0
        # Observability for tests and the bench: frames received, transitions applied.
        self.stats: dict[str, int] = {"frames": 0, "transitions": 0, "reconnects": 0}

    # ============================================================ lifecycle

    async def connect(self, *, wait: bool = True, timeout: float | None = 30.0) -> "ConvexClient":
        """Start the connection loop. With ``wait``, return once LIVE (raise AuthFailed if the
        credentials are refused, TimeoutError after ``timeout``; the loop keeps retrying)."""
        if self._closed:
            raise ClientClosed("client is closed")
        if self._run_task is None:
            self._wake = asyncio.Event()
            self._run_task = asyncio.get_running_loop().create_task(self._run(), name="convex-client")
        if wait:
            status = await self._state.wait_for(
                ConnectionState.LIVE, ConnectionState.AUTH_FAILED, ConnectionState.CLOSED,
                timeout=timeout,
            )
            if status.state is ConnectionState.AUTH_FAILED:
                raise AuthFailed(status.reason or "authentication failed")
            if status.state is ConnectionState.CLOSED:
                raise ClientClosed("client closed while connecting")
        return self

    async def __aenter__(self) -> "ConvexClient":
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the socket, fail pending requests with ClientClosed, end every LiveQuery."""
        if self._closed:
            return
        self._closed = True
        self._state.set(ConnectionStatus(ConnectionState.CLOSED, connection_count=self._connection_count))
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        if self._wake is not None:
            self._wake.set()
        if self._run_task is not None:
            self._run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._run_task
        self._requests.fail_all(ClientClosed, "client closed with the request in flight")
        for entry in list(self._entries.values()):
            for w in list(entry.watchers):
                w._client_closed()

    # ============================================================ state

    @property
    def state(self) -> ConnectionStatus:
        return self._state.status

    def on_state_change(self, callback: Callable[[ConnectionStatus], object]) -> Callable[[], None]:
        """Call ``callback(status)`` on every change; returns an unsubscribe function."""
        return self._state.on_change(callback)

    async def wait_for_state(self, *states: ConnectionState, timeout: float | None = None) -> ConnectionStatus:
        return await self._state.wait_for(*states, timeout=timeout)

    @property
    def subscription_count(self) -> int:
        """Distinct server subscriptions (one per (function, canonical args))."""
        return len(self._local.queries)

    @property
    def inflight_requests(self) -> int:
        return len(self._requests.inflight)

    # ============================================================ queries

    def watch(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> LiveQuery[R]:
        """A LiveQuery on ``fn(args)``. Watchers of the same (function, args) share one server
        subscription; it is removed when the last one closes."""
        if self._closed:
            raise ClientClosed("client is closed")
        path = udf_path_of(fn)
        a = dict(args or {})
        token = query_token(path, a)
        entry = self._entries.get(token)
        if entry is None:
            entry = QueryEntry(token, path, a)
            self._entries[token] = entry
            q, msg = self._local.subscribe(path, a, token)
            # An optimistic update may already have put a value for this query in the view.
            ve = self._optimistic.view.get(token)
            if ve is not None:
                entry.result = ve.result
            if msg is not None:
                self._send(msg)
        else:
            self._local.subscribe(path, a, token)
        return LiveQuery(self, entry)

    def _release(self, entry: QueryEntry) -> None:
        msg = self._local.unsubscribe(entry.token)
        if entry.token not in self._local.queries:
            self._entries.pop(entry.token, None)
            self._optimistic.forget(entry.token)
        if msg is not None:
            self._send(msg)

    async def query(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> R:
        """One-shot query over the socket: subscribe, take the first server result,
        unsubscribe (what the official clients do). Returns at once if already watched."""
        live: LiveQuery[R] = self.watch(fn, args)
        ev = asyncio.Event()
        live._events.append(ev)
        try:
            while True:
                entry = live._entry
                if entry.server_seen and entry.result is not None:
                    return live.get()  # type: ignore[return-value]
                if self._closed or live.closed:
                    raise ClientClosed("client closed before the query returned")
                ev.clear()
                await ev.wait()
        finally:
            live.close()

    # ============================================================ mutations and actions

    async def mutation(
        self,
        fn: FunctionRef[Any, R] | str,
        args: Mapping[str, Any] | None = None,
        *,
        optimistic: OptimisticUpdate | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Run a mutation. Returns once its result is reflected in every LiveQuery (a
        Transition at or past its commit ts was applied). ``optimistic(store)`` edits the local
        query cache at once and is dropped atomically with that Transition, or rolled back if
        the mutation fails (then FunctionError / ConvexError is raised).

        ``idempotency_key`` is sent as the ``idempotencyKey`` argument, for functions that take
        one (``locks:acquire``, ``artifacts:save``): the server applies a key at most once,
        even across process restarts, where the (sessionId, requestId) dedupe cannot help.

        Cancelling the await does not cancel the mutation: once handed to the client it is
        sent (and replayed across reconnects) until the server answers."""
        self._check_open()
        path = udf_path_of(fn)
        a = dict(args or {})
        if idempotency_key is not None:
            a["idempotencyKey"] = idempotency_key
        wire_args = convex_to_json(a)  # raise on a bad value before anything is shown
        rid = self._next_request_id
        self._next_request_id += 1
        if optimistic is not None:
            self._publish(self._optimistic.apply(rid, optimistic))
        msg = {"type": "Mutation", "requestId": rid, "udfPath": path, "args": [wire_args]}
        sent = self._send(msg)
        req = self._requests.request(rid, "mutation", msg, sent)
        return await asyncio.shield(req.future)  # type: ignore[no-any-return]

    async def action(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> R:
        """Run an action. Not replayed on reconnect (actions are not idempotent): if the socket
        drops while it runs, ConnectionLost is raised."""
        self._check_open()
        path = udf_path_of(fn)
        wire_args = convex_to_json(dict(args or {}))
        rid = self._next_request_id
        self._next_request_id += 1
        msg = {"type": "Action", "requestId": rid, "udfPath": path, "args": [wire_args]}
        sent = self._send(msg)
        req = self._requests.request(rid, "action", msg, sent)
        return await asyncio.shield(req.future)  # type: ignore[no-any-return]

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("client is closed")

    # ============================================================ auth

    async def set_auth(self, auth: AuthSpec | AdminKey) -> None:
        """Replace the credentials (also the way out of AUTH_FAILED)."""
        self._admin = auth if isinstance(auth, AdminKey) else None
        self._tokens = TokenSource(None if self._admin else auth, self._leeway)
        self._auth_attempts = 0
        self._auth_failed_reason = None
        if self._tokens.is_fetcher:
            await self._tokens.fetch(False)
        if self._outbox is not None:
            self._send(self._local.set_auth(self._current_auth()))
            self._auth_awaiting_confirmation = self._local.auth is not None
        else:
            self._local.auth = self._current_auth()
        if self._state.status.state is ConnectionState.AUTH_FAILED:
            self._state.set(ConnectionStatus(ConnectionState.RECONNECTING, connection_count=self._connection_count))
        if self._wake is not None:
            self._wake.set()

    def _current_auth(self) -> AuthToken | None:
        if self._admin is not None:
            return AuthToken("Admin", self._admin.key, self._admin.acting_as)
        if self._tokens.token is not None:
            return AuthToken("User", self._tokens.token)
        return None

    def _on_auth_confirmed(self) -> None:
        self._auth_awaiting_confirmation = False
        self._auth_attempts = 0
        self._local.auth_outstanding_since_restart = False
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            self._refresh_task = None
        at = self._tokens.refresh_at()
        if at is None or self._closed:
            return
        self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_later(at))

    async def _refresh_later(self, at: float) -> None:
        """Fetch a fresh token ahead of ``exp`` and swap it in on the live socket."""
        await asyncio.sleep(max(0.0, at - time.time()))
        try:
            token = await self._tokens.fetch(True)
        except Exception as exc:  # a flaky fetcher: retry shortly, keep the current token
            log.warning("token refresh failed: %s", exc)
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_later(time.time() + 1.0))
            return
        self._refresh_task = None
        if token is None:
            self._enter_auth_failed("token fetcher returned no token")
            self._request_restart(_Restart("AuthFailed", client_initiated=True))
            return
        current = self._local.auth
        if self._outbox is not None and (current is None or current.value != token):
            self._send(self._local.set_auth(AuthToken("User", token)))
            self._auth_awaiting_confirmation = True
        elif self._outbox is None:
            self._local.auth = AuthToken("User", token)

    def _on_auth_error(self, msg: AuthError) -> None:
        # A token that merely expired while we wait for the server to confirm its replacement:
        # the replacement is already on its way (same rule as the JS client).
        if msg.authUpdateAttempted is False and self._auth_awaiting_confirmation:
            return
        if msg.baseVersion is not None and not self._local.is_current_or_newer_identity(msg.baseVersion + 1):
            return  # about an older Authenticate than our latest
        if not self._tokens.is_fetcher:
            self._enter_auth_failed(msg.error)
            raise _Restart(f"AuthError: {msg.error}", client_initiated=True)
        self._auth_attempts += 1
        if self._auth_attempts > MAX_AUTH_ATTEMPTS:
            self._enter_auth_failed(msg.error)
            raise _Restart(f"AuthError: {msg.error}", client_initiated=True)
        self._force_refetch = True
        raise _Restart(f"AuthError: {msg.error}", client_initiated=True, immediate=True)

    def _enter_auth_failed(self, reason: str) -> None:
        self._auth_failed_reason = reason
        log.error("authentication failed: %s", reason)

    # ============================================================ the socket loop

    async def _run(self) -> None:
        backoff = Backoff(self._policy)
        ever_connected = False
        assert self._wake is not None
        while not self._closed:
            if self._auth_failed_reason is not None:
                self._state.set(
                    ConnectionStatus(
                        ConnectionState.AUTH_FAILED, reason=self._auth_failed_reason,
                        connection_count=self._connection_count,
                    )
                )
                self._wake.clear()
                await self._wake.wait()
                continue
            # Credentials first, so a fresh socket is never held open while a token is fetched.
            try:
                if self._tokens.is_fetcher and (
                    self._force_refetch or self._tokens.token is None or self._tokens.needs_refresh_now()
                ):
                    force = self._force_refetch or self._tokens.token is not None
                    self._force_refetch = False
                    if await self._tokens.fetch(force) is None:
                        self._enter_auth_failed("token fetcher returned no token")
                        continue
                self._local.auth = self._current_auth()
                self._state.set(
                    ConnectionStatus(
                        ConnectionState.RECONNECTING if ever_connected else ConnectionState.CONNECTING,
                        attempt=backoff.failures, reason=self._last_close_reason,
                        connection_count=self._connection_count,
                    )
                )
                ws = await websockets.connect(
                    self.ws_url,
                    open_timeout=self._policy.open_timeout_s,
                    ping_interval=None,  # the server pings us; silence is watched below
                    close_timeout=2,
                    max_size=None,
                    compression="deflate" if self._compression else None,
                    additional_headers=self._headers or None,
                    **({"ssl": self._ssl} if self._ssl is not None and self.ws_url.startswith("wss:") else {}),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_close_reason = f"{type(exc).__name__}: {exc}"
                await self._backoff(backoff, client_initiated=False)
                continue
            ever_connected = True
            restart = await self._serve(ws, backoff)
            self._last_close_reason = restart.reason
            if self._closed:
                break
            self.stats["reconnects"] += 1
            if self._auth_failed_reason is not None or restart.immediate:
                continue
            await self._backoff(backoff, client_initiated=restart.client_initiated)

    async def _backoff(self, backoff: Backoff, *, client_initiated: bool) -> None:
        assert self._wake is not None
        delay = backoff.next_delay(client_initiated)
        self._state.set(
            ConnectionStatus(
                ConnectionState.RECONNECTING, next_retry_at=time.time() + delay,
                attempt=backoff.failures, reason=self._last_close_reason,
                connection_count=self._connection_count,
            )
        )
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def _serve(self, ws: ClientConnection, backoff: Backoff) -> _Restart:
        """Run one socket until it ends; return why."""
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._ws = ws
        self._restart_request = None
        self._chunks = []
        self._last_rx = loop.time()

        connect: dict[str, Any] = {
            "type": "Connect",
            "sessionId": self.session_id,
            "connectionCount": self._connection_count,
            "lastCloseReason": self._last_close_reason,
            "clientTs": time.time() * 1000,
        }
        if self._max_observed_ts is not None:
            connect["maxObservedTimestamp"] = encode_ts(self._max_observed_ts)
        self._connection_count += 1
        self._remote.restart(self._local.by_id)
        query_set, authenticate = self._local.restart()
        resend, _failed_actions = self._requests.restart()
        for item in (connect, authenticate, query_set, *resend):
            if item is not None:
                outbox.put_nowait(json.dumps(item, separators=(",", ":")))
        self._auth_awaiting_confirmation = authenticate is not None
        self._outbox = outbox
        self._state.set(ConnectionStatus(ConnectionState.LIVE, connection_count=self._connection_count))

        reader = loop.create_task(self._reader(ws, backoff))
        writer = loop.create_task(self._writer(ws, outbox))
        watchdog = loop.create_task(self._watchdog())
        tasks = {reader, writer, watchdog}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            result: _Restart | None = None
            for t in done:
                if not t.cancelled() and t.exception() is None and isinstance(t.result(), _Restart):
                    result = t.result()
                    break
                if not t.cancelled() and t.exception() is not None:
                    log.error("socket task failed", exc_info=t.exception())
                    result = _Restart(f"ClientError: {t.exception()!r}", client_initiated=True)
            if self._restart_request is not None:
                result = self._restart_request
            return result or _Restart("SocketClosed", client_initiated=False)
        finally:
            self._outbox = None
            self._ws = None
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(ws.close(), 2)
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _writer(self, ws: ClientConnection, outbox: asyncio.Queue[str | None]) -> _Restart:
        try:
            while True:
                text = await outbox.get()
                if text is None:
                    return self._restart_request or _Restart("ClientRestart", client_initiated=True)
                await ws.send(text)
        except ConnectionClosed as exc:
            return _Restart(_close_reason(exc), client_initiated=False)

    async def _watchdog(self) -> _Restart:
        """Reconnect when the server has been silent too long (it Pings every <= 15 s)."""
        loop = asyncio.get_running_loop()
        limit = self._policy.server_inactivity_s
        while True:
            left = self._last_rx + limit - loop.time()
            if left <= 0:
                log.warning("server silent for %.0f s; reconnecting", limit)
                return _Restart("InactiveServer", client_initiated=True)
            await asyncio.sleep(min(left + 0.01, 5.0))

    async def _reader(self, ws: ClientConnection, backoff: Backoff) -> _Restart:
        loop = asyncio.get_running_loop()
        try:
            while True:
                raw = await ws.recv()
                self._last_rx = loop.time()
                try:
                    self.handle_frame(raw)
                except _Restart as r:
                    return r
                except (ProtocolError, ValidationError, ValueError) as exc:
                    log.error("protocol error, reconnecting: %s", exc)
                    return _Restart(f"ProtocolError: {exc}", client_initiated=True)
                # The reconnect has proven itself once everything from before it is answered.
                if self._local.synced_past_restart() and self._requests.synced_past_restart():
                    backoff.reset()
        except ConnectionClosed as exc:
            return _Restart(_close_reason(exc), client_initiated=False)

    def _request_restart(self, restart: _Restart) -> None:
        """End the current socket from outside the reader (token refresh, set_auth)."""
        self._restart_request = restart
        if self._outbox is not None:
            self._outbox.put_nowait(None)

    def _send(self, msg: dict[str, Any]) -> bool:
        if self._outbox is None:
            return False
        self._outbox.put_nowait(json.dumps(msg, separators=(",", ":")))
        return True

    # ============================================================ server messages

    def handle_frame(self, raw: str | bytes) -> None:
        """Apply one server frame synchronously (public for the benchmark and tests)."""
        if isinstance(raw, (bytes, bytearray)):
            raw = bytes(raw).decode("utf-8")
        self.stats["frames"] += 1
        try:
            msg = server_message_adapter.validate_json(raw)
        except ValidationError:
            obj = json.loads(raw)
            if isinstance(obj, dict) and obj.get("type") == "TransitionChunk":
                self._on_chunk(obj)
                return
            raise
        if isinstance(msg, Transition):
            self._on_transition(msg, '"$' in raw)
        elif isinstance(msg, MutationResponse):
            if msg.success and msg.ts:
                self._observe_ts(decode_ts(msg.ts))
            req = self._requests.on_response(msg)
            if req is not None:  # a failure: roll its optimistic update back now
                self._refresh_view([], [req.request_id])
        elif isinstance(msg, ActionResponse):
            self._requests.on_response(msg)
        elif isinstance(msg, AuthError):
            self._on_auth_error(msg)
        elif isinstance(msg, FatalError):
            # JS gives up for good here; a terminal app must not die with its server, so we log
            # and reconnect with backoff instead.
            log.error("server fatal error: %s", msg.error)
            raise _Restart(f"FatalError: {msg.error}", client_initiated=False)
        elif isinstance(msg, Ping):
            pass

    def _on_chunk(self, obj: dict[str, Any]) -> None:
        """TransitionChunk (only real servers, only for huge transitions): parts arrive in
        order and concatenate to one Transition."""
        part, total = int(obj["partNumber"]), int(obj["totalParts"])
        if part != len(self._chunks):
            raise ProtocolError(f"TransitionChunk part {part} out of order")
        self._chunks.append(str(obj["chunk"]))
        if part + 1 == total:
            text = "".join(self._chunks)
            self._chunks = []
            self.handle_frame(text)

    def _on_transition(self, msg: Transition, has_special: bool) -> None:
        changed_ids = self._remote.transition(msg, decode_values=has_special)
        self.stats["transitions"] += 1
        self._observe_ts(self._remote.ts)
        local = self._local
        for mod in msg.modifications:
            if isinstance(mod, (QueryUpdated, QueryFailed)):
                local.saw_result(mod.queryId, mod.journal, "journal" in mod.model_fields_set)
            elif isinstance(mod, QueryRemoved):
                local.outstanding_since_restart.discard(mod.queryId)
        start, end = msg.startVersion.identity, msg.endVersion.identity
        if end > start and local.is_current_or_newer_identity(end):
            self._on_auth_confirmed()
        done = self._requests.remove_completed(self._remote.ts)
        self._refresh_view(changed_ids, done)

    def _observe_ts(self, ts: int) -> None:
        if self._max_observed_ts is None or ts > self._max_observed_ts:
            self._max_observed_ts = ts

    def _refresh_view(self, changed_ids: Iterable[int], dropped: list[int]) -> None:
        """Recompute what watchers see after server results changed and/or optimistic updates
        were dropped, then notify. O(changes) with no optimistic update pending; otherwise one
        dict copy plus the replays."""
        local_by_id = self._local.by_id
        remote = self._remote.results
        entries = self._entries
        pairs: list[tuple[str, ViewEntry | None]] = []
        server_seen: list[QueryEntry] = []
        for qid in changed_ids:
            q = local_by_id.get(qid)
            if q is None:
                continue  # unsubscribed while the server was answering
            r = remote.get(qid)
            pairs.append((q.token, ViewEntry(q.udf_path, q.args, r) if r is not None else None))
            e = entries.get(q.token)
            if e is not None and not e.server_seen:
                e.server_seen = True
                server_seen.append(e)
        self._publish(self._optimistic.ingest(pairs, dropped), server_seen)

    def _publish(self, tokens: Iterable[str], woken: Iterable[QueryEntry] = ()) -> None:
        """Set every changed entry first, then run callbacks: one consistent frame."""
        view = self._optimistic.view
        entries = self._entries
        changed: list[QueryEntry] = []
        for t in tokens:
            e = entries.get(t)
            if e is None:
                continue
            ve = view.get(t)
            if e.set_result(ve.result if ve is not None else None):
                changed.append(e)
        for e in changed:
            e.notify()
        for e in woken:  # first server result equal to an optimistic one: wake one-shot queries
            for w in e.watchers:
                for ev in w._events:
                    ev.set()


def _close_reason(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "SocketClosed"
    return frame.reason or f"close {frame.code}"
