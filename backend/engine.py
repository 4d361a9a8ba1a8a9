"""The reactive engine: runs functions, commits mutations, keeps live queries fresh.

Everything that touches the database runs on the event-loop thread, one call at a time, so
mutations are serial (commit order = serial order) and every query result computed between
two commits is at one snapshot.

After a commit the write set is matched against the read sets of the shared live queries
(invalidation.py); the matched ones are marked dirty and a *flush* is scheduled on the loop.
A flush re-runs every dirty query at the current ts and then wakes the sync sessions whose
queries changed (or that owe a client a Transition). Several commits in one loop turn share
one flush, which is where bursts get coalesced.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from collab.backend.database import DatabaseReader, DatabaseWriter, ReadSet
from collab.backend.errors import ConvexError
from collab.backend.functions import App, FunctionDef, canonical_path
from collab.backend.ids import InvalidId, new_id, table_number_of
from collab.backend.invalidation import SubscriptionIndex
from collab.backend.limits import DEFAULT_LIMITS, LimitExceeded, Meter, TransactionLimits, check_value
from collab.backend.storage import Storage
from collab.backend.validators import ValidationError, v
from collab.wire import ValueError_, convex_to_json, dumps, loads
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

log = logging.getLogger("collab.backend.engine")

SCHEDULED_TABLE_NUMBER = 9  # system ids for scheduled jobs (user tables start at 10001)
_ANY_OBJECT = v.object({})


@dataclass(frozen=True)
class Identity:
    """Who is calling. ``claims`` is what ``ctx.auth.get_user_identity()`` returns."""

    claims: dict[str, Any] | None = None
    admin: bool = False

    @property
    def key(self) -> str | None:
        return self.claims.get("tokenIdentifier") if self.claims else None

    def __hash__(self) -> int:
        return hash((self.key, self.admin))


ANONYMOUS = Identity()
ADMIN = Identity(admin=True)


@dataclass
class Outcome:
    """The result of one function call, with its value already Convex-JSON encoded."""

    success: bool
    value_json: str = "null"
    error_message: str = ""
    error_data_json: str | None = None
    log_lines: list[str] = field(default_factory=list)
    ts: int | None = None

    @property
    def value(self) -> Any:
        return loads(self.value_json)

    def fingerprint(self) -> tuple[bool, str, str, str | None]:
        return (self.success, self.value_json, self.error_message, self.error_data_json)


class Session(Protocol):
    """What the engine needs of a sync session (server.py)."""

    def queries_changed(self, query_ids: set[int]) -> None: ...

    def wake(self) -> None: ...


class SharedQuery:
    """One live (path, args, identity), shared by every session subscribed to it."""

    __slots__ = ("key", "path", "args", "identity", "outcome", "version", "subscribers", "reads")

    def __init__(self, key: tuple[str, str, str | None], path: str, args: Any, identity: Identity) -> None:
        self.key = key
        self.path = path
        self.args = args
        self.identity = identity
        self.outcome: Outcome | None = None
        self.version = 0
        self.subscribers: dict[Session, set[int]] = {}
        self.reads = ReadSet()


class _Auth:
    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def get_user_identity(self) -> dict[str, Any] | None:
        return dict(self._identity.claims) if self._identity.claims else None


class _MutationScheduler:
    """``ctx.scheduler`` inside a mutation: jobs are written in the mutation's transaction."""

    def __init__(self, engine: "Engine", db: DatabaseWriter) -> None:
        self._engine, self._db = engine, db
        self.count = 0

    def run_after(self, delay_ms: float, fn: Any, args: dict[str, Any] | None = None) -> str:
        return self.run_at(self._engine.now_ms() + max(0.0, float(delay_ms)), fn, args)

    def run_at(self, timestamp_ms: float, fn: Any, args: dict[str, Any] | None = None) -> str:
        path = _fn_path(fn)
        if self._engine.app.lookup(path) is None:
            raise ValueError(f"cannot schedule unknown function {path!r}")
        if self._db.meter is not None:
            self._db.meter.schedule()
        job_id = new_id(SCHEDULED_TABLE_NUMBER)
        self._db.storage.db.execute(
            "INSERT INTO scheduled (id, run_at_ms, udf_path, args, state, created_ts) "
            "VALUES (?, ?, ?, ?, 'pending', ?)",
            (job_id, float(timestamp_ms), canonical_path(path), dumps(args or {}), self._db.ts),
        )
        self.count += 1
        return job_id

    def cancel(self, job_id: str) -> None:
        self._db.storage.db.execute(
            "UPDATE scheduled SET state = 'canceled' WHERE id = ? AND state = 'pending'", (job_id,)
        )


class QueryCtx:
    def __init__(self, db: DatabaseReader, identity: Identity) -> None:
        self.db = db
        self.auth = _Auth(identity)


class _SeededRandom:
    """Random bytes the way a Convex mutation gets them (``crypto.getRandomValues``): a
    generator seeded once per execution (ChaCha there, ChaCha20 here), so a function never reads
    the OS source itself and one execution's randomness is reproducible from its seed."""

    def __init__(self, seed: bytes) -> None:
        self._stream = Cipher(algorithms.ChaCha20(seed, b"\0" * 16), mode=None).encryptor()

    def read(self, n: int) -> bytes:
        return self._stream.update(b"\0" * n)


class MutationCtx:
    def __init__(self, engine: "Engine", db: DatabaseWriter, identity: Identity) -> None:
        self.db = db
        self.auth = _Auth(identity)
        self.scheduler = _MutationScheduler(engine, db)
        self._engine = engine
        self._random: _SeededRandom | None = None

    def now(self) -> float:
        """Wall clock in ms (``Date.now()``): fine in mutations, never used by queries."""
        return self._engine.now_ms()

    def random_bytes(self, n: int) -> bytes:
        """``crypto.getRandomValues`` of a Convex mutation (seeded per execution)."""
        if self._random is None:
            self._random = _SeededRandom(os.urandom(32))
        return self._random.read(n)

    def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        """Call another query inside this transaction (its reads join this mutation's)."""
        target = self._engine._resolve(fn, "query", internal_ok=True)
        return target.handler(QueryCtx(self.db, self.auth._identity), args or {})


class ActionCtx:
    def __init__(self, engine: "Engine", identity: Identity) -> None:
        self._engine = engine
        self._identity = identity
        self.auth = _Auth(identity)
        self.scheduler = _ActionScheduler(engine)

    def now(self) -> float:
        return self._engine.now_ms()

    def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return self._engine.call_value("query", _fn_path(fn), args or {}, self._identity, internal_ok=True)

    def run_mutation(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return self._engine.call_value("mutation", _fn_path(fn), args or {}, self._identity, internal_ok=True)

    async def run_action(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        outcome = await self._engine.run_action(_fn_path(fn), [args or {}], self._identity, internal_ok=True)
        return _raise_or_value(outcome)


class _ActionScheduler:
    def __init__(self, engine: "Engine") -> None:
        self._engine = engine

    def run_after(self, delay_ms: float, fn: Any, args: dict[str, Any] | None = None) -> str:
        return self.run_at(self._engine.now_ms() + max(0.0, float(delay_ms)), fn, args)

    def run_at(self, timestamp_ms: float, fn: Any, args: dict[str, Any] | None = None) -> str:
        return self._engine.schedule(timestamp_ms, _fn_path(fn), args or {})


def _fn_path(fn: Any) -> str:
    if isinstance(fn, FunctionDef):
        if not fn.path:
            raise ValueError("function reference is not registered in the app")
        return fn.path
    if isinstance(fn, str):
        return fn
    raise TypeError(f"not a function reference: {fn!r}")


def _raise_or_value(outcome: Outcome) -> Any:
    if outcome.success:
        return outcome.value
    if outcome.error_data_json is not None:
        raise ConvexError(loads(outcome.error_data_json))
    raise RuntimeError(outcome.error_message)


def _error_outcome(exc: BaseException) -> Outcome:
    if isinstance(exc, ConvexError):
        try:
            data_json = dumps(exc.data)
        except (ValueError_, TypeError, ValueError):
            data_json = dumps(str(exc.data))
        text = exc.data if isinstance(exc.data, str) else data_json
        return Outcome(False, error_message=f"Uncaught ConvexError: {text}", error_data_json=data_json)
    if isinstance(exc, ValidationError):
        return Outcome(False, error_message=f"ArgumentValidationError: {exc}")
    if isinstance(exc, LimitExceeded):
        # Convex raises these inside the call that crossed the limit (a JS Error).
        return Outcome(False, error_message=f"Uncaught Error: {exc}")
    return Outcome(False, error_message=f"Uncaught {type(exc).__name__}: {exc}")


class FunctionNotFoundError(Exception):
    pass


class Engine:
    def __init__(self, storage: Storage, app: App, *, clock: Callable[[], float] | None = None,
                 limits: TransactionLimits = DEFAULT_LIMITS) -> None:
        self.storage = storage
        self.app = app
        # Milliseconds since the epoch; injectable so lease/expiry tests can move time.
        self.now_ms: Callable[[], float] = clock or (lambda: time.time() * 1000.0)
        # Convex's per-transaction limits (limits.py); tests may lower them.
        self.limits = limits
        self.index = SubscriptionIndex()
        self.queries: dict[tuple[str, str, str | None], SharedQuery] = {}
        self._dirty: set[SharedQuery] = set()
        self._owed: set[Session] = set()
        self._flush_handle: asyncio.Handle | None = None
        self.snapshot_ts = storage.last_ts
        self.stats = {"commits": 0, "query_runs": 0, "flushes": 0}
        self.commit_listeners: list[Callable[[int, int], None]] = []
        self._scheduler_wake = asyncio.Event()
        self._scheduler_task: asyncio.Task[None] | None = None
        self._running_actions: set[asyncio.Task[Any]] = set()
        self._fail_interrupted_jobs()

    # --- resolving and validating ---------------------------------------------------------------

    def _resolve(self, path: Any, kind: str, *, internal_ok: bool) -> FunctionDef:
        fn = self.app.lookup(_fn_path(path))
        if fn is None or fn.kind != kind or (fn.visibility == "internal" and not internal_ok):
            raise FunctionNotFoundError(f"Could not find public function for '{canonical_path(_fn_path(path))}'.")
        return fn

    def _prepare(
        self, path: Any, kind: str, args: Any, identity: Identity, internal_ok: bool
    ) -> tuple[FunctionDef, dict[str, Any]] | Outcome:
        """Resolve and validate a call; an Outcome is the error to answer with instead."""
        try:
            fn = self._resolve(path, kind, internal_ok=internal_ok or identity.admin)
            return fn, self._args(fn, args)
        except FunctionNotFoundError as exc:
            return Outcome(False, error_message=str(exc))
        except (ValidationError, LimitExceeded) as exc:
            return _error_outcome(exc)

    def _args(self, fn: FunctionDef, args: Any) -> dict[str, Any]:
        if isinstance(args, list):
            if len(args) != 1:
                raise ValidationError("Expected exactly one argument object.", "", args, _ANY_OBJECT)
            args = args[0]
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ValidationError("Arguments must be an object.", "", args, _ANY_OBJECT)
        check_value(args)  # Convex's array and object limits hold for arguments too
        if fn.args is not None:
            fn.args.check(args, "", self._table_of)  # v.id("t") checks the id's table too
        return args

    def _table_of(self, doc_id: str) -> str | None:
        try:
            return self.storage.tables_by_number.get(table_number_of(doc_id))
        except InvalidId:
            return None

    # --- queries ----------------------------------------------------------------------------------

    def _execute_query(self, fn: FunctionDef, args: dict[str, Any], identity: Identity) -> tuple[Outcome, ReadSet]:
        meter = Meter(self.limits)
        db = DatabaseReader(self.storage, self.app.schema, meter)
        self.stats["query_runs"] += 1
        try:
            value = fn.handler(QueryCtx(db, identity), args)
            if inspect.isawaitable(value):
                raise TypeError("queries must be plain functions, not async")
            meter.check_time()  # also re-raises a limit the function caught
            check_value(value)
            return Outcome(True, value_json=dumps(value)), db.reads
        except Exception as exc:  # any failure of user code becomes a function error
            if not isinstance(exc, (ConvexError, ValidationError, LimitExceeded)):
                log.debug("query %s failed:\n%s", fn.path, traceback.format_exc())
            return _error_outcome(exc), db.reads

    def run_query(self, path: str, args: Any, identity: Identity = ANONYMOUS, *, internal_ok: bool = False) -> Outcome:
        """One-shot query at the latest ts."""
        prepared = self._prepare(path, "query", args, identity, internal_ok)
        if isinstance(prepared, Outcome):
            return prepared
        outcome, _ = self._execute_query(*prepared, identity)
        outcome.ts = self.storage.last_ts
        return outcome

    # --- mutations --------------------------------------------------------------------------------

    def run_mutation(
        self,
        path: str,
        args: Any,
        identity: Identity = ANONYMOUS,
        *,
        session_request: tuple[str, int] | None = None,
        internal_ok: bool = False,
        in_transaction: Callable[[DatabaseWriter], None] | None = None,
    ) -> Outcome:
        """Run a mutation in its own transaction. ``session_request`` = (sessionId, requestId)
        makes it idempotent: a replay returns the recorded result without running again."""
        if session_request is not None:
            seen = self.storage.session_request(*session_request)
            if seen is not None:
                return Outcome(True, value_json=seen[1], ts=seen[0])
        prepared = self._prepare(path, "mutation", args, identity, internal_ok)
        if isinstance(prepared, Outcome):
            return prepared
        fn, parsed = prepared
        base_ts = self.storage.begin()
        meter = Meter(self.limits)
        db = DatabaseWriter(self.storage, self.app.schema, base_ts, meter)
        ctx = MutationCtx(self, db, identity)
        try:
            value = fn.handler(ctx, parsed)
            if inspect.isawaitable(value):
                raise TypeError("mutations must be plain functions, not async")
            meter.check_time()  # also re-raises a limit the function caught
            check_value(value)
            value_json = dumps(value)
            if in_transaction is not None:
                in_transaction(db)
            commit_ts = db.commit_ts
            if session_request is not None:
                self.storage.record_session_request(*session_request, commit_ts, value_json)
            self.storage.commit(commit_ts)
        except Exception as exc:
            self.storage.rollback()  # a limit exceeded, like any failure, changes nothing
            if not isinstance(exc, (ConvexError, ValidationError, LimitExceeded)):
                log.debug("mutation %s failed:\n%s", path, traceback.format_exc())
            return _error_outcome(exc)
        self._after_commit(db, commit_ts, scheduled=ctx.scheduler.count)
        return Outcome(True, value_json=value_json, ts=commit_ts)

    def call_value(self, kind: str, path: str, args: dict[str, Any], identity: Identity, *, internal_ok: bool = False) -> Any:
        """Run a query or mutation and return its value, raising its error (for actions)."""
        runner = self.run_query if kind == "query" else self.run_mutation
        return _raise_or_value(runner(path, [args], identity, internal_ok=internal_ok))

    def _after_commit(self, db: DatabaseWriter, ts: int, *, scheduled: int = 0) -> None:
        self.stats["commits"] += 1
        for listener in self.commit_listeners:
            listener(ts, db.writes.documents)
        if scheduled:
            self._scheduler_wake.set()
        for key in self.index.affected(db.writes.keys):
            self._dirty.add(self.queries[key])  # type: ignore[index]
        self._schedule_flush()

    # --- actions ----------------------------------------------------------------------------------

    async def run_action(self, path: str, args: Any, identity: Identity = ANONYMOUS, *, internal_ok: bool = False) -> Outcome:
        prepared = self._prepare(path, "action", args, identity, internal_ok)
        if isinstance(prepared, Outcome):
            return prepared
        fn, parsed = prepared
        try:
            result = fn.handler(ActionCtx(self, identity), parsed)
            if inspect.isawaitable(result):
                result = await result
            return Outcome(True, value_json=dumps(result))
        except Exception as exc:
            if not isinstance(exc, (ConvexError, ValidationError)):
                log.debug("action %s failed:\n%s", path, traceback.format_exc())
            return _error_outcome(exc)

    # --- subscriptions ------------------------------------------------------------------------------

    def subscribe(self, session: Session, query_id: int, path: str, args: Any, identity: Identity) -> SharedQuery:
        path = canonical_path(path)
        args_key = json.dumps(convex_to_json(args), sort_keys=True, separators=(",", ":"))
        key = (path, args_key, identity.key if not identity.admin else "__admin__")
        sq = self.queries.get(key)
        if sq is None:
            sq = SharedQuery(key, path, args, identity)
            self.queries[key] = sq
            if self._flush_handle is None:
                self._rerun(sq)  # the db is at snapshot_ts: safe to compute now
            else:
                self._dirty.add(sq)  # a flush is pending: compute with the others at its ts
        sq.subscribers.setdefault(session, set()).add(query_id)
        return sq

    def unsubscribe(self, session: Session, query_id: int, sq: SharedQuery) -> None:
        ids = sq.subscribers.get(session)
        if ids is None:
            return
        ids.discard(query_id)
        if not ids:
            del sq.subscribers[session]
        if not sq.subscribers:
            self.queries.pop(sq.key, None)
            self.index.remove(sq.key)
            self._dirty.discard(sq)

    def _rerun(self, sq: SharedQuery) -> bool:
        prepared = self._prepare(sq.path, "query", sq.args, sq.identity, False)
        if isinstance(prepared, Outcome):
            outcome, reads = prepared, ReadSet()
        else:
            outcome, reads = self._execute_query(*prepared, sq.identity)
        sq.reads = reads
        self.index.add(sq.key, reads)
        changed = sq.outcome is None or sq.outcome.fingerprint() != outcome.fingerprint()
        sq.outcome = outcome
        if changed:
            sq.version += 1
        return changed

    def owe_transition(self, session: Session) -> None:
        """A session must send a Transition after the next flush (e.g. after a mutation)."""
        self._owed.add(session)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()  # no loop (engine-only tests): flush at once
                return
            self._flush_handle = loop.call_soon(self.flush)

    @property
    def flush_pending(self) -> bool:
        return self._flush_handle is not None

    def flush(self) -> None:
        """Re-run dirty queries at the current ts and wake the sessions concerned."""
        self._flush_handle = None
        self.stats["flushes"] += 1
        dirty, self._dirty = self._dirty, set()
        woken: set[Session] = self._owed
        self._owed = set()
        for sq in dirty:
            if sq.key not in self.queries:
                continue
            if self._rerun(sq):
                for session, ids in sq.subscribers.items():
                    session.queries_changed(ids)
                    woken.add(session)
        self.snapshot_ts = self.storage.last_ts
        for session in woken:
            session.wake()

    # --- scheduler --------------------------------------------------------------------------------

    def schedule(self, timestamp_ms: float, path: str, args: dict[str, Any]) -> str:
        """Schedule from outside a mutation (actions): its own small transaction."""
        if self.app.lookup(path) is None:
            raise ValueError(f"cannot schedule unknown function {path!r}")
        job_id = new_id(SCHEDULED_TABLE_NUMBER)
        ts = self.storage.begin()
        self.storage.db.execute(
            "INSERT INTO scheduled (id, run_at_ms, udf_path, args, state, created_ts) VALUES (?, ?, ?, ?, 'pending', ?)",
            (job_id, float(timestamp_ms), canonical_path(path), dumps(args), ts),
        )
        self.storage.commit(ts)
        self._scheduler_wake.set()
        return job_id

    def _fail_interrupted_jobs(self) -> None:
        # An action that was running when the process died ran at most once; say so.
        with self.storage.db:
            self.storage.db.execute(
                "UPDATE scheduled SET state = 'failed', error = 'interrupted by a restart' WHERE state = 'running'"
            )

    def next_job(self) -> tuple[str, float, str, str] | None:
        return self.storage.db.execute(
            "SELECT id, run_at_ms, udf_path, args FROM scheduled WHERE state = 'pending' ORDER BY run_at_ms LIMIT 1"
        ).fetchone()

    def run_due_jobs(self) -> list[asyncio.Task[Any]]:
        """Run every job due by ``now_ms()``; mutations run exactly once (their completion is
        recorded in their own transaction). Returns the tasks of started actions."""
        started: list[asyncio.Task[Any]] = []
        while True:
            job = self.next_job()
            if job is None or job[1] > self.now_ms():
                return started
            job_id, _, path, args_text = job
            fn = self.app.lookup(path)
            args = loads(args_text)
            if fn is None:
                self._finish_job(job_id, "failed", f"function {path} no longer exists")
            elif fn.kind == "mutation":
                def mark(db: DatabaseWriter, _id: str = job_id) -> None:
                    db.storage.db.execute(
                        "UPDATE scheduled SET state = 'success', completed_ts = ? WHERE id = ?", (db.ts, _id)
                    )

                outcome = self.run_mutation(path, [args], ADMIN, internal_ok=True, in_transaction=mark)
                if not outcome.success:
                    self._finish_job(job_id, "failed", outcome.error_message)
            elif fn.kind == "action":
                self._finish_job(job_id, "running", None)
                task = asyncio.ensure_future(self._run_scheduled_action(job_id, path, args))
                self._running_actions.add(task)
                task.add_done_callback(self._running_actions.discard)
                started.append(task)
            else:
                self._finish_job(job_id, "failed", "only mutations and actions can be scheduled")

    async def _run_scheduled_action(self, job_id: str, path: str, args: dict[str, Any]) -> None:
        outcome = await self.run_action(path, [args], ADMIN, internal_ok=True)
        self._finish_job(job_id, "success" if outcome.success else "failed", None if outcome.success else outcome.error_message)

    def _finish_job(self, job_id: str, state: str, error: str | None) -> None:
        ts = self.storage.begin()
        self.storage.db.execute(
            "UPDATE scheduled SET state = ?, error = ?, completed_ts = ? WHERE id = ?", (state, error, ts, job_id)
        )
        self.storage.commit(ts)

    async def scheduler_loop(self) -> None:
        while True:
            self._scheduler_wake.clear()
            try:
                self.run_due_jobs()
            except Exception:  # a broken job must not stop the scheduler
                log.exception("scheduler error")
            job = self.next_job()
            timeout = None if job is None else max(0.0, (job[1] - self.now_ms()) / 1000.0)
            try:
                async with asyncio.timeout(min(timeout, 5.0) if timeout is not None else None):
                    await self._scheduler_wake.wait()
            except TimeoutError:
                pass

    def start(self) -> None:
        self._scheduler_task = asyncio.ensure_future(self.scheduler_loop())

    async def stop(self) -> None:
        tasks = [t for t in (self._scheduler_task, *self._running_actions) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

