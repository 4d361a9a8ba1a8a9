"""The artifact keys as a user presses them, each checked against the backend: delete (asks
first; refused while someone else edits), rename, tags, force release, waiting in and leaving
the lock queue, copy (and ``ui.clipboard = "off"``), and the history screen (mark, diff,
restore)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from textual.widgets import Input, Static

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.screens.dialogs import ConfirmDelete, LockConflictDialog, Prompt
from collab.screens.history import HistoryScreen
from collab.screens.space import SpaceScreen
from collab.tui.app import CollabApp

from .conftest import Seeded, add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(60)


async def _one_doc(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    ids["doc"] = await add_doc(c, space_id, "Plan", "first text\n")


async def _query(backend: BackendProcess, fn: Any, args: dict[str, Any]) -> Any:
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        return await c.query(fn, args)


def _toasts(app: CollabApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _answer_prompt(pilot: Any, app: CollabApp, text: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, Prompt), what="the prompt")
    app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen), what="the prompt to close")


async def _dara_holds(seeded: Seeded) -> tuple[ConvexClient, dict[str, Any]]:
    """@dara (an agent editor) holds the doc's lock: its connected client and grant."""
    backend = seeded.backend
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as owner:
        await owner.mutation(api.spaces.addMember, {"spaceId": seeded.space_id, "handle": "dara",
                                                    "kind": "agent", "role": "editor"})
    agent = ConvexClient(backend.url, auth=backend.mint_token("dara", agent=True))
    await agent.connect()
    await agent.mutation(api.actors.ensure, {})
    grant = await agent.mutation(api.locks.acquire, {"artifactId": seeded.ids["doc"], "ttlMs": 60_000})
    return agent, grant


async def test_delete_asks_first_then_deletes(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDelete), what="the question")
        await pilot.press("enter", "n")  # enter never confirms; n keeps it
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen), what="the question to close")
        assert [a["title"] for a in await _query(backend, api.artifacts.list, {"spaceId": seeded.space_id})] == ["Plan"]
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDelete), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen.artifacts.artifacts == [], what="the tree to empty")
        assert "Deleted Plan." in _toasts(app)
        assert await _query(backend, api.artifacts.list, {"spaceId": seeded.space_id}) == []
        audit = await _query(backend, api.audit.list, {"spaceId": seeded.space_id})
        assert [e["data"]["title"] for e in audit if e["type"] == "artifact.deleted"] == ["Plan"]


async def test_delete_is_refused_while_an_agent_edits(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    agent, _ = await _dara_holds(seeded)
    try:
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
            await pilot.press("delete")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDelete), what="the question")
            await pilot.press("y")
            await wait_for(pilot, lambda: any(t.startswith("Not deleted") for t in _toasts(app)),
                           what="the refusal")
            assert any("@dara is editing" in t for t in _toasts(app)), _toasts(app)
            art = await _query(backend, api.artifacts.get, {"artifactId": seeded.ids["doc"]})
            assert art["title"] == "Plan" and art["lock"]["holder"]["handle"] == "dara"
    finally:
        await agent.close()


async def test_rename_and_tags(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt), what="the rename prompt")
        assert app.screen.query_one(Input).value == "Plan"  # starts from the current title
        await _answer_prompt(pilot, app, "Test plan")
        await pilot.press("t")
        await _answer_prompt(pilot, app, "#qa  urgent")
        pane = app.screen.artifacts
        await wait_for(pilot, lambda: (pane.current or {}).get("tags") == ["qa", "urgent"]
                       and pane.current["title"] == "Test plan", what="the document to show both")
        art = await _query(backend, api.artifacts.get, {"artifactId": seeded.ids["doc"]})
        assert (art["title"], art["tags"], art["slug"]) == ("Test plan", ["qa", "urgent"], "plan")


async def test_force_release_from_the_app(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    agent, grant = await _dara_holds(seeded)
    try:
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
            pane = app.screen.artifacts
            await wait_for(pilot, lambda: ((pane.current or {}).get("lock") or {}).get("held"),
                           what="the lock to show")
            await pilot.press("U")
            await _answer_prompt(pilot, app, "dara is stuck")
            await wait_for(pilot, lambda: not ((pane.current or {}).get("lock") or {}).get("held"),
                           what="the lock to show free")
        with pytest.raises(Exception) as stale:
            await agent.mutation(api.locks.renew, {"artifactId": seeded.ids["doc"], "token": grant["token"]})
        assert stale.value.data["reason"] == "forceReleased" and stale.value.data["forceReason"] == "dara is stuck"
    finally:
        await agent.close()


async def test_wait_in_the_queue_then_leave_it(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    agent, grant = await _dara_holds(seeded)
    try:
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
            pane = app.screen.artifacts

            def queue() -> list[str]:
                return [w["handle"] for w in ((pane.current or {}).get("lock") or {}).get("queue") or []]
            await pilot.press("w")
            await wait_for(pilot, lambda: queue() == ["alice"], what="alice in the queue")
            await pilot.press("w")
            await wait_for(pilot, lambda: queue() == [], what="alice out of the queue")
            assert any("left the queue" in t for t in _toasts(app))
            # the lock freed now goes to nobody: alice is not handed a lock she gave up on
            await agent.mutation(api.locks.release, {"artifactId": seeded.ids["doc"], "token": grant["token"]})
            await wait_for(pilot, lambda: not ((pane.current or {}).get("lock") or {}).get("held"),
                           what="the lock to show free")
            # (read from the backend once the release committed: no wait on a toast that must not come)
            kinds = [n["kind"] for n in await _query(backend, api.notifications.list, {"spaceId": seeded.space_id})]
            assert "lockGranted" not in kinds and not (await _query(backend, api.artifacts.get, {
                "artifactId": seeded.ids["doc"]}))["lock"]["held"]
    finally:
        await agent.close()


@pytest.mark.parametrize("clipboard", ["osc52", "off"])
async def test_copy_follows_the_clipboard_setting(clipboard: str, backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app(extra_config=f'[ui]\nclipboard = "{clipboard}"\n')
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
        await pilot.press("y")
        await wait_for(pilot, lambda: bool(_toasts(app)), what="a word about the copy")
        if clipboard == "off":
            assert app.clipboard == "" and "clipboard is off" in _toasts(app)[-1]
        else:
            assert app.clipboard == "first text\n" and _toasts(app)[-1] == "Copied Plan (OSC 52)."


async def _save_versions(c: ConvexClient, doc: str, texts: Iterable[str]) -> None:
    """Each text a version, as an editor makes it: lock, save (the save releases the lock)."""
    for text in texts:
        token = (await c.mutation(api.locks.acquire, {"artifactId": doc}))["token"]
        await c.mutation(api.artifacts.save, {"artifactId": doc, "token": token, "content": text})


async def _three_versions(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    ids["doc"] = await add_doc(c, space_id, "Plan", "one\n")
    await _save_versions(c, ids["doc"], ("one\ntwo\n", "one\ntwo\nthree\n"))


async def test_history_marks_diffs_and_restores(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _three_versions)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and len(app.screen.versions) == 3,
                       what="three versions")
        history = app.screen
        body = history.query_one("#version-body", Static)

        def shown() -> str:
            return str(body.render())
        assert [v["version"] for v in history.versions] == [3, 2, 1]
        await wait_for(pilot, lambda: shown() == "one\ntwo\nthree\n", what="v3's content")
        await pilot.press("d")  # nothing marked: v3 against the one before it
        await wait_for(pilot, lambda: "+three" in shown(), what="the diff v2..v3")
        assert "--- v2" in shown() and "+two" not in shown()
        await pilot.press("space", "down", "down", "space")  # mark v3 and v1
        assert history.marked == [3, 1]
        await pilot.press("d")
        await wait_for(pilot, lambda: "--- v1" in shown() and "+two" in shown() and "+three" in shown(),
                       what="the diff v1..v3")
        await pilot.press("r")  # restore the highlighted v1 as v4
        await wait_for(pilot, lambda: len(history.versions) == 4, what="the restored version")
        assert history.versions[0]["restoredFrom"] == 1
        art = await _query(backend, api.artifacts.get, {"artifactId": seeded.ids["doc"]})
        assert (art["version"], art["content"], art["lock"]["held"]) == (4, "one\n", False)
        assert any("Restored v1 as v4." in t for t in _toasts(app))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen), what="back on the space")


async def test_restore_is_refused_while_someone_else_holds_the_lock(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _three_versions)
    agent, _ = await _dara_holds(seeded)
    try:
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and len(app.screen.versions) == 3,
                           what="three versions")
            await pilot.press("down", "r")
            await wait_for(pilot, lambda: any("Cannot restore: @dara (agent)" in t for t in _toasts(app)),
                           what="the refusal")
            assert not isinstance(app.screen, LockConflictDialog)
        art = await _query(backend, api.artifacts.get, {"artifactId": seeded.ids["doc"]})
        assert art["version"] == 3
    finally:
        await agent.close()


async def test_after_a_delete_the_screen_and_the_presence_move_on(backend: BackendProcess) -> None:
    async def two(c: ConvexClient, space_id: str, ids: dict[str, str], _b: Any) -> None:
        ids["notes"] = await add_doc(c, space_id, "Notes", "n\n")
        ids["plan"] = await add_doc(c, space_id, "Plan", "p\n")

    seeded = await asyncio.to_thread(seed_space, backend, two)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app), what="the space, presence on Notes")
        pane = app.screen.artifacts
        assert pane.current["title"] == "Notes"  # first in the tree
        await pilot.press("delete", "y")
        await wait_for(pilot, lambda: [a["title"] for a in pane.artifacts] == ["Plan"], what="Notes gone")
        await wait_for(pilot, lambda: (pane.current or {}).get("title") == "Plan", what="Plan on screen")
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
            with c.watch(api.presence.list, {"spaceId": seeded.space_id}) as rows:
                from tests.live import until

                await until(lambda: [r.get("artifactId") for r in rows.value or []] == [seeded.ids["plan"]], rows,
                            what="alice's presence to name Plan")
        bar = app.screen.query_one("PresenceBar")
        await wait_for(pilot, lambda: "▸#plan" in str(bar.render()) and "#?" not in str(bar.render()),
                       what="the presence bar to name plan")


async def _long_history(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    ids["doc"] = await add_doc(c, space_id, "Log", "v1\n")
    await _save_versions(c, ids["doc"], (f"v{n}\n" for n in range(2, 231)))  # 229 more versions


async def test_a_long_history_is_reachable_to_v1(backend: BackendProcess) -> None:
    """230 versions: the newest 100 are live, the rest come in pages as the cursor goes down."""
    seeded = await asyncio.to_thread(seed_space, backend, _long_history)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and len(app.screen.versions) == 100,
                       what="the live hundred")
        history = app.screen
        for _ in range(3):  # the end of what is listed pages the next older versions in
            await pilot.press("end")
            await pilot.pause()
        await wait_for(pilot, lambda: [v["version"] for v in history.versions] == list(range(230, 0, -1)),
                       what="every version down to v1, in order")
        await pilot.press("end")
        await wait_for(pilot, lambda: history.selected is not None and history.selected["version"] == 1,
                       what="v1 selected")
        assert "v1" in str(history.query_one("#version-body", Static).render())
