"""Mutations and actions in flight, keyed by requestId.

Life of a mutation (PROTOCOL.md 3.3): sent -> MutationResponse. A failure resolves at once. A
success is parked as *completed* with its commit ts and resolves only when a Transition with
``ts >= commit ts`` is applied, at the same moment its optimistic update is dropped, so the
caller (and every watcher) reads its own write with no flicker.

On reconnect every mutation is resent with its original requestId, completed ones included
(the server dedupes on (sessionId, requestId) and answers with the original ts, which also makes
it move us past that ts). Actions are not idempotent: in-flight actions fail with
:class:`ConnectionLost` instead of being resent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from collab.backend_client.errors import ConnectionLost, function_error
from collab.wire.messages import ActionResponse, MutationResponse
from collab.wire.values import decode_ts, json_to_convex

__all__ = ["Request", "RequestManager"]

Status = Literal["not_sent", "requested", "completed"]


@dataclass(slots=True)
class Request:
    request_id: int
    kind: Literal["mutation", "action"]
    message: dict[str, Any]
    future: asyncio.Future[Any]
    status: Status
    requested_at: float = field(default_factory=time.monotonic)
    # set once a successful MutationResponse arrives
    ts: int | None = None
    result: Any = None


class RequestManager:
    def __init__(self) -> None:
        self.inflight: dict[int, Request] = {}
        self.older_than_restart: set[int] = set()

    def request(
        self, request_id: int, kind: Literal["mutation", "action"], message: dict[str, Any],
        sent: bool,
    ) -> Request:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # The caller may have stopped waiting (cancelled); don't warn about an unread error.
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        req = Request(request_id, kind, message, fut, "requested" if sent else "not_sent")
        self.inflight[request_id] = req
        return req

    def on_response(self, msg: MutationResponse | ActionResponse) -> Request | None:
        """Record a response. Returns the request if it is now *finished* (failure or action),
        in which case the caller must drop its optimistic update; successes of mutations are
        parked until :meth:`remove_completed`."""
        req = self.inflight.get(msg.requestId)
        # Unknown id: a replayed mutation that a Transition already resolved (JS ignores these
        # too). Completed: a replay's duplicate answer. Neither changes anything.
        if req is None or req.status == "completed":
            return None
        kind = req.kind
        udf_path = req.message.get("udfPath")
        if msg.success:
            value = json_to_convex(msg.result)
            if kind == "mutation":
                req.status = "completed"
                req.result = value
                req.ts = decode_ts(msg.ts) if msg.ts else 0
                return None
            self._finish(req)
            if not req.future.done():
                req.future.set_result(value)
            return req
        has_data = "errorData" in msg.model_fields_set
        err = function_error(
            str(msg.result),
            json_to_convex(msg.errorData) if has_data else None,
            has_data,
            udf_path=udf_path,
            kind=kind,
            log_lines=msg.logLines,
        )
        self._finish(req)
        if not req.future.done():
            req.future.set_exception(err)
        return req

    def remove_completed(self, ts: int) -> list[int]:
        """Resolve every completed mutation whose commit ts the client has now reached."""
        done: list[int] = []
        for rid, req in self.inflight.items():
            if req.status == "completed" and req.ts is not None and req.ts <= ts:
                done.append(rid)
        for rid in done:
            req = self.inflight[rid]
            self._finish(req)
            if not req.future.done():
                req.future.set_result(req.result)
        return done

    def _finish(self, req: Request) -> None:
        self.inflight.pop(req.request_id, None)
        self.older_than_restart.discard(req.request_id)

    def restart(self) -> tuple[list[dict[str, Any]], list[int]]:
        """Messages to resend on a new socket, and the ids of actions failed for good."""
        self.older_than_restart = set(self.inflight)
        resend: list[dict[str, Any]] = []
        failed: list[int] = []
        for rid, req in list(self.inflight.items()):
            if req.kind == "mutation" or req.status == "not_sent":
                req.status = "completed" if req.status == "completed" else "requested"
                resend.append(req.message)
            else:
                self._finish(req)
                failed.append(rid)
                if not req.future.done():
                    req.future.set_exception(
                        ConnectionLost(
                            f"connection lost while action {req.message.get('udfPath')!r}"
                            " was in flight; it may or may not have run"
                        )
                    )
        return resend, failed

    def fail_all(self, exc_factory: type[Exception], message: str) -> list[int]:
        ids = list(self.inflight)
        for req in self.inflight.values():
            if not req.future.done():
                req.future.set_exception(exc_factory(message))
        self.inflight.clear()
        self.older_than_restart.clear()
        return ids

    def has_inflight(self) -> bool:
        return bool(self.inflight)

    def synced_past_restart(self) -> bool:
        return not self.older_than_restart

