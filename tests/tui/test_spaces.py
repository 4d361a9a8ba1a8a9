"""Switching spaces (``app.switch_space``, ctrl+o): the picker lists the user's spaces from the
backend, opens another one, and on the embedded backend names a new one into existence."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.widgets import Input, OptionList

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.screens.space import SpaceScreen
from collab.screens.spaces import NEW, SpacePicker

from .conftest import add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(60)


async def _query(backend: BackendProcess, fn: Any, args: dict[str, Any]) -> Any:
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        return await c.query(fn, args)


async def test_switch_to_another_space_and_to_a_new_one(backend: BackendProcess) -> None:
    async def one_doc(c: ConvexClient, space_id: str, ids: dict[str, str], _b: Any) -> None:
        await add_doc(c, space_id, "Plan", "first\n")

    async def other_doc(c: ConvexClient, space_id: str, ids: dict[str, str], _b: Any) -> None:
        await add_doc(c, space_id, "Elsewhere notes", "second\n")

    here = await asyncio.to_thread(seed_space, backend, one_doc)
    there = await asyncio.to_thread(seed_space, backend, other_doc)
    app = here.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app), what="the first space")
        first = app.session
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SpacePicker), what="the picker")
        options = app.screen.query_one(OptionList)
        names = {options.get_option_at_index(i).id: options.get_option_at_index(i).disabled
                 for i in range(options.option_count)}
        assert names[here.space] is True and names[there.space] is False and NEW in names
        options.highlighted = options.get_option_index(there.space)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen) and app.session is not first
                       and space_ready(app), what="the other space")
        assert app.session.space_name == there.space
        assert [a["title"] for a in app.screen.artifacts.artifacts] == ["Elsewhere notes"]
        # the first space no longer shows alice as here (the old session left)
        assert [p["actorHandle"] for p in await _query(backend, api.presence.list, {"spaceId": here.space_id})] == []

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SpacePicker), what="the picker again")
        options = app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index(NEW)
        await pilot.press("enter")
        name = app.screen.query_one("#new-space", Input)
        await wait_for(pilot, lambda: name.has_focus, what="the name field")
        await pilot.press(*f"{here.space}-fresh", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen)
                       and app.session.space_name == f"{here.space}-fresh" and space_ready(app, presence=False),
                       what="the new space")
        mine = {s["name"]: s["role"] for s in await _query(backend, api.spaces.list, {})}
        assert mine[f"{here.space}-fresh"] == "owner"
        members = await _query(backend, api.spaces.members, {"spaceId": app.session.space_id})
        assert sorted(m["handle"] for m in members if m["kind"] == "agent") == ["dara", "edwin", "polly", "quinn", "rhea"]


async def test_escape_keeps_the_space(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
        session = app.session
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, SpacePicker), what="the picker")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen), what="the space screen")
        assert app.session is session and session.live
