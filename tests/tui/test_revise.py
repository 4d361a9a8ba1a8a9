"""Asking agents to revise an artifact from the composer: ``/revise @agent [#artifact] ...``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.backend_client.space import split_command
from collab.widgets.composer import Composer

from .conftest import add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(60)


def test_split_command() -> None:
    assert split_command("hello @edwin") == ("reply", "hello @edwin")
    assert split_command("/revise @edwin #plan shorter") == ("revise", "@edwin #plan shorter")
    assert split_command("/EDIT @quinn fix typos") == ("revise", "@quinn fix typos")
    with pytest.raises(ValueError, match="Unknown command /rewise"):
        split_command("/rewise @edwin x")
    with pytest.raises(ValueError, match="needs an @agent"):
        split_command("/revise make it shorter")


async def _seed(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": "edwin", "kind": "agent", "role": "editor"})
    ids["doc"] = await add_doc(c, space_id, "Test plan", "Run everything, always, twice.")


async def test_revise_command_queues_a_revision_of_the_artifact_on_screen(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _seed)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
        await pilot.press("f4", *"/rewise @edwin x", "enter")
        composer = app.screen.query_one(Composer)
        await wait_for(pilot, lambda: any("Unknown command" in n.message for n in app._notifications))
        assert composer.text == "/rewise @edwin x"  # nothing lost on a typo
        composer.value = ""
        await pilot.press(*"/revise @edwin make it shorter", "enter")
        await wait_for(pilot, lambda: composer.text == "")
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        runs = await c.query(api.runs.list, {"spaceId": seeded.space_id})
    revisions = [r for r in runs if r.get("kind") == "revise"]
    assert len(revisions) == 1, runs
    assert revisions[0]["artifactId"] == seeded.ids["doc"]


async def test_keys_typed_right_after_a_pane_key_land_in_that_pane(backend: BackendProcess) -> None:
    """`f4` then text in one burst: every key reaches the composer (none opens the editor)."""
    seeded = await asyncio.to_thread(seed_space, backend, _seed)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
        app.screen.query_one("#tree").focus()
        await pilot.pause()
        from textual import events
        from textual.keys import _character_to_key

        # Queued at once, as a terminal delivers a burst (Pilot.press would pause between keys).
        app.post_message(events.Key("f4", None))
        for ch in "/revise @edwin edit here":
            app.post_message(events.Key(_character_to_key(ch), ch))
        composer = app.screen.query_one(Composer)
        await wait_for(pilot, lambda: composer.text == "/revise @edwin edit here", timeout=5)
        from collab.screens.editor import EditorScreen

        assert not isinstance(app.screen, EditorScreen)


async def test_text_and_enter_in_one_burst_sends_all_of_it(backend: BackendProcess) -> None:
    """Enter is resolved in the app's key loop; the text before it must still be sent whole."""
    from textual import events
    from textual.keys import _character_to_key

    from collab.widgets.message_log import MessageLog

    seeded = await asyncio.to_thread(seed_space, backend, _seed)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
        app.post_message(events.Key("f4", None))
        for ch in "one":
            app.post_message(events.Key(_character_to_key(ch), ch))
        app.post_message(events.Key("ctrl+j", None))
        for ch in "two":
            app.post_message(events.Key(_character_to_key(ch), ch))
        app.post_message(events.Key("enter", "\r"))
        log = app.screen.query_one(MessageLog)
        await wait_for(pilot, lambda: len(log.messages) == 1)
        assert log.messages[0]["body"] == "one\ntwo"


async def test_ctrl_s_right_after_text_saves_all_of_it(backend: BackendProcess) -> None:
    """With the lock already held, ctrl+s in the same burst as the text saves the whole text."""
    from textual import events
    from textual.keys import _character_to_key

    from collab.screens.editor import EditorScreen

    seeded = await asyncio.to_thread(seed_space, backend, _seed)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
        await pilot.press("f2", "e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.hold is not None)
        await pilot.press("end")
        for ch in " Tested.":
            app.post_message(events.Key(_character_to_key(ch), ch))
        app.post_message(events.Key("ctrl+s", None))
        await wait_for(pilot, lambda: not isinstance(app.screen, EditorScreen))
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        art = await c.query(api.artifacts.get, {"artifactId": seeded.ids["doc"]})
    assert art["content"].endswith("twice. Tested."), art["content"]
