"""The discussion pane: a multi-line composer, stopping the agents' runs (ctrl+g), the
decisions / open questions sidebar, and a presence bar that fits a 60-column pane."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rich.text import Text

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.widgets.composer import Composer
from collab.widgets.message_log import MessageLog
from collab.widgets.outline import OutlinePanel
from collab.widgets.presence_bar import PresenceBar, fit

from .conftest import seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(60)


def test_fit_replaces_what_does_not_fit_by_a_count() -> None:
    humans = [Text("● you ▸#test-plan"), Text("● @bob ✎typing")]
    agents = [Text(f"@{h}") for h in ("rhea", "dara", "edwin", "quinn", "polly")]
    wide = fit(humans, agents, 200).plain
    assert wide == "● you ▸#test-plan  ● @bob ✎typing  agents: @rhea @dara @edwin @quinn @polly"
    for width in (60, 45, 30, 20):
        line = fit(humans, agents, width).plain
        assert len(line) <= width and line.startswith("● you") and "…" not in line, (width, line)
    assert fit(humans, agents, 60).plain.endswith("agents: @rhea @dara +3")
    assert fit(humans, agents, 45).plain.endswith("✎typing +5")
    assert fit(humans, agents, 20).plain == "● you ▸#test-plan +6"


async def _members(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    for h in ("rhea", "dara", "edwin", "quinn", "polly"):
        await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": h, "kind": "agent",
                                                "role": "editor"})
    for h in ("bob", "carol"):
        await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": h, "kind": "human",
                                                "role": "editor"})


async def test_presence_bar_fits_60_columns(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _members)
    app = seeded.app()
    async with app.run_test(size=(60, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app))
        bar = app.screen.query_one(PresenceBar)
        line = "".join(s.text for s in bar.render_line(0)).rstrip()
        assert line.startswith("● you") and "+" in line and "…" not in line, line


async def test_composer_takes_several_lines_and_sends_them(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _members)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        await pilot.press("f4", *"first", "ctrl+j", *"second", "alt+enter", *"@ed")
        composer = app.screen.query_one(Composer)
        assert composer.text == "first\nsecond\n@ed" and composer.suggestion == "win "
        await pilot.press("tab", *"third")
        assert composer.text == "first\nsecond\n@edwin third"
        await pilot.press("enter")
        log = app.screen.query_one(MessageLog)
        await wait_for(pilot, lambda: len(log.messages) == 1)
        assert log.messages[0]["body"] == "first\nsecond\n@edwin third" and composer.text == ""


async def test_ctrl_g_stops_the_running_agents_and_the_reply_says_so(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _members)
    app = seeded.app()
    agent = ConvexClient(backend.url, auth=backend.mint_token("quinn", agent=True))
    await agent.connect()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False))
            await pilot.press("f4", *"@quinn hello", "enter")
            log = app.screen.query_one(MessageLog)
            await wait_for(pilot, lambda: len(log.messages) == 1)
            run = await agent.mutation(api.runs.claim, {"spaceId": seeded.space_id})  # the agent starts replying
            mid = await agent.mutation(api.messages.post, {"spaceId": seeded.space_id, "body": "Hel",
                                                           "streaming": True, "runId": run["_id"]})
            await agent.mutation(api.streams.open, {"spaceId": seeded.space_id, "kind": "message", "key": "k" * 16,
                                                    "messageId": mid, "runId": run["_id"]})
            await wait_for(pilot, lambda: len(log.messages) == 2)
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: any("Stopped @quinn" in n.message for n in app._notifications))
            await wait_for(pilot, lambda: log.messages[1].get("state") == "failed")
            text = log.message_text(1)
            assert "stopped: cancelled by @alice" in text and text.endswith("Hel")
            status = (await agent.query(api.runs.get, {"runId": run["_id"]}))["status"]
            assert status == "cancelled"
    finally:
        await agent.close()


async def test_sidebar_lists_decisions_and_open_questions(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _members)
    app = seeded.app()
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        d = await c.mutation(api.messages.post, {"spaceId": seeded.space_id, "body": "We ship on Friday."})
        await c.mutation(api.messages.markDecision, {"messageId": d, "decision": True})
        q = await c.mutation(api.messages.post, {"spaceId": seeded.space_id, "body": "Who reviews?"})
        await c.mutation(api.messages.markQuestion, {"messageId": q, "open": True})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False, messages=2))
        panel = app.screen.query_one(OutlinePanel)
        assert not panel.display
        app.screen.query_one(MessageLog).focus()
        await pilot.press("s")
        body = panel.query_one("#outline-body")
        await wait_for(pilot, lambda: "We ship on Friday." in str(body.render()))
        assert panel.display and "Who reviews?" in str(body.render())
        await pilot.press("s")
        assert not panel.display and app.screen.discussion._outline.live is None
