"""SVG snapshots of the main states at 80x24 and in a 60-column tmux pane, against a real
backend. Clocks are frozen (every "ago" reads 2m); ids never show on screen."""

from __future__ import annotations

from typing import Any

import pytest

from collab.backend_client import ConnectionState, ConnectionStatus, ConvexClient
from collab.backend_client.api import api
from collab.widgets.connection_badge import ConnectionBadge

from .conftest import add_doc, seed_space, space_ready, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((60, 24), id="60x24")]

PLAN = "# Test plan\n\nWhat we check before a release.\n\n- locks under contention\n- reconnect\n\n```python\nassert holder == 'alice'\n```\n"


async def _doc(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    ids["plan"] = await add_doc(c, space_id, "Test plan", PLAN, tags=["qa"])
    ids["notes"] = await add_doc(c, space_id, "notes.py", "def hello() -> str:\n    return 'hi'\n",
                                 kind="code", language="python")


async def _agent_lock(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    await _doc(c, space_id, ids, backend)
    await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": "edwin", "kind": "agent",
                                            "role": "editor", "name": "Edwin"})
    async with ConvexClient(backend.url, auth=backend.mint_token("edwin", agent=True)) as agent:
        await agent.mutation(api.actors.ensure, {})
        await agent.mutation(api.locks.acquire, {"artifactId": ids["plan"], "ttlMs": 600_000})


async def _streaming(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    await _doc(c, space_id, ids, backend)
    await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": "quinn", "kind": "agent",
                                            "role": "editor", "name": "Quinn"})
    await c.mutation(api.messages.post, {"spaceId": space_id, "body": "@quinn what is missing in #test-plan?"})
    async with ConvexClient(backend.url, auth=backend.mint_token("quinn", agent=True)) as agent:
        await agent.mutation(api.actors.ensure, {})
        mid = await agent.mutation(api.messages.post, {"spaceId": space_id, "body": "Two gaps: no test for",
                                                       "streaming": True})
        await agent.mutation(api.messages.append, {"messageId": mid, "text": " lease expiry while"})
    decided = await c.mutation(api.messages.post, {"spaceId": space_id, "body": "We ship on Friday."})
    await c.mutation(api.messages.markDecision, {"messageId": decided, "decision": True})


@pytest.mark.parametrize("size", SIZES)
def test_empty_space(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    seeded = seed_space(fresh_backend, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_document(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    seeded = seed_space(fresh_backend, _doc, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_markdown_document(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    """The seeded Markdown document, rendered (heading, list, fenced code), in the document view
    (test_document shows notes.py, first in the tree)."""
    seeded = seed_space(fresh_backend, _doc, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))
        await pilot.press("down")  # the tree is sorted: notes.py, Test plan
        await wait_for(pilot, lambda: (app.screen.artifacts.current or {}).get("title") == "Test plan"
                       and any(r.get("artifactId") == seeded.ids["plan"]
                               for r in app.screen.query_one("PresenceBar").presence),
                       what="the plan on screen, and the presence saying so")
        await pilot.press("f3")  # the document focused: the whole page readable

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_editing(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    from collab.screens.editor import EditorScreen

    seeded = seed_space(fresh_backend, _doc, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.hold is not None)
        await pilot.press("end")
        await pilot.press(*"Edited here")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_lock_held_by_agent(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    from collab.screens.dialogs import LockConflictDialog

    seeded = seed_space(fresh_backend, _agent_lock, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app) and bool(app.screen.artifacts.locks))
        await pilot.press("down")  # the tree is sorted: notes.py, Test plan
        await wait_for(pilot, lambda: (app.screen.artifacts.current or {}).get("title") == "Test plan")
        await pilot.press("e")  # the conflict dialog: who holds it, since when, wait?
        await wait_for(pilot, lambda: isinstance(app.screen, LockConflictDialog))

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_discussion_streaming_reply(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    seeded = seed_space(fresh_backend, _streaming, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app, messages=3))
        await pilot.press("f4")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_reconnecting(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    from collab.screens.space import SpaceScreen

    seeded = seed_space(fresh_backend, _doc, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))
        # The state the client reports after losing its socket (a real kill is in
        # test_app.py); injected here so the countdown on screen is fixed.
        screen = app.screen
        assert isinstance(screen, SpaceScreen)
        status = ConnectionStatus(ConnectionState.RECONNECTING, next_retry_at=seeded.frozen_now + 4,
                                  attempt=2, reason="socket closed", connection_count=1)
        screen.query_one(ConnectionBadge).set_status(status)  # the two panes that follow the connection
        screen.artifacts._on_state(status)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)
