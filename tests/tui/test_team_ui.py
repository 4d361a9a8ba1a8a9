"""Roles and locks in the app, against a real backend: a viewer is offered nothing that writes
(keys disabled and saying why, read-only composer, palette without write commands) and gets
the editor's keys the moment an owner changes the role; a queued lock that reaches someone
whose artifacts pane is not focused is released after ``locks.grant_idle_s`` with a
notification; the members screen lists everyone live and lets an owner change a role."""

from __future__ import annotations

import asyncio
from typing import Any

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.screens.dialogs import Prompt
from collab.screens.editor import EditorScreen
from collab.screens.members import MembersScreen
from collab.screens.space import SpaceScreen
from .conftest import add_doc, seed_space, space_ready, wait_for


async def _with_member(handle: str, role: str):
    async def seed(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
        ids["doc"] = await add_doc(c, space_id, "Plan", "first line\n")
        await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": handle, "kind": "human", "role": role})
        ids["member"] = next(m["actorId"] for m in await c.query(api.spaces.members, {"spaceId": space_id})
                             if m["handle"] == handle)
    return seed


def _notes(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_viewer_is_offered_nothing_that_writes(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, await _with_member("vera", "viewer"))
    app = seeded.app("vera")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen) and app.screen.artifacts.current is not None)
        screen: SpaceScreen = app.screen
        arts, disc = screen.artifacts, screen.discussion
        assert "viewer" in str(screen.query_one("#title").render())
        for action in ("edit_artifact", "new_artifact", "wait_lock", "rename_artifact", "tag_artifact"):
            assert arts.check_action(action, ()) is None, action
        assert disc.composer.read_only and "viewer" in disc.composer.placeholder
        names = [name for name, _, _ in screen.palette_commands()]
        assert any(n.startswith("History of") for n in names)
        assert not any(n.startswith(("Edit ", "New artifact", "Rename", "Tag ", "Force unlock", "Stop the agents",
                                     "Ask @", "Invite")) for n in names), names
        await pilot.press("e")
        await wait_for(pilot, lambda: any("viewer" in n for n in _notes(app)))
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, SpaceScreen)  # no editor, no prompt opened
        # the backend refuses a viewer's write too (the UI is not the only guard)
        async with ConvexClient(backend.url, auth=backend.mint_token("vera")) as vera:
            try:
                await vera.mutation(api.artifacts.create, {"spaceId": seeded.space_id, "title": "x",
                                                           "kind": "markdown", "content": ""})
                raise AssertionError("a viewer created an artifact")
            except Exception as exc:
                assert "INSUFFICIENT_ROLE" in str(getattr(exc, "data", exc))
        # an owner makes vera an editor: the keys come back while the app is open
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as alice:
            await alice.mutation(api.spaces.setRole, {"spaceId": seeded.space_id, "actorId": seeded.ids["member"],
                                                      "role": "editor"})
        await wait_for(pilot, lambda: arts.check_action("edit_artifact", ()) is True and not disc.composer.read_only)
        await wait_for(pilot, lambda: any("made you editor" in n for n in _notes(app)))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))


async def test_unused_grant_is_released_after_idle_time(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, await _with_member("bob", "editor"))
    bob = ConvexClient(backend.url, auth=backend.mint_token("bob"))
    await bob.connect(timeout=10)
    try:
        grant = await bob.mutation(api.locks.acquire, {"artifactId": seeded.ids["doc"]})
        app = seeded.app("alice", extra_config="[locks]\ngrant_idle_s = 1\n")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
            lock = bob.watch(api.locks.queue, {"artifactId": seeded.ids["doc"]})
            await pilot.press("w")  # wait in the queue for bob's lock
            await wait_for(pilot, lambda: (lock.value or {}).get("queueLength") == 1, timeout=30)
            await pilot.press("f4")  # and walk away from the artifacts pane
            await bob.mutation(api.locks.release, {"artifactId": seeded.ids["doc"], "token": grant["token"]})
            await wait_for(pilot, lambda: ((lock.value or {}).get("holder") or {}).get("handle") == "alice",
                           timeout=30)
            await wait_for(pilot, lambda: any("is yours" in n for n in _notes(app)), timeout=30)
            assert not isinstance(app.screen, EditorScreen)
            # nobody opens it: released for the next in line, and alice is told
            await wait_for(pilot, lambda: lock.value is not None and not lock.value["held"], timeout=30)
            await wait_for(pilot, lambda: any("Released the lock on Plan" in n for n in _notes(app)), timeout=30)
            lock.close()
    finally:
        await bob.close()


async def test_members_screen_is_live_and_owners_change_roles(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, await _with_member("bob", "editor"))
    app = seeded.app("alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen) and len(app.screen.rows()) >= 7)
        screen: MembersScreen = app.screen
        rows = dict(screen.rows())
        assert rows[seeded.ids["member"]][1] == "editor"
        screen.query_one("#members-table").move_cursor(row=[a for a, _ in screen.rows()].index(seeded.ids["member"]))
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt))
        app.screen.query_one("Input").value = "viewer"
        await pilot.press("enter")
        await wait_for(pilot, lambda: dict(screen.rows())[seeded.ids["member"]][1] == "viewer")
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as alice:
            audit = await alice.query(api.audit.list, {"spaceId": seeded.space_id})
        role = next(a for a in audit if a["type"] == "member.role")
        assert role["data"] == {"handle": "bob", "from": "editor", "to": "viewer", "byHandle": "alice"}
