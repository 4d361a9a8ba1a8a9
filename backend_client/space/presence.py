"""The presence heartbeat of one terminal: what it shows (artifact, view), whether its user
types. Kept apart from content (its own table), so heartbeats never re-run content queries.

A change is sent at once (after a short coalescing pause, so a burst of keystrokes is one
heartbeat); otherwise the row is refreshed every ``every_s``, and it expires three periods
after the last heartbeat when the terminal goes away without saying so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from collab.backend_client.api import api
from collab.backend_client.client import ConvexClient

__all__ = ["PresenceJob"]

log = logging.getLogger(__name__)

UNSET: Any = ...


class PresenceJob:
    def __init__(self, client: ConvexClient, space_id: str, client_id: str, every_s: float = 10.0) -> None:
        self.client = client
        self.space_id = space_id
        self.client_id = client_id
        self.every_s = every_s
        self.state: dict[str, Any] = {"artifactId": None, "view": "space", "typing": False}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def artifact_id(self) -> str | None:
        """The artifact this terminal shows (the discussion's default ``#topic`` too)."""
        return self.state["artifactId"]

    def set(self, *, artifact_id: str | None | Any = UNSET, view: str | None = None,
            typing: bool | None = None) -> None:
        """Record what this terminal shows; the loop sends it (at once if it changed)."""
        before = dict(self.state)
        if artifact_id is not UNSET:
            self.state["artifactId"] = artifact_id
        if view is not None:
            self.state["view"] = view
        if typing is not None:
            self.state["typing"] = typing
        if before != self.state:
            self._dirty.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="presence")

    async def _loop(self) -> None:
        while True:
            # Clear before reading the state: a change made while this heartbeat is in flight
            # sets the flag again and is sent right after, never lost for a whole period.
            self._dirty.clear()
            args: dict[str, Any] = {"spaceId": self.space_id, "client": self.client_id,
                                    "typing": bool(self.state["typing"]), "ttlMs": int(self.every_s * 3000)}
            if self.state["artifactId"]:
                args["artifactId"] = self.state["artifactId"]
            if self.state["view"]:
                args["view"] = self.state["view"]
            try:
                await self.client.mutation(api.presence.heartbeat, args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("presence heartbeat failed: %s", exc)
            # Wait for the period, or less when what we show changed (typing, selection).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self.every_s)
            await asyncio.sleep(0.3)  # coalesce bursts of keystrokes into one heartbeat

    async def stop(self) -> None:
        """Stop the heartbeats and remove this terminal's row (best effort, bounded)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.client.mutation(api.presence.leave, {"spaceId": self.space_id, "client": self.client_id}), 1)
