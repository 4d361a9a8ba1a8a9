"""One WebSocket connection speaking the Convex sync protocol (PROTOCOL.md section 3).

Two tasks per connection: the *reader* validates and applies client messages (a malformed or
hostile frame ends in FatalError + close, never in an exception escaping), and the *writer*
sends. Mutations from one connection run one at a time in arrival order on a third task.

The writer never queues Transitions: it keeps flags (queries changed, responses owed) and,
when woken and the socket is free, builds *one* Transition from the engine's current shared
results. A slow client therefore receives coalesced Transitions, and memory per connection is
bounded by the number of its queries, not by the number of commits it fell behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError as PydanticValidationError

from collab.backend.auth import AuthFailure, acting_as_identity
from collab.backend.boundary import invalid_argument, safe_message
from collab.backend.faults import Faults
from collab.backend.engine import ADMIN, ANONYMOUS, Engine, Identity, Outcome, SharedQuery
from collab.wire import ValueError_, encode_ts, json_to_convex
from collab.wire.validity import is_valid_text
from collab.wire.messages import (
    Action,
    Authenticate,
    Connect,
    Event,
    ModifyQuerySet,
    Mutation,
    QueryAdd,
    client_message_adapter,
)

if TYPE_CHECKING:
    from collab.backend.auth import Authority

log = logging.getLogger("collab.backend.sync")


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = 8 * 1024 * 1024
    max_pending_mutations: int = 1000
    max_concurrent_actions: int = 64
    max_queries: int = 10_000
    rate_per_s: float = 10_000.0  # messages per second per connection (token bucket)
    rate_burst: float = 20_000.0
    ping_interval_s: float = 15.0


class ProtocolError(Exception):
    """The client broke the protocol: FatalError + close."""


def _no_constants(name: str) -> Any:
    # Python's json reads NaN/Infinity/-Infinity; strict JSON (and every official client) does not.
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str | bytes) -> Any:
    """``json.loads`` minus the non-standard constants (the HTTP API parses bodies with it too)."""
    return json.loads(text, parse_constant=_no_constants)


def _check_protocol_text(raw: Any) -> None:
    """A protocol field (a path, a session id, a token...) that is not valid Unicode breaks the
    protocol itself: FatalError. Function arguments are checked later, per call, so that they
    fail only their call (INVALID_ARGUMENT); an Event's payload is never read."""
    if not isinstance(raw, dict):
        return
    items = list(raw.items())
    if raw.get("type") == "ModifyQuerySet" and isinstance(raw.get("modifications"), list):
        items += [(k, v) for mod in raw["modifications"] if isinstance(mod, dict) for k, v in mod.items()]
    for key, value in items:
        if key in ("args", "event"):
            continue
        if (isinstance(key, str) and not is_valid_text(key)) or (isinstance(value, str) and not is_valid_text(value)):
            raise ProtocolError(f"field {safe_message(str(key))!r} is not valid Unicode")


class RejectedQuery(SharedQuery):
    """A subscription whose arguments were refused at the edge (backend/boundary.py). It is
    never registered with the engine: it holds its failure and is only ever removed."""

    __slots__ = ()

    def __init__(self, query_id: int, path: str, outcome: Outcome) -> None:
        super().__init__(("", f"rejected:{query_id}", None), path, None, ANONYMOUS)
        self.outcome = outcome
        self.version = 1


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _state_version(qs: int, identity: int, ts: int) -> str:
    return f'{{"querySet":{qs},"identity":{identity},"ts":"{encode_ts(ts)}"}}'


def outcome_modification(query_id: int, outcome: Outcome) -> str:
    # value_json and error_data_json come from wire.dumps, which refuses invalid text; only the
    # error message can echo raw client input (an unknown path), so it alone is cleaned.
    if outcome.success:
        return f'{{"type":"QueryUpdated","queryId":{query_id},"value":{outcome.value_json},"logLines":[],"journal":null}}'
    data = f',"errorData":{outcome.error_data_json}' if outcome.error_data_json is not None else ""
    return (
        f'{{"type":"QueryFailed","queryId":{query_id},"errorMessage":{json.dumps(safe_message(outcome.error_message))},'
        f'"logLines":[],"journal":null{data}}}'
    )


def response_frame(kind: str, request_id: int, outcome: Outcome) -> str:
    if outcome.success:
        body = f'"success":true,"result":{outcome.value_json}'
        if kind == "MutationResponse":
            body += f',"ts":"{encode_ts(outcome.ts or 0)}"'
    else:
        body = f'"success":false,"result":{json.dumps(safe_message(outcome.error_message))}'
        if kind == "MutationResponse":
            body += ',"ts":null'
        if outcome.error_data_json is not None:
            body += f',"errorData":{outcome.error_data_json}'
    return f'{{"type":"{kind}","requestId":{request_id},{body},"logLines":[]}}'


class SyncSession:
    def __init__(self, engine: Engine, authority: "Authority", ws: web.WebSocketResponse, limits: Limits,
                 faults: Faults | None = None) -> None:
        self.engine = engine
        self.faults = faults or Faults()
        self.transport: asyncio.BaseTransport | None = None  # set by the server, for fault injection
        self.authority = authority
        self.ws = ws
        self.limits = limits
        self.id = uuid.uuid4().hex[:8]
        self.session_id: str | None = None
        self.clock_skew: float | None = None
        # Versions: last received from the client, and the state last sent.
        self.qs_received = 0
        self.identity_received = 0
        self.sent = (0, 0, 0)
        self.identity: Identity = ANONYMOUS
        self._expiry: asyncio.TimerHandle | None = None
        self.queries: dict[int, SharedQuery] = {}
        self.sent_versions: dict[int, int] = {}
        self.changed: set[int] = set()
        self.removed: list[int] = []
        # (commit ts, frame): a response waits until a flush has reached its commit ts
        self.responses: list[tuple[int, str]] = []
        self.immediate: list[str] = []
        self.transition_owed = False
        self._wake = asyncio.Event()
        self._mutations: asyncio.Queue[Mutation] = asyncio.Queue()
        self._actions: set[asyncio.Task[None]] = set()
        self._bucket = _Bucket(limits.rate_per_s, limits.rate_burst)
        self._last_send = time.monotonic()
        self._closing = False

    def __hash__(self) -> int:
        return id(self)

    # --- engine callbacks ------------------------------------------------------------------------

    def queries_changed(self, query_ids: set[int]) -> None:
        self.changed |= query_ids

    def wake(self) -> None:
        self._wake.set()

    # --- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.ensure_future(self._writer())
        mutator = asyncio.ensure_future(self._mutator())
        for task in (writer, mutator):
            task.add_done_callback(self._task_ended)
        try:
            await self._reader()
        finally:
            self._closing = True
            tasks = [writer, mutator, *self._actions]
            for task in tasks:
                task.cancel()
            # bounded: a task that ignores its cancel must not keep the server from stopping
            await asyncio.wait(tasks, timeout=2.0)
            if self._expiry is not None:
                self._expiry.cancel()
            for qid, sq in list(self.queries.items()):
                self.engine.unsubscribe(self, qid, sq)
            self.queries.clear()
            if not self.ws.closed:
                await self.ws.close()

    async def _reader(self) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    if not self._bucket.take():
                        await self._close(1013, "TooManyRequests: rate limit exceeded")
                        return
                    await self._handle(msg.data)
                except ProtocolError as exc:
                    await self._fatal(str(exc))
                    return
                except _AuthRejected as exc:
                    await self._send_now(json.dumps({
                        "type": "AuthError", "error": safe_message(str(exc)), "baseVersion": exc.base_version,
                        "authUpdateAttempted": True,
                    }))
                    await self._close(1000, "AuthError")
                    return
                except Exception:  # a bug of ours must not kill the process or leak details
                    log.exception("internal error in sync session %s", self.id)
                    await self._close(1011, "InternalServerError")
                    return
            elif msg.type == WSMsgType.BINARY:
                await self._fatal("binary frames are not part of the protocol")
                return
            elif msg.type == WSMsgType.ERROR:
                # e.g. a frame over the size limit (aiohttp closes with 1009)
                log.info("session %s: websocket error %s", self.id, self.ws.exception())
                return
            if self._closing:
                return

    def _task_ended(self, task: "asyncio.Task[Any]") -> None:
        """The writer and the mutator run until the session ends. If one of them dies of a bug
        of ours the client would wait forever for its replies: close with 1011 instead, so it
        reconnects (the reader's own failures are handled in ``_reader``)."""
        if task.cancelled() or self._closing:
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("internal error in sync session %s", self.id, exc_info=exc)
        self._spawn(self._close(1011, "InternalServerError"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)

    async def _send_now(self, frame: str) -> None:
        if not self.ws.closed:
            await self.ws.send_str(frame)
            self._last_send = time.monotonic()

    async def _fatal(self, error: str) -> None:
        error = safe_message(error)  # it may quote what the client sent
        log.info("session %s: FatalError %s", self.id, error)
        try:
            await self._send_now(json.dumps({"type": "FatalError", "error": error}))
        except (ConnectionError, RuntimeError):
            pass
        await self._close(1000, "FatalError")

    async def _close(self, code: int, reason: str) -> None:
        self._closing = True
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason[:120].encode())

    # --- incoming -----------------------------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        try:
            raw = strict_json(text)
        except (ValueError, RecursionError):
            raise ProtocolError("invalid JSON message") from None
        _check_protocol_text(raw)
        try:
            msg = client_message_adapter.validate_python(raw)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ProtocolError(f"invalid message: {where}: {first.get('msg')}") from None
        except RecursionError:
            raise ProtocolError("message nested too deeply") from None
        if isinstance(msg, Connect):
            self._on_connect(msg)
            return
        if self.session_id is None:
            raise ProtocolError(f"{msg.type} before Connect")
        if isinstance(msg, ModifyQuerySet):
            self._on_modify(msg)
        elif isinstance(msg, Mutation):
            if self._mutations.qsize() >= self.limits.max_pending_mutations:
                await self._close(1013, "TooManyConcurrentMutations")
                return
            self._mutations.put_nowait(msg)
        elif isinstance(msg, Action):
            self._on_action(msg)
        elif isinstance(msg, Authenticate):
            self._on_authenticate(msg)
        elif isinstance(msg, Event):
            pass  # client telemetry: nothing to do

    def _on_connect(self, msg: Connect) -> None:
        if self.session_id is not None:
            raise ProtocolError("Connect sent twice on one connection")
        try:
            uuid.UUID(msg.sessionId)
        except ValueError:
            raise ProtocolError("sessionId must be a UUID") from None
        self.session_id = msg.sessionId
        if msg.clientTs:  # finite (wire.messages refuses NaN, Infinity, 1e999)
            skew = msg.clientTs - time.time() * 1000
            self.clock_skew = skew if math.isfinite(skew) else None
        log.debug("session %s: Connect %s #%d (%s)", self.id, msg.sessionId, msg.connectionCount, msg.lastCloseReason)

    @staticmethod
    def _decode_args(args: list[Any]) -> Any:
        """The decoded argument object, or the failed Outcome to answer with when the values
        break the wire rules (INVALID_ARGUMENT, backend/boundary.py). A malformed encoding
        (bad special value, field name, nesting) is a protocol error: FatalError."""
        if len(args) != 1:
            raise ProtocolError("args must be an array holding exactly one object")
        rejected = invalid_argument(args[0])
        if rejected is not None:
            return rejected
        try:
            return json_to_convex(args[0])
        except ValueError_ as exc:
            raise ProtocolError(f"invalid argument value: {exc}") from None

    def _on_modify(self, msg: ModifyQuerySet) -> None:
        if msg.baseVersion != self.qs_received:
            raise ProtocolError(f"BaseVersionMismatch: query set is at {self.qs_received}, got base {msg.baseVersion}")
        if msg.newVersion <= msg.baseVersion:
            raise ProtocolError("newVersion must be greater than baseVersion")
        for mod in msg.modifications:
            if isinstance(mod, QueryAdd):
                if mod.queryId in self.queries:
                    raise ProtocolError(f"query id {mod.queryId} added twice")
                if len(self.queries) >= self.limits.max_queries:
                    raise ProtocolError(f"more than {self.limits.max_queries} queries on one connection")
                args = self._decode_args(mod.args)
                if isinstance(args, Outcome):
                    self.queries[mod.queryId] = RejectedQuery(mod.queryId, mod.udfPath, args)
                else:
                    self.queries[mod.queryId] = self.engine.subscribe(self, mod.queryId, mod.udfPath, args, self.identity)
                self.changed.add(mod.queryId)
            else:
                sq = self.queries.pop(mod.queryId, None)
                if sq is None:
                    raise ProtocolError(f"query id {mod.queryId} removed but never added")
                self.engine.unsubscribe(self, mod.queryId, sq)
                self.sent_versions.pop(mod.queryId, None)
                self.changed.discard(mod.queryId)
                self.removed.append(mod.queryId)
        self.qs_received = msg.newVersion
        self.transition_owed = True
        self.wake()

    def _on_authenticate(self, msg: Authenticate) -> None:
        if msg.baseVersion != self.identity_received:
            raise ProtocolError(f"identity version mismatch: at {self.identity_received}, got base {msg.baseVersion}")
        expires_at: float | None = None
        try:
            if msg.tokenType == "User":
                if not msg.value:
                    raise AuthFailure("User authentication needs a token")
                claims, expires_at = self.authority.verify(msg.value)
                identity = Identity(claims=claims)
            elif msg.tokenType == "Admin":
                acting = self.authority.check_admin(msg.value or "")
                attrs = msg.impersonating or msg.acting_as
                if attrs is not None and acting is None:
                    acting = acting_as_identity(attrs)
                identity = Identity(claims=acting, admin=True) if acting else ADMIN
            else:
                identity = ANONYMOUS
        except AuthFailure as exc:
            raise _AuthRejected(str(exc), self.identity_received) from None
        self.identity_received += 1
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if expires_at is not None:
            delay = max(0.0, expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self._token_expired)
        if identity != self.identity:
            self.identity = identity
            # Every query re-runs under the new identity (as the real server does).
            for qid, sq in list(self.queries.items()):
                if isinstance(sq, RejectedQuery):
                    continue  # refused whoever asks
                self.engine.unsubscribe(self, qid, sq)
                self.queries[qid] = self.engine.subscribe(self, qid, sq.path, sq.args, identity)
                self.sent_versions.pop(qid, None)
                self.changed.add(qid)
        self.transition_owed = True
        self.wake()

    def _token_expired(self) -> None:
        async def expire() -> None:
            try:
                await self._send_now(json.dumps({
                    "type": "AuthError", "error": "Token expired", "baseVersion": self.identity_received,
                    "authUpdateAttempted": False,
                }))
                await self._close(1000, "AuthError")
            except (ConnectionError, RuntimeError):
                pass

        self._spawn(expire())

    def _on_action(self, msg: Action) -> None:
        if len(self._actions) >= self.limits.max_concurrent_actions:
            failed = Outcome(False, error_message="TooManyConcurrentActions: wait for running actions to finish")
            self.immediate.append(response_frame("ActionResponse", msg.requestId, failed))
            self.wake()
            return
        args = self._decode_args(msg.args)
        if isinstance(args, Outcome):
            self.immediate.append(response_frame("ActionResponse", msg.requestId, args))
            self.wake()
            return

        async def run() -> None:
            try:
                outcome = await self.engine.run_action(msg.udfPath, [args], self.identity)
            except Exception:  # a bug of ours: the caller still gets an answer, never silence
                log.exception("internal error running action %s", safe_message(msg.udfPath))
                outcome = Outcome(False, error_message="InternalServerError: the action could not be run")
            self.immediate.append(response_frame("ActionResponse", msg.requestId, outcome))
            self.wake()

        self._spawn(run())

    async def _mutator(self) -> None:
        """Runs this connection's mutations one at a time, in arrival order."""
        done = 0
        while True:
            msg = await self._mutations.get()
            try:
                args = self._decode_args(msg.args)
            except ProtocolError as exc:
                await self._fatal(str(exc))
                return
            if isinstance(args, Outcome):
                outcome = args
            else:
                outcome = self.engine.run_mutation(
                    msg.udfPath, [args], self.identity, session_request=(self.session_id or "", msg.requestId)
                )
            if outcome.success and self.faults.drop_reply_after_commit and self.faults.take_drop_reply(msg.udfPath):
                log.warning("fault injected: dropping connection after commit of %s", msg.udfPath)
                if self.transport is not None:
                    self.transport.abort()  # no close frame: as if the network died
                return
            self.responses.append((outcome.ts or 0, response_frame("MutationResponse", msg.requestId, outcome)))
            # Every MutationResponse is followed by a Transition with ts >= its commit ts,
            # also after failures (the Python client waits for it).
            self.engine.owe_transition(self)
            done += 1
            if done % 32 == 0:
                await asyncio.sleep(0)  # let other connections in during a burst

    # --- outgoing -----------------------------------------------------------------------------------

    async def _writer(self) -> None:
        ping = json.dumps({"type": "Ping"})
        while True:
            idle_for = time.monotonic() - self._last_send
            timeout = max(0.1, self.limits.ping_interval_s - idle_for)
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # races with the event firing, and the session would never finish closing.
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                if time.monotonic() - self._last_send >= self.limits.ping_interval_s:
                    await self._send_now(ping)
                continue
            self._wake.clear()
            for frame in self._take_frames():
                await self._send_now(frame)

    def _take_frames(self) -> list[str]:
        """Everything owed to the client now, as frames, built at one ts (no awaits here).

        The Transition is at the engine's snapshot ts (its last flush): every cached result
        is valid there, even while newer commits wait for the next flush, so a busy writer
        elsewhere never starves this client. A MutationResponse whose commit is newer than
        the snapshot stays back until a flush reaches it, so the Transition that follows it
        always includes its writes (read-your-writes, also for the Python client)."""
        frames = self.immediate
        self.immediate = []
        snapshot = self.engine.snapshot_ts
        ready = [frame for ts, frame in self.responses if ts <= snapshot]
        if len(ready) == len(self.responses):
            self.responses = []
        else:
            self.responses = [(ts, frame) for ts, frame in self.responses if ts > snapshot]
            self.engine.owe_transition(self)
        responses = ready
        frames += responses
        mods: list[str] = [f'{{"type":"QueryRemoved","queryId":{qid}}}' for qid in self.removed]
        self.removed = []
        for qid in sorted(self.changed):
            sq = self.queries.get(qid)
            if sq is None or sq.outcome is None or self.sent_versions.get(qid) == sq.version:
                continue
            mods.append(outcome_modification(qid, sq.outcome))
            self.sent_versions[qid] = sq.version
        self.changed.clear()
        end = (self.qs_received, self.identity_received, max(self.sent[2], snapshot))
        if mods or responses or self.transition_owed or end[:2] != self.sent[:2]:
            skew = "null" if self.clock_skew is None else repr(round(self.clock_skew, 3))
            frames.append(
                f'{{"type":"Transition","startVersion":{_state_version(*self.sent)},'
                f'"endVersion":{_state_version(*end)},"modifications":[{",".join(mods)}],'
                f'"clientClockSkew":{skew},"serverTs":{time.time_ns()}}}'
            )
            self.sent = end
            self.transition_owed = False
        return frames


class _AuthRejected(Exception):
    def __init__(self, message: str, base_version: int) -> None:
        super().__init__(message)
        self.base_version = base_version
