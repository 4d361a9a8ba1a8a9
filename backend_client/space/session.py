"""The space session: one user in one space over one client, and the only object the UI talks
to (harlequin-style core/UI split; no Textual here, so it is tested without a terminal).

It holds who and where (identity, space, config, clock), the background job that must outlive
any one pane (the presence heartbeat), the connection state, and one facade per view:
``artifacts`` (tree, document, editor, history), ``discussion``, ``variations``, ``members``
and ``pipeline``. Each pane binds the live queries of its facade and calls its actions; nothing in ``screens/`` or ``widgets/`` touches
the client itself (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from collab.backend_client.api import api
from collab.backend_client.client import ConvexClient
from collab.backend_client.connection import ConnectionState, ConnectionStatus
from collab.backend_client.live_query import LiveQuery
from collab.backend_client.space.artifacts import ArtifactsView
from collab.backend_client.space.discussion import DiscussionView
from collab.backend_client.space.members import MembersView
from collab.backend_client.space.pipeline import PipelineView
from collab.backend_client.space.presence import UNSET, PresenceJob
from collab.backend_client.space.variations import VariationsView
from collab.config import Config

__all__ = ["Clock", "NoSuchSpace", "NotAMember", "Reviver", "SpaceSession", "open_session"]

Clock = Callable[[], float]


class Reviver(Protocol):
    """Starts the embedded backend again if it died under us (set by the app's bootstrap)."""

    def revive(self) -> bool: ...


class SpaceSession:
    def __init__(
        self,
        client: ConvexClient,
        config: Config,
        *,
        space_id: str,
        space_name: str,
        me: dict[str, Any],
        role: str = "editor",
        clock: Clock = time.time,
        client_id: str | None = None,
    ) -> None:
        self.client = client
        self.keeper: Reviver | None = None
        self.config = config
        self.space_id = space_id
        self.space_name = space_name
        self.me = me
        self.role = role
        # Injectable so snapshots can freeze every "2m ago" on screen.
        self.clock = clock
        self.client_id = client_id or uuid.uuid4().hex[:12]
        self.created = False  # this session created the space (the app remembers it locally)
        # (url, certificate pin or None, notes) teammates join with: set by the app's bootstrap,
        # which knows how this backend is served (the members screen's invite line).
        self.team_url: tuple[str, str | None, list[str]] | None = None
        self.presence = PresenceJob(client, space_id, self.client_id)
        self.artifacts = ArtifactsView(self)
        self.discussion = DiscussionView(self)
        self.variations = VariationsView(self)
        self.members = MembersView(self)
        self.pipeline = PipelineView(self)

    @property
    def handle(self) -> str:
        return str(self.me.get("handle", ""))

    @property
    def actor_id(self) -> str:
        return str(self.me.get("_id", ""))

    # ------------------------------------------------------------------ connection

    @property
    def connection(self) -> ConnectionStatus:
        return self.client.state

    @property
    def live(self) -> bool:
        return self.client.state.state is ConnectionState.LIVE

    def on_connection_change(self, callback: Callable[[ConnectionStatus], object]) -> Callable[[], None]:
        """Call ``callback`` with every new connection state; returns the unsubscribe."""
        return self.client.on_state_change(callback)

    # ------------------------------------------------------------------ the space

    async def spaces(self) -> list[dict[str, Any]]:
        """Every space the user is a member of, with their role (``spaces:list``), by name."""
        rows = await self.client.query(api.spaces.list, {})
        return sorted((dict(r) for r in rows), key=lambda r: (str(r.get("name", "")).lower(), str(r["_id"])))

    def watch_members(self) -> LiveQuery[Any]:
        return self.client.watch(api.spaces.members, {"spaceId": self.space_id})

    def watch_presence(self) -> LiveQuery[Any]:
        return self.client.watch(api.presence.list, {"spaceId": self.space_id})

    def watch_notifications(self) -> LiveQuery[Any]:
        return self.client.watch(api.notifications.list, {"spaceId": self.space_id, "unreadOnly": True, "limit": 20})

    async def notifications(self, limit: int = 15) -> list[dict[str, Any]]:
        return list(await self.client.query(api.notifications.list, {"spaceId": self.space_id, "limit": limit}))

    async def mark_read(self, notification_id: str | None = None) -> None:
        args = {"notificationId": notification_id} if notification_id else {}
        await self.client.mutation(api.notifications.markRead, args)

    # ------------------------------------------------------------------ presence

    def set_presence(self, *, artifact_id: str | None | Any = UNSET, view: str | None = None,
                     typing: bool | None = None) -> None:
        self.presence.set(artifact_id=artifact_id, view=view, typing=typing)

    def start_presence(self) -> None:
        self.presence.start()

    async def close(self) -> None:
        """Leave: release an abandoned edit (the draft is kept), stop heartbeats."""
        if self.artifacts.hold is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.artifacts.cancel_edit(keep_draft=True), 2)
        await self.presence.stop()
        self.members.stop()

    async def disconnect(self) -> None:
        """:meth:`close`, then close the connection."""
        await self.close()
        await self.client.close()


JoinLocal = Callable[[str], Awaitable[bool]]


class NoSuchSpace(LookupError):
    """``open_session(create=False)`` found no space of that name among the user's."""

    def __init__(self, name: str) -> None:
        super().__init__(f"you have no space called {name!r}")
        self.name = name


class NotAMember(NoSuchSpace):
    """The space is not among this user's on a backend joined with an invite (never created
    there)."""

    def __init__(self, space: str) -> None:
        super().__init__(space)
        self.args = (f"you are not a member of a space called {space!r} on this backend: "
                     "ask one of its owners for an invite (collab invite)",)
        self.space = space


async def open_session(client: ConvexClient, config: Config, *, handle: str, space_name: str | None = None,
                       join_local: JoinLocal | None = None, clock: Clock | None = None,
                       create: bool = True, joined: bool = False) -> SpaceSession:
    """Open the space ``space_name`` (default: the config's) on a connected client in one
    mutation (``spaces:open``: the actor, the space found or created, the default agents added
    for its owner). ``join_local(name)``, when given, may add this user to a space of that name
    another local user created (the embedded backend's local trust) before it is created anew.
    ``create=False`` never creates one: :class:`NoSuchSpace` instead (:class:`NotAMember` on a
    backend ``joined`` with an invite, where creating is never tried)."""
    name = space_name or config.backend.space
    args: dict[str, Any] = {"name": name, "actorName": config.identity.display_name or handle,
                            "agents": [{"handle": a.handle, "name": a.name} for a in config.enabled_agents()],
                            "description": "created by collab"}
    args["budgetUsd"] = config.budget_for(name)  # the owner's config is the source of truth
    opened = await client.mutation(api.spaces.open, {**args, "create": create and join_local is None})
    if opened is None and join_local is not None:
        await join_local(name)
        opened = await client.mutation(api.spaces.open, {**args, "create": create})
    if opened is None:
        raise NotAMember(name) if joined else NoSuchSpace(name)
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    session = SpaceSession(client, config, space_id=str(opened["spaceId"]), space_name=str(opened["name"]),
                           me=dict(opened["me"]), role=str(opened["role"]), **kwargs)
    session.created = bool(opened.get("created"))
    return session
