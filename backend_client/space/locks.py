"""The lock hold (DESIGN 2.4): one fenced, leased hold of an artifact's lock, the same for a
human's editor and an agent's revision.

acquire (or wait in the FIFO queue) -> renew in the background -> save (one transaction: fence
check, new version, release, hand-over to the queue) or release. Every write under the hold
carries its fencing token; acquire and save carry idempotency keys, so a retry after a
reconnect never applies twice (agents derive them from the run attempt, so even a restarted
attempt reuses them; humans take fresh ones per call).

The hold watches its lease on its own monotonic clock: if no renewal got through and the lease
is about to end (``stop_margin_s`` before it), the hold counts as lost and the writer must stop
(a paused or partitioned holder never clobbers the next one: the backend would refuse it
anyway). A renewal the backend refuses (expired, forced open, the member removed) loses the
hold at once; a renewal that did not get through (connection trouble) is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collab.backend_client.api import api
from collab.backend_client.client import ConvexClient, new_idempotency_key
from collab.backend_client.errors import ConvexError
from collab.backend_client.space.errors import FENCE_LOST, LockConflict, Queued, error_code

__all__ = ["LeasePolicy", "LockHold"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeasePolicy:
    """Lease timing (the config's ``[locks]``)."""

    ttl_s: float = 30.0
    renew_every_s: float = 10.0
    stop_margin_s: float = 2.0

    @classmethod
    def from_config(cls, locks: Any) -> LeasePolicy:
        return cls(float(locks.lease_ttl_s), float(locks.renew_every_s), float(locks.stop_margin_s))

    @property
    def ttl_ms(self) -> float:
        return self.ttl_s * 1000


class LockHold:
    """One hold of ``artifact_id``'s lock by this client's identity."""

    def __init__(self, client: ConvexClient, artifact_id: str, policy: LeasePolicy, *,
                 me_actor_id: str | None = None, key_prefix: str | None = None) -> None:
        self.client = client
        self.artifact_id = artifact_id
        self.policy = policy
        self.me_actor_id = me_actor_id
        self.key_prefix = key_prefix
        self.token: float | None = None
        self.expires_at_ms: float = 0.0
        self.base_version: int = 0  # the version the holder's text is based on (set by the caller)
        # Set when the hold is over without a save or release of ours (expired, forced open):
        # the editor shows it at once and keeps the unsaved text; an agent stops writing.
        self.lost_reason: str | None = None
        self.lost_by: str | None = None
        self.on_lost: list[Callable[[LockHold], None]] = []
        self.ended = False
        # A save / restore / release of ours is on its way: the lock row may show the lock
        # free before our own call returns, and that is not a loss.
        self.ending = False
        self._renewer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ state

    @property
    def held(self) -> bool:
        return self.token is not None and not self.ended and self.lost_reason is None

    def key(self, what: str) -> str:
        """The idempotency key of this hold's ``what`` (acquire, save, ...)."""
        return f"{self.key_prefix}:{what}" if self.key_prefix else new_idempotency_key()

    def _granted(self, result: dict[str, Any]) -> LockHold:
        self.token = float(result["token"])
        self.expires_at_ms = float(result["expiresAt"])
        self.ended = False
        self.lost_reason = self.lost_by = None
        self._start_renewal()
        return self

    # ------------------------------------------------------------------ acquire

    async def acquire(self, *, wait: bool = False) -> LockHold | LockConflict | Queued:
        """Take the lock. ``wait=False``: a held lock answers :class:`LockConflict` (who holds it,
        since when); ``wait=True`` joins the FIFO queue (:class:`Queued`). Granted: this hold,
        renewing in the background."""
        args = {"artifactId": self.artifact_id, "ttlMs": self.policy.ttl_ms, "wait": wait,
                "idempotencyKey": self.key("acquire")}
        try:
            result = await self.client.mutation(api.locks.acquire, args)
        except ConvexError as exc:
            if error_code(exc) == "LOCKED":
                return LockConflict.from_error(exc.data)
            raise
        if result.get("status") == "granted":
            return self._granted(result)
        if result.get("status") == "queued":
            return Queued(int(result.get("position", 0)), int(result.get("queueLength", 0)),
                          dict(result.get("holder") or {}))
        raise RuntimeError(f"unexpected acquire result: {result!r}")

    async def wait_granted(self, cancel: asyncio.Event | None = None) -> bool:
        """Queued: wait until the queue hands us the lock (its row shows us as holder), then take
        the token (the holder's acquire returns it). False if ``cancel`` was set first: the
        queue is left."""
        assert self.me_actor_id, "waiting in the queue needs the holder's actor id"
        queue = self.client.watch(api.locks.queue, {"artifactId": self.artifact_id})

        async def granted() -> None:
            async for state in queue.updates():
                if (state.get("holder") or {}).get("actorId") == self.me_actor_id:
                    return

        waiter = asyncio.ensure_future(granted())
        stop = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        try:
            await asyncio.wait({waiter} | ({stop} if stop else set()), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if stop is not None:
                stop.cancel()
            queue.close()
        if cancel is not None and cancel.is_set():
            with contextlib.suppress(Exception):
                await self.client.mutation(api.locks.leave, {"artifactId": self.artifact_id})
            return False
        got = await self.acquire(wait=True)
        if not isinstance(got, LockHold):
            raise RuntimeError(f"the queue handed over the lock but acquire answered {got!r}")
        return True

    # ------------------------------------------------------------------ lease

    def extend(self, expires_at_ms: float) -> None:
        """An accepted fenced write (a draft delta) renewed the lease."""
        self.expires_at_ms = max(self.expires_at_ms, float(expires_at_ms))

    def _start_renewal(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name=f"lease-{self.artifact_id}")

    async def _renew_loop(self) -> None:
        loop = asyncio.get_running_loop()
        policy = self.policy
        deadline = loop.time() + policy.ttl_s  # when the lease ends if no renewal gets through
        while self.held:
            await asyncio.sleep(min(policy.renew_every_s, max(0.0, deadline - policy.stop_margin_s - loop.time())))
            if not self.held:
                return
            if loop.time() >= deadline - policy.stop_margin_s:
                self._lose("expired (no renewal got through)", None)
                return
            sent = loop.time()
            try:
                # A mutation waits out a lost connection (it is replayed on reconnect): bound the
                # wait by the lease, so a partitioned holder notices in time that it must stop.
                r = await asyncio.wait_for(
                    self.client.mutation(api.locks.renew, {"artifactId": self.artifact_id, "token": self.token,
                                                           "ttlMs": policy.ttl_ms}),
                    max(0.0, deadline - policy.stop_margin_s - sent))
            except TimeoutError:
                self._lose("expired (no renewal got through)", None)
                return
            except ConvexError as exc:  # the backend refused: the hold is over
                data = exc.data if isinstance(exc.data, dict) else {}
                self._lose(str(data.get("reason") or data.get("code") or "lost"), data.get("byHandle"))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: the lease may still hold, try again
                log.warning("lease renewal failed: %s", exc)
                continue
            self.expires_at_ms = float(r["expiresAt"])
            deadline = sent + policy.ttl_s  # measured from when we asked: never optimistic

    def _lose(self, reason: str, by: str | None) -> None:
        # ``ending``: a renewal refused because our own save / hand-in just ended the hold
        if self.lost_reason is not None or self.ended or self.ending:
            return
        self.lost_reason, self.lost_by = reason, by
        self._stop_renewal()
        for cb in list(self.on_lost):
            cb(self)

    def check_row(self, artifact: dict[str, Any], my_handle: str) -> None:
        """Called with each new ``artifacts:get`` value while holding: if the lock now shows
        another holder (or none), the hold is lost before the next renewal says so."""
        if not self.held or self.ending or artifact.get("_id") != self.artifact_id:
            return
        lock = artifact.get("lock") or {}
        holder = lock.get("holder") or {}
        if not lock.get("held") or holder.get("handle") != my_handle:
            self._lose("released", holder.get("handle"))

    def _stop_renewal(self) -> None:
        if self._renewer is not None:
            if self._renewer is not asyncio.current_task():
                self._renewer.cancel()
            self._renewer = None

    def end(self) -> None:
        """The hold is over by our own doing (saved, released): stop renewing."""
        self.ended = True
        self._stop_renewal()

    # ------------------------------------------------------------------ writes under the hold

    async def save(self, content: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
        """A new version, released and handed to the queue's head in one transaction."""
        args: dict[str, Any] = {"artifactId": self.artifact_id, "token": self.token, "content": content,
                                "idempotencyKey": self.key("save"), **extra}
        if message:
            args["message"] = message
        result = await self.end_with(api.artifacts.save, args)
        self.end()
        return dict(result)

    async def end_with(self, fn: Any, args: dict[str, Any]) -> Any:
        """A call under the hold that ends it when it succeeds (a save, a pick, a release)."""
        self.ending = True
        try:
            return await self.client.mutation(fn, args)
        except BaseException:
            self.ending = False
            raise

    async def restore(self, version: int) -> dict[str, Any]:
        """A new version with ``version``'s content (which releases, like a save)."""
        result = await self.end_with(api.artifacts.restore, {
            "artifactId": self.artifact_id, "token": self.token, "version": version,
            "idempotencyKey": self.key("restore")})
        self.end()
        return dict(result)

    async def release(self, keep_draft: bool = True) -> None:
        """Free the lock (the draft is kept unless ``keep_draft`` is false). A hold that is
        already over (lost, expired) has nothing to release."""
        lost = self.lost_reason is not None or self.ended
        self.end()
        if lost or self.token is None:
            return
        try:
            await self.end_with(api.locks.release, {"artifactId": self.artifact_id, "token": self.token,
                                                   "keepDraft": keep_draft})
        except ConvexError as exc:
            if error_code(exc) not in FENCE_LOST:
                raise
