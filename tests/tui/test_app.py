"""Pilot tests of the app against a real backend process: the edit cycle, lock conflicts and
the queue, losing a lock, errors that must not stop the app, reconnecting, keymap, resizes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client import ConnectionState, ConvexClient
from collab.backend_client.api import api
from collab.screens.dialogs import LockConflictDialog, Prompt
from collab.screens.editor import EditorScreen
from collab.screens.space import SpaceScreen
from collab.screens.startup import ErrorScreen
from collab.tui.app import CollabApp
from collab.tui.bootstrap import LaunchOptions
from collab.widgets.connection_badge import ConnectionBadge
from collab.widgets.document_view import DocumentView

from .conftest import add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(60)


async def _one_doc(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    ids["doc"] = await add_doc(c, space_id, "Plan", "first text\n")


async def _get(backend: BackendProcess, artifact_id: str) -> dict[str, Any]:
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        return dict(await c.query(api.artifacts.get, {"artifactId": artifact_id}))


async def test_edit_cycle_saves_a_version_and_releases(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        # the editor opens at once and takes the lock meanwhile: wait for the grant
        await wait_for(pilot, lambda: app.screen.hold is not None and app.screen.hold.held)
        art = await _get(backend, seeded.ids["doc"])
        assert art["lock"]["holder"]["handle"] == "alice"
        app.screen.query_one("TextArea").load_text("second text\n")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen))
        await wait_for(pilot, lambda: (app.screen.artifacts.current or {}).get("version") == 2)
        art = await _get(backend, seeded.ids["doc"])
        assert art["content"] == "second text\n" and not art["lock"]["held"]


async def test_cancel_releases_the_lock(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen))
        await wait_for(pilot, lambda: not ((app.screen.artifacts.current or {}).get("lock") or {}).get("held"))


async def _agent_holds_the_doc(backend: BackendProcess) -> tuple[Any, ConvexClient, dict[str, Any]]:
    """A space with one doc whose lock the agent @dara holds (a 60 s lease): (seeded, the
    agent's connected client, its grant). The caller closes the client."""
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as owner:
        await owner.mutation(api.spaces.addMember, {"spaceId": seeded.space_id, "handle": "dara",
                                                    "kind": "agent", "role": "editor"})
    agent = ConvexClient(backend.url, auth=backend.mint_token("dara", agent=True))
    await agent.connect()
    await agent.mutation(api.actors.ensure, {})
    grant = await agent.mutation(api.locks.acquire, {"artifactId": seeded.ids["doc"], "ttlMs": 60_000})
    return seeded, agent, grant


async def test_conflict_names_the_agent_and_queue_hands_over(backend: BackendProcess) -> None:
    seeded, agent, grant = await _agent_holds_the_doc(backend)
    try:
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False))
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, LockConflictDialog))
            dialog = app.screen
            assert dialog.conflict.handle == "dara" and dialog.conflict.kind == "agent"
            await pilot.press("w")  # wait in the queue
            await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen))
            await wait_for(pilot, lambda: ((app.screen.artifacts.current or {}).get("lock") or {}).get("queueLength") == 1)
            await agent.mutation(api.locks.release, {"artifactId": seeded.ids["doc"], "token": grant["token"]})
            # The artifacts pane has the focus: the grant opens the editor under the granted hold.
            await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.hold is not None
                           and app.screen.hold.held)
            assert (((await _get(backend, seeded.ids["doc"]))["lock"] or {}).get("holder") or {})["handle"] == "alice"
    finally:
        await agent.close()


async def test_losing_the_lock_is_shown_and_text_kept(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        editor = app.screen
        editor.query_one("TextArea").load_text("unsaved work")
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as other:
            await other.mutation(api.locks.forceRelease, {"artifactId": seeded.ids["doc"], "reason": "test"})
        await wait_for(pilot, lambda: editor.hold.lost_reason is not None)
        assert editor.text == "unsaved work" and isinstance(app.screen, EditorScreen)
        await pilot.press("ctrl+s")  # takes the lock again (it is free) and saves
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen))
        assert (await _get(backend, seeded.ids["doc"]))["content"] == "unsaved work"


async def test_rejected_mutation_is_a_message_not_a_crash(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt))
        app.screen.query_one("Input").value = "x" * 500  # titles are 1-120 characters
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("Cannot create" in n.message for n in app._notifications))
        assert isinstance(app.screen, SpaceScreen)


async def test_broken_config_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[theme]\nname = "dark"\n[locks]\nlease_ttl_s = "soon"\n')
    data = tmp_path / "data"
    app = CollabApp(LaunchOptions(config_path=cfg))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
            assert f"{cfg}:4" in app.screen.message and "lease_ttl_s" in app.screen.message
            cfg.write_text(f'[backend]\ndata_dir = "{data}"\n')  # fixed: r retries and gets in
            await pilot.press("r")
            await wait_for(pilot, lambda: space_ready(app, presence=False), timeout=30)
    finally:
        subprocess.run([sys.executable, "-m", "collab.tui.cli", "serve", "--stop", "--data-dir", str(data)],
                       capture_output=True, timeout=30)


async def test_dead_backend_keeps_data_and_reconnects(tmp_path: Path) -> None:
    proc = BackendProcess(tmp_path / "b", functions="collab.backend.model").start()
    try:
        seeded = await asyncio.to_thread(seed_space, proc, _one_doc)
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False))
            # As with a remote deployment, nobody restarts this backend but the test (the
            # embedded revival is tested in test_backend_revive.py).
            assert app.session is not None
            app.session.keeper = None
            proc.kill()
            badge = app.screen.query_one(ConnectionBadge)
            await wait_for(pilot, lambda: badge.status.state is ConnectionState.RECONNECTING)
            doc = app.screen.query_one(DocumentView)
            assert doc.stale and doc.artifact["content"] == "first text\n"  # last data kept
            await asyncio.to_thread(proc.start)
            await wait_for(pilot, lambda: badge.live, timeout=30)
            assert not doc.stale
    finally:
        proc.stop()


async def test_keymap_from_config_remaps_a_binding(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app(extra_config='[keymap]\n"artifact.edit" = "E"\n')
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("e")
        await pilot.pause(0.3)
        assert isinstance(app.screen, SpaceScreen)
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        await pilot.press("escape")


async def test_resize_storm_and_palette(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        for i in range(40):
            await pilot.resize_terminal(30 + (i * 7) % 90, 8 + (i * 5) % 40)
        await pilot.resize_terminal(60, 24)
        await pilot.pause()
        assert isinstance(app.screen, SpaceScreen)
        names = [c[0] for c in app.screen.palette_commands()]
        assert "Edit Plan" in names and "History of Plan" in names and "Ask @edwin" in names


def _burst(app: CollabApp, text: str) -> None:
    """Queue every key at once, like a terminal delivering a pasted-speed burst (tmux
    send-keys): no pause between ``e`` and the text, not even the one Pilot.press makes."""
    from textual import events
    from textual.keys import _character_to_key

    for ch in text:
        app.post_message(events.Key(_character_to_key(ch), ch))


async def test_keys_typed_right_after_e_land_in_the_editor(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    typed = "hello world: every key counts, even h d r w U"  # h/d/r/w/U are space-screen keys
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        _burst(app, "e" + typed)
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.hold is not None)
        editor = app.screen
        await wait_for(pilot, lambda: editor.text == typed + "first text\n")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen))
        assert (await _get(backend, seeded.ids["doc"]))["content"] == typed + "first text\n"


async def test_keys_after_e_and_ctrl_s_in_one_burst_save(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("e", *"quick ", "ctrl+s")  # save before the grant may have arrived
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen))
        await wait_for(pilot, lambda: (app.screen.artifacts.current or {}).get("version") == 2)
        assert (await _get(backend, seeded.ids["doc"]))["content"] == "quick first text\n"


async def test_text_typed_while_the_lock_is_refused_is_kept(backend: BackendProcess) -> None:
    seeded, agent, grant = await _agent_holds_the_doc(backend)
    try:
        app = seeded.app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False))
            _burst(app, "eabc")
            await wait_for(pilot, lambda: isinstance(app.screen, LockConflictDialog))
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen))
            await agent.mutation(api.locks.release, {"artifactId": seeded.ids["doc"], "token": grant["token"]})
            await wait_for(pilot, lambda: not ((app.screen.artifacts.current or {}).get("lock") or {}).get("held"))
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.hold is not None)
            assert app.screen.text == "abcfirst text\n"
            await pilot.press("escape")
    finally:
        await agent.close()
