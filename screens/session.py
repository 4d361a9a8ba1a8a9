"""The space session: the one object screens talk to (harlequin-style UI/core split).

It wraps a connected :class:`ConvexClient` with the calls the screens need (watch the panes'
queries, the edit cycle under a lock, messages, presence) and owns the background jobs that
must outlive any one widget: the lease renewal of the lock being edited and the presence
heartbeat. No Textual here, so it is tested without a terminal (tests/tui/test_session.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Any

from collab.backend_client import ConvexClient, ConvexError, LiveQuery, new_idempotency_key
from collab.backend_client.api import api
from collab.config import Config

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass
class Hold:
    """The lock this terminal holds while editing one artifact."""

    artifact_id: str
    token: Any
    expires_at_ms: float
    base_version: int
    # Set when the server says the hold is over (expired, force-released): the editor shows
    # it at once and keeps the unsaved text.
    lost_reason: str | None = None
    lost_by: str | None = None


@dataclass
class LockConflict:
    """Someone else holds the lock: who (human or agent), since when, how many wait."""

    handle: str
    kind: str
    since_ms: float
    queue_length: int

    @classmethod
    def from_error(cls, data: dict[str, Any]) -> "LockConflict":
        holder = data.get("holder") or {}
        return cls(
            handle=str(holder.get("handle", "?")),
            kind=str(holder.get("kind", "human")),
            since_ms=float(holder.get("since") or 0),
            queue_length=int(data.get("queueLength") or 0),
        )


@dataclass
class Queued:
    position: int
    queue_length: int
    holder: dict[str, Any] = field(default_factory=dict)


def error_text(exc: BaseException) -> str:
    """A one-line message for a rejected mutation (ConvexError data carries code + message)."""
    if isinstance(exc, ConvexError) and isinstance(exc.data, dict):
        data = exc.data
        return str(data.get("message") or data.get("code") or exc)
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ConvexError) and isinstance(exc.data, dict):
        code = exc.data.get("code")
        return str(code) if code else None
    return None



class Reviver(Protocol):
    def revive(self) -> bool: ...

class SpaceSession:
    """One user in one space over one client."""

    def __init__(
        self,
        client: ConvexClient,
        config: Config,
        *,
        space_id: str,
        space_name: str,
        me: dict[str, Any],
        clock: Clock = time.time,
        client_id: str | None = None,
    ) -> None:
        self.client = client
        # Embedded backend only: revives it if it dies under us (set by the app's bootstrap).
        self.keeper: Reviver | None = None
        self.config = config
        self.space_id = space_id
        self.space_name = space_name
        self.me = me
        # Injectable so snapshots can freeze every "2m ago" on screen.
        self.clock = clock
        self.client_id = client_id or uuid.uuid4().hex[:12]
        self.hold: Hold | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._presence_task: asyncio.Task[None] | None = None
        self._presence: dict[str, Any] = {"artifactId": None, "view": "space", "typing": False}
        self._presence_dirty = asyncio.Event()
        self.on_hold_lost: list[Callable[[Hold], None]] = []

    @property
    def handle(self) -> str:
        return str(self.me.get("handle", ""))

    # ------------------------------------------------------------------ live queries

    def watch_artifacts(self) -> LiveQuery[Any]:
        return self.client.watch(api.artifacts.list, {"spaceId": self.space_id})

    def watch_locks(self) -> LiveQuery[Any]:
        return self.client.watch(api.locks.list, {"spaceId": self.space_id})

    def watch_artifact(self, artifact_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.artifacts.get, {"artifactId": artifact_id})

    def watch_messages(self, limit: int = 100) -> LiveQuery[Any]:
        return self.client.watch(api.messages.list, {"spaceId": self.space_id, "limit": limit})

    def watch_streams(self) -> LiveQuery[Any]:
        """Live tails of every stream in the space (changes every ~30 ms while agents write)."""
        return self.client.watch(api.streams.forSpace, {"spaceId": self.space_id})

    def watch_draft(self, artifact_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.drafts.get, {"artifactId": artifact_id})

    def watch_draft_stream(self, artifact_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.streams.forArtifact, {"artifactId": artifact_id})

    def watch_outline(self) -> LiveQuery[Any]:
        return self.client.watch(api.messages.outline, {"spaceId": self.space_id})

    def watch_members(self) -> LiveQuery[Any]:
        return self.client.watch(api.spaces.members, {"spaceId": self.space_id})

    def watch_presence(self) -> LiveQuery[Any]:
        return self.client.watch(api.presence.list, {"spaceId": self.space_id})

    def watch_history(self, artifact_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.artifacts.history, {"artifactId": artifact_id, "limit": 100,
                                                                   "includeContent": True})

    def watch_notifications(self) -> LiveQuery[Any]:
        return self.client.watch(
            api.notifications.list, {"spaceId": self.space_id, "unreadOnly": True, "limit": 20}
        )

    # ------------------------------------------------------------------ artifacts

    async def create_artifact(self, title: str, kind: str = "markdown", content: str = "",
                              language: str | None = None) -> str:
        args: dict[str, Any] = {"spaceId": self.space_id, "title": title, "kind": kind, "content": content}
        if language:
            args["language"] = language
        return str(await self.client.mutation(api.artifacts.create, args))

    async def artifact(self, artifact_id: str) -> dict[str, Any]:
        return dict(await self.client.query(api.artifacts.get, {"artifactId": artifact_id}))

    async def version(self, artifact_id: str, version: int) -> dict[str, Any]:
        return dict(await self.client.query(api.artifacts.version,
                                            {"artifactId": artifact_id, "version": version}))

    # ------------------------------------------------------------------ the edit cycle

    def _ttl_ms(self) -> int:
        return int(self.config.locks.lease_ttl_s * 1000)

    async def acquire(self, artifact_id: str, *, wait: bool = False) -> Hold | LockConflict | Queued:
        """Take the lock for editing. ``wait=False``: a held lock is a :class:`LockConflict`
        (who holds it and since when); ``wait=True`` joins the FIFO queue."""
        try:
            result = await self.client.mutation(
                api.locks.acquire,
                {"artifactId": artifact_id, "ttlMs": self._ttl_ms(), "wait": wait},
                idempotency_key=new_idempotency_key(),
            )
        except ConvexError as exc:
            if error_code(exc) == "LOCKED":
                return LockConflict.from_error(exc.data)
            raise
        if result.get("status") == "granted":
            art = await self.artifact(artifact_id)
            hold = Hold(artifact_id, result["token"], float(result["expiresAt"]), int(art.get("version", 0)))
            self._start_hold(hold)
            return hold
        if result.get("status") == "queued":
            return Queued(int(result.get("position", 0)), int(result.get("queueLength", 0)),
                          dict(result.get("holder") or {}))
        raise RuntimeError(f"unexpected acquire result: {result!r}")

    async def leave_queue(self, artifact_id: str) -> None:
        await self.client.mutation(api.locks.leave, {"artifactId": artifact_id})

    def _start_hold(self, hold: Hold) -> None:
        self.hold = hold
        if self._renew_task:
            self._renew_task.cancel()
        self._renew_task = asyncio.get_running_loop().create_task(self._renew_loop(hold))

    async def _renew_loop(self, hold: Hold) -> None:
        """Renew the lease every ``renew_every_s`` while editing; a refused renewal means the
        hold is over (expired, force-released), which the editor shows at once."""
        every = float(self.config.locks.renew_every_s)
        while self.hold is hold and hold.lost_reason is None:
            await asyncio.sleep(every)
            if self.hold is not hold:
                return
            try:
                r = await self.client.mutation(
                    api.locks.renew, {"artifactId": hold.artifact_id, "token": hold.token, "ttlMs": self._ttl_ms()}
                )
                hold.expires_at_ms = float(r["expiresAt"])
            except ConvexError as exc:
                self._lost(hold, exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: keep trying, the lease may still hold
                log.warning("lease renewal failed: %s", exc)

    def _lost(self, hold: Hold, exc: ConvexError) -> None:
        data = exc.data if isinstance(exc.data, dict) else {}
        hold.lost_reason = str(data.get("reason") or data.get("code") or "lost")
        hold.lost_by = data.get("byHandle")
        for cb in list(self.on_hold_lost):
            cb(hold)

    def check_lock_row(self, artifact: dict[str, Any]) -> None:
        """Called with every new ``artifacts:get`` value while editing: if the lock now shows
        another holder (or none), the hold is lost before the next renewal says so."""
        hold = self.hold
        if hold is None or hold.lost_reason or artifact.get("_id") != hold.artifact_id:
            return
        lock = artifact.get("lock") or {}
        holder = lock.get("holder") or {}
        if not lock.get("held") or holder.get("handle") != self.handle:
            hold.lost_reason = "released"
            hold.lost_by = holder.get("handle")
            for cb in list(self.on_hold_lost):
                cb(hold)

    def _end_hold(self) -> None:
        self.hold = None
        if self._renew_task:
            self._renew_task.cancel()
            self._renew_task = None

    async def save(self, content: str, message: str | None = None) -> dict[str, Any]:
        hold = self.hold
        if hold is None:
            raise RuntimeError("not editing")
        args: dict[str, Any] = {"artifactId": hold.artifact_id, "token": hold.token, "content": content}
        if message:
            args["message"] = message
        result = await self.client.mutation(api.artifacts.save, args, idempotency_key=new_idempotency_key())
        self._end_hold()
        return dict(result)

    async def cancel_edit(self, keep_draft: bool = False) -> None:
        hold = self.hold
        self._end_hold()
        if hold is None or hold.lost_reason:
            return
        with contextlib.suppress(ConvexError):
            await self.client.mutation(api.locks.release,
                                       {"artifactId": hold.artifact_id, "token": hold.token, "keepDraft": keep_draft})

    async def restore(self, artifact_id: str, version: int) -> dict[str, Any]:
        """Restore = lock, restore (a new version with the old content), which releases."""
        got = await self.acquire(artifact_id)
        if not isinstance(got, Hold):
            return {"conflict": got}
        try:
            result = await self.client.mutation(
                api.artifacts.restore,
                {"artifactId": artifact_id, "token": got.token, "version": version},
                idempotency_key=new_idempotency_key(),
            )
        except BaseException:
            await self.cancel_edit()
            raise
        self._end_hold()
        return dict(result)

    # ------------------------------------------------------------------ discussion

    async def post(self, body: str, artifact_id: str | None = None, task: str = "reply") -> str:
        """Post to the space's discussion. ``task="revise"`` asks the mentioned agents to revise
        the first ``#artifact`` of the body (or ``artifact_id``) under its lock."""
        args: dict[str, Any] = {"spaceId": self.space_id, "body": body}
        if artifact_id:
            args["artifactId"] = artifact_id
        if task != "reply":
            args["task"] = task
        return str(await self.client.mutation(api.messages.post, args))

    async def mark_decision(self, message_id: str, decision: bool) -> None:
        await self.client.mutation(api.messages.markDecision, {"messageId": message_id, "decision": decision})

    async def cancel_runs(self) -> list[str]:
        """Cancel the space's unfinished agent runs; the reason (who stopped it) becomes the
        text of their streaming replies. Returns the handles of the agents stopped."""
        found = await asyncio.gather(*(self.client.query(api.runs.list, {"spaceId": self.space_id, "status": st})
                                       for st in ("queued", "claimed", "streaming")))
        active = [r for rows in found for r in rows or []]
        reason = f"cancelled by @{self.handle}"
        await asyncio.gather(*(self.client.mutation(api.runs.cancel, {"runId": r["_id"], "reason": reason})
                               for r in active))
        names = await self.client.query(api.spaces.members, {"spaceId": self.space_id})
        handle_of = {str(m["actorId"]): str(m["handle"]) for m in names or []}
        return [handle_of.get(str(r.get("agentId")), "?") for r in active]

    async def mark_read(self, notification_id: str | None = None) -> None:
        args = {"notificationId": notification_id} if notification_id else {}
        await self.client.mutation(api.notifications.markRead, args)

    # ------------------------------------------------------------------ presence

    def set_presence(self, *, artifact_id: str | None | object = ..., view: str | None = None,
                     typing: bool | None = None) -> None:
        """Record what this terminal shows; the heartbeat loop sends it (at once if changed)."""
        before = dict(self._presence)
        if artifact_id is not ...:
            self._presence["artifactId"] = artifact_id
        if view is not None:
            self._presence["view"] = view
        if typing is not None:
            self._presence["typing"] = typing
        if before != self._presence:
            self._presence_dirty.set()

    def start_presence(self, every_s: float = 10.0) -> None:
        if self._presence_task is None:
            self._presence_task = asyncio.get_running_loop().create_task(self._presence_loop(every_s))

    async def _presence_loop(self, every_s: float) -> None:
        while True:
            # Clear before reading the state: a change made while this heartbeat is in flight
            # sets the flag again and is sent right after, never lost for a whole period.
            self._presence_dirty.clear()
            args: dict[str, Any] = {"spaceId": self.space_id, "client": self.client_id,
                                    "typing": bool(self._presence["typing"]), "ttlMs": int(every_s * 3000)}
            if self._presence["artifactId"]:
                args["artifactId"] = self._presence["artifactId"]
            if self._presence["view"]:
                args["view"] = self._presence["view"]
            try:
                await self.client.mutation(api.presence.heartbeat, args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("presence heartbeat failed: %s", exc)
            # Wait for the period, or less when what we show changed (typing, selection).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._presence_dirty.wait(), every_s)
            await asyncio.sleep(0.3)  # coalesce bursts of keystrokes into one heartbeat

    async def close(self) -> None:
        """Leave: release an abandoned edit (the draft is kept), stop heartbeats."""
        if self.hold is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.cancel_edit(keep_draft=True), 2)
        if self._presence_task:
            self._presence_task.cancel()
            self._presence_task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.client.mutation(api.presence.leave, {"spaceId": self.space_id, "client": self.client_id}), 1
            )
