"""The variations screen against a real backend: columns stream live with no key pressed, star,
compose with the keyboard, pick through the lock (and a conflict names the holder), and SVG
snapshots of the streaming grid, the compose tray and a diff at 80x24 and 60x24."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api

from .conftest import add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(120)
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((60, 24), id="60x24")]
KEY = "k" * 16
PLAN = "# Plan\n\nShip on Friday.\nTest the locks.\n"


async def _agent(backend: Any, handle: str) -> ConvexClient:
    agent = ConvexClient(backend.url, auth=backend.mint_token(handle, agent=True))
    await agent.connect(timeout=10)
    await agent.mutation(api.actors.ensure, {})
    return agent


async def _round(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any, *, streaming: bool = True) -> None:
    """A plan and a round of 3 by two agents: #1 and #2 done, #3 streaming a tail (or done)."""
    ids["plan"] = await add_doc(c, space_id, "Plan", PLAN)
    for h in ("dara", "edwin"):
        await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": h, "kind": "agent", "role": "editor"})
    got = await c.mutation(api.variations.start, {"artifactId": ids["plan"], "instruction": "make it shorter",
                                                  "n": 3, "agents": ["dara", "edwin"], "temperatures": [0.3, 0.9, 1.2]})
    ids["round"] = got["roundId"]
    rows = (await c.query(api.variations.round, {"roundId": got["roundId"]}))["variations"]
    texts = ["# Plan\n\nShip Friday.\nTest locks.", "# Plan\n\nFriday: ship.\nLocks: tested first.", "# Plan\n\nShip"]
    for row, text in zip(rows, texts):
        agent = await _agent(backend, str(row["author"]))
        try:
            opened = await agent.mutation(api.proposals.open, {"proposalId": row["proposalId"], "key": KEY})
            if row["index"] < 3 or not streaming:
                await agent.mutation(api.proposals.finish, {"proposalId": row["proposalId"], "status": "done",
                                                            "content": text, "usage": {"completionTokens": 12},
                                                            "costUsd": 0.0012})
            else:
                await agent.mutation(api.proposals.append, {"proposalId": row["proposalId"], "text": text[:8]})
                await agent.mutation(api.streams.push, {"chunks": [{"streamId": opened["streamId"], "key": KEY,
                                                                    "text": text, "seq": 1}]})
                ids["streaming"] = str(opened["streamId"])
        finally:
            await agent.close()
        ids[f"v{row['index']:g}"] = str(row["variationId"])
        ids[f"p{row['index']:g}"] = str(row["proposalId"])


def _screen(app: Any) -> Any:
    from collab.screens.variations import VariationsScreen

    return app.screen if isinstance(app.screen, VariationsScreen) else None


def _ready(app: Any, columns: int = 3) -> bool:
    screen = _screen(app)
    if screen is None or len(screen.rows) < columns:
        return False
    from collab.widgets.variation_column import VariationColumn

    cols = list(screen.query(VariationColumn))
    return len(cols) >= columns and all(c.row for c in cols)


async def test_columns_stream_live_star_compose_and_pick(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _round)
    ids = seeded.ids
    app = seeded.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("v")
        await wait_for(pilot, lambda: _ready(app))
        screen = _screen(app)
        from collab.widgets.variation_column import VariationColumn

        cols = list(screen.query(VariationColumn))
        assert [c.display for c in cols] == [True, True, True]  # 100 columns: the grid shows all three
        assert "@dara" in str(cols[0].query_one(".variation-head").render()) and "t0.3" in str(
            cols[0].query_one(".variation-head").render())
        # The streaming column grows with no key pressed: an agent pushes more.
        agent = await _agent(backend, "dara")
        try:
            await agent.mutation(api.streams.push, {"chunks": [{"streamId": ids["streaming"], "key": KEY,
                                                                "text": "\nDone: shipped.", "seq": 2}]})
        finally:
            await agent.close()
        await wait_for(pilot, lambda: "Done: shipped." in cols[2].text.text)
        # Star #2 from the keyboard: the backend's shortlist has it.
        await pilot.press("l", "s")
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
            async def starred() -> bool:
                rows = (await c.query(api.variations.round, {"roundId": ids["round"]}))["variations"]
                return [r["starred"] for r in rows] == [False, True, False]
            await wait_for(pilot, lambda: "★" in str(cols[1].query_one(".variation-head").render()))
            assert await starred()
            # Compose: lines 3-4 of #2, then line 1 of #1, joined with no instruction.
            await pilot.press("c", "down", "down", "space", "down", "a", "h", "space", "a")
            tray = screen.query_one("#tray")
            assert [(p.index, p.start, p.end) for p in tray.parts] == [(2, 2, 4), (1, 0, 1)]
            await pilot.press("c")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "Prompt")
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(screen.rows) == 4)
            composed = screen.rows[3]
            assert composed["content"] == "Friday: ship.\nLocks: tested first.\n# Plan" and composed["composed"]
            assert [(p["index"], p["range"]) for p in composed["provenance"]["parts"]] == [
                (2, {"start": 2, "end": 4}), (1, {"start": 0, "end": 1})]
            # Pick #4 (confirm with y): the next version, through the lock, records where it came from.
            await pilot.press("l", "l", "l")  # from #1 to #4
            await wait_for(pilot, lambda: screen.focused_row is not None and screen.focused_row["index"] == 4)
            await pilot.press("p")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "Confirm")
            await pilot.press("y")
            await wait_for(pilot, lambda: (screen.round or {}).get("picked") is not None)
            art = await c.query(api.artifacts.get, {"artifactId": ids["plan"]})
            assert art["version"] == 2 and art["content"] == composed["content"] and not art["lock"]["held"]
            history = await c.query(api.artifacts.history, {"artifactId": ids["plan"]})
            assert history[0]["source"] == "merge" and history[0]["provenance"]["index"] == 4


async def test_pick_into_an_artifact_someone_edits_names_the_holder_and_offers_the_queue(
        backend: BackendProcess) -> None:
    from collab.screens.dialogs import LockConflictDialog

    seeded = await asyncio.to_thread(seed_space, backend, _round)
    ids = seeded.ids
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as owner:
        await owner.mutation(api.spaces.addMember, {"spaceId": seeded.space_id, "handle": "bob", "kind": "human",
                                                    "role": "editor"})
    bob = ConvexClient(backend.url, auth=backend.mint_token("bob"))
    await bob.connect(timeout=10)
    try:
        await bob.mutation(api.actors.ensure, {})
        await bob.mutation(api.locks.acquire, {"artifactId": ids["plan"]})
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False))
            await pilot.press("v")
            await wait_for(pilot, lambda: _ready(app))
            await pilot.press("p")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "Confirm")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, LockConflictDialog))
            assert app.screen.conflict.handle == "bob" and app.screen.conflict.kind == "human"
            await pilot.press("w")  # wait in the queue
            lock = await bob.query(api.artifacts.get, {"artifactId": ids["plan"]})

            async def queued() -> bool:
                state = (await bob.query(api.artifacts.get, {"artifactId": ids["plan"]}))["lock"]
                return state["queueLength"] == 1 and state["queue"][0]["handle"] == "alice"
            deadline = asyncio.get_running_loop().time() + 60
            while not await queued():
                assert asyncio.get_running_loop().time() < deadline, "alice never queued"
                await pilot.pause(0.05)
            assert lock["version"] == 1  # nothing was picked over bob's edit
    finally:
        await bob.close()


async def _done(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    await _round(c, space_id, ids, backend, streaming=False)


@pytest.mark.parametrize("size", SIZES)
def test_variations_grid(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    seeded = seed_space(fresh_backend, _round, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))
        await pilot.press("v")
        await wait_for(pilot, lambda: _ready(app) and "Ship" in _screen(app).query("VariationColumn").first().text.text)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_variations_compose_tray(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    seeded = seed_space(fresh_backend, _done, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))
        await pilot.press("v")
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("c", "down", "down", "space", "down", "a", "l", "space", "a")
        await wait_for(pilot, lambda: len(_screen(app).query_one("#tray").parts) == 2)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_variations_diff(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    from collab.screens.diff import DiffScreen

    seeded = seed_space(fresh_backend, _done, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app))
        await pilot.press("v")
        await wait_for(pilot, lambda: _ready(app))
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "Prompt")
        await pilot.press("enter")  # against the current version
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen))

    assert snap_compare(app, terminal_size=size, run_before=ready)


async def test_the_space_screen_catches_up_after_the_variations_screen(backend: BackendProcess) -> None:
    """The space screen is not drawn while the (opaque) variations screen covers it
    (collab.tui.app), so what changed meanwhile must be on it when it is back: a message posted
    and a terminal resized while covered are drawn after escape."""
    seeded = await asyncio.to_thread(seed_space, backend, _round)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        space = app.screen
        await pilot.press("v")
        await wait_for(pilot, lambda: _ready(app))
        assert space not in app._background_screens  # covered: its changes do not repaint the grid
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
            await c.mutation(api.messages.post, {"spaceId": seeded.space_id, "body": "Posted while covered."})
        await pilot.resize_terminal(60, 24)  # a resize while covered reaches it when it is back
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is space)
        await wait_for(pilot, lambda: "Posted while covered." in _screen_text(app))
        assert space.size.width == 60 and all(w.region.right <= 60 for w in space.query("*") if w.display)


def _screen_text(app: Any) -> str:
    """What the terminal shows (the rendered screen, not a widget's data)."""
    from rich.console import Console

    console = Console(width=app.size.width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()
