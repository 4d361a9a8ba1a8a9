"""The members facade: who is in the space (humans and agents, role, online, what each views,
holds and waits for), what the agents are doing and what they cost, and the owner's actions
(invite, revoke an invite, change a role, remove a member, force a lock open). Also the
caller's own role, followed live, so the UI offers a viewer nothing it may not do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collab.backend_client.api import api
from collab.backend_client.live_query import LiveQuery

if TYPE_CHECKING:
    from collab.backend_client.space.session import SpaceSession

__all__ = ["MembersView", "VIEWER_REFUSAL", "local_midnight_ms"]

# What the UI says when a viewer presses a key that writes.
VIEWER_REFUSAL = "You are a viewer in this space: you can read everything and write nothing. Ask an owner for the editor role."


def money(usd: float) -> str:
    """``$0.0042``, ``$1.23``: cents are not enough for one small run."""
    if usd == 0:
        return "$0"
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def tokens(n: float) -> str:
    n = int(n)
    return f"{n / 1000:.1f}k tok" if n >= 10_000 else f"{n} tok"


def local_midnight_ms(now_s: float) -> float:
    """Today's start in this terminal's time zone, in ms (the "today" of the totals)."""
    t = time.localtime(now_s)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1)) * 1000


class MembersView:
    def __init__(self, session: SpaceSession) -> None:
        self.session = session
        self.client = session.client
        # When this app opened the space: the "since the app was opened" window of the totals.
        self.opened_ms = session.clock() * 1000
        self._role_live: LiveQuery[Any] | None = None
        self.on_role_change: list[Callable[[str], None]] = []

    # ------------------------------------------------------------------ the caller's role

    @property
    def can_write(self) -> bool:
        return self.session.role in ("editor", "owner")

    @property
    def is_owner(self) -> bool:
        return self.session.role == "owner"

    def follow_role(self) -> None:
        """Keep ``session.role`` current (an owner may change it while the app is open)."""
        if self._role_live is not None:
            return
        self._role_live = self.client.watch(api.spaces.get, {"spaceId": self.session.space_id})
        self._role_live.subscribe(self._role_value, lambda _err: self._set_role("none"))

    def _role_value(self, space: Any) -> None:
        if isinstance(space, dict) and space.get("role"):
            self._set_role(str(space["role"]))

    def _set_role(self, role: str) -> None:
        if role == self.session.role:
            return
        self.session.role = role
        for cb in list(self.on_role_change):
            cb(role)

    def stop(self) -> None:
        if self._role_live is not None:
            self._role_live.close()
            self._role_live = None

    # ------------------------------------------------------------------ live queries

    def watch_members(self) -> LiveQuery[Any]:
        return self.client.watch(api.spaces.members, {"spaceId": self.session.space_id})

    def watch_waiting(self) -> LiveQuery[Any]:
        return self.client.watch(api.locks.waiting, {"spaceId": self.session.space_id})

    def watch_invites(self) -> LiveQuery[Any]:
        """Owners only (others get INSUFFICIENT_ROLE)."""
        return self.client.watch(api.spaces.invites, {"spaceId": self.session.space_id})

    def watch_active_runs(self) -> LiveQuery[Any]:
        """Runs not finished (queued, claimed, streaming): what each agent is doing."""
        return self.client.watch(api.runs.active, {"spaceId": self.session.space_id})

    def usage_windows(self) -> list[float]:
        """``since`` of the totals: today (local midnight), since this app opened the space."""
        return [local_midnight_ms(self.session.clock()), self.opened_ms]

    async def usage_today(self) -> dict[str, Any]:
        """``usage:summary`` once, with the window of today (``collab export``)."""
        return dict(await self.client.query(api.usage.summary, {"spaceId": self.session.space_id,
                                                                "since": self.usage_windows()[:1]}))

    def watch_usage(self) -> LiveQuery[Any]:
        """``usage:summary`` with windows [today, since the app was opened] (and all time)."""
        return self.client.watch(api.usage.summary, {"spaceId": self.session.space_id,
                                                     "since": self.usage_windows()})

    # ------------------------------------------------------------------ owner actions

    async def invite(self, *, role: str = "editor", uses: int | None = 1,
                     expires_s: float | None = 24 * 3600) -> dict[str, Any]:
        args: dict[str, Any] = {"spaceId": self.session.space_id, "role": role}
        if uses is not None:
            args["maxUses"] = uses
        if expires_s is not None:
            args["expiresInMs"] = expires_s * 1000
        return dict(await self.client.mutation(api.spaces.invite, args))

    async def revoke(self, invite_id: str) -> None:
        await self.client.mutation(api.spaces.revokeInvite, {"spaceId": self.session.space_id, "inviteId": invite_id})

    async def set_role(self, actor_id: str, role: str) -> None:
        await self.client.mutation(api.spaces.setRole, {"spaceId": self.session.space_id, "actorId": actor_id,
                                                        "role": role})

    async def remove(self, actor_id: str) -> None:
        await self.client.mutation(api.spaces.removeMember, {"spaceId": self.session.space_id, "actorId": actor_id})

    async def force_release(self, artifact_id: str, reason: str) -> None:
        await self.client.mutation(api.locks.forceRelease, {"artifactId": artifact_id, "reason": reason})
