"""Pilot tests of the pipeline view against a real backend process; the agent's side is played
by a real client acting as the agent (taking the lock, streaming its output, handing it in),
so what the screen shows comes through the live queries alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.screens.dialogs import PipelineHoldsDialog, Prompt
from collab.screens.dialogs import PipelineFlowPicker
from collab.screens.pipeline import PipelineScreen
from collab.screens.stage_editor import StageEditorScreen
from collab.widgets.composer import Composer
from collab.widgets.stage_track import StageTrack, track_text
from collab.widgets.stream_text import StreamText

from .conftest import add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(90)
STAGES = [{"name": "draft", "actor": "dara", "approver": "human"},
          {"name": "polish", "actor": "human:alice", "approver": "auto"}]


async def _seed(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": "dara", "kind": "agent",
                                            "role": "editor", "name": "Dara"})
    ids["doc"] = await add_doc(c, space_id, "Test plan", "Run everything twice.")


async def _seed_piped(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    await _seed(c, space_id, ids, backend)
    ids["pipeline"] = (await c.mutation(api.pipelines.start, {"artifactId": ids["doc"], "title": "Writing",
                                                              "flow": "writing", "stages": STAGES}))["pipelineId"]


class Dara:
    """The agent's side of a stage, through its own client."""

    def __init__(self, backend: BackendProcess, pipeline_id: str, artifact_id: str) -> None:
        self.client = ConvexClient(backend.url, auth=backend.mint_token("dara", agent=True))
        self.pid, self.aid = pipeline_id, artifact_id
        self.token = 0.0

    async def begin(self) -> dict[str, Any]:
        await self.client.connect(timeout=10)
        self.token = (await self.client.mutation(api.locks.acquire, {"artifactId": self.aid}))["token"]
        run = (await self.client.query(api.pipelines.get, {"pipelineId": self.pid}))["runs"][-1]
        opened = await self.client.mutation(api.proposals.open, {"proposalId": run["proposalId"], "key": "k" * 16,
                                                                 "token": self.token})
        return {**run, "streamId": opened["streamId"]}

    async def tail(self, run: dict[str, Any], text: str, seq: int) -> None:
        await self.client.mutation(api.streams.push, {"chunks": [{"streamId": run["streamId"], "key": "k" * 16,
                                                                  "text": text, "seq": seq}]})

    async def hand_in(self, run: dict[str, Any], text: str) -> None:
        await self.client.mutation(api.proposals.append, {"proposalId": run["proposalId"], "text": text,
                                                          "token": self.token})
        await self.client.mutation(api.pipelines.submit, {"pipelineId": self.pid, "stageRunId": run["_id"],
                                                          "token": self.token})


def _status(app: Any) -> str:
    return str(app.screen.query_one("#pipe-status").render())


async def test_review_reject_with_reason_approve_then_a_human_stage(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _seed_piped)
    app = seeded.app()
    dara = Dara(backend, seeded.ids["pipeline"], seeded.ids["doc"])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.current is not None)
        screen = app.screen
        out = screen.query_one(StreamText)
        assert track_text(screen.query_one(StageTrack).stages).plain == "draft ● -> polish ○"
        # the agent's output streams in: live tail first, then the durable text
        run = await dara.begin()
        await dara.tail(run, "Step one: run", 1)
        await wait_for(pilot, lambda: out.text == "Step one: run" and out.streaming)
        await dara.tail(run, " everything", 2)  # a push appends to the tail
        await wait_for(pilot, lambda: out.text == "Step one: run everything")
        await dara.hand_in(run, "Step one: run everything.")
        await wait_for(pilot, lambda: "Your review is needed" in _status(app))
        assert out.text == "Step one: run everything." and not out.streaming
        # reject: an empty reason sends nothing; a reason goes back to the agent
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt))
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("needs a reason" in n.message for n in app._notifications))
        assert screen.current["status"] == "awaitingReview"
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt))
        await pilot.press(*"Add a second step.", "enter")
        await wait_for(pilot, lambda: screen.current["attempt"] == 2 and screen.current["status"] == "working")
        assert "✗ draft #1 rejected by @alice: Add a second step." in str(screen.query_one("#pipe-attempts").render())
        run = await dara.begin()
        await dara.hand_in(run, "Step one: run everything.\nStep two: compare.")
        await wait_for(pilot, lambda: "Your review is needed" in _status(app))
        await pilot.press("d")  # the diff against the input
        diff = screen.query_one("#pipe-diff-text")
        await wait_for(pilot, lambda: "+Step two: compare." in str(diff.render()))
        await pilot.press("d", "a")
        # approved: version 2; the polish stage is alice's
        await wait_for(pilot, lambda: "Your turn" in _status(app))
        assert track_text(screen.query_one(StageTrack).stages).plain == "draft ✓ -> polish ●"
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, StageEditorScreen) and app.screen.hold is not None)
        editor = app.screen
        assert editor.text == "Step one: run everything.\nStep two: compare."  # the stage's input
        editor.query_one("TextArea").load_text("Step one: run everything.\nStep two: compare the numbers.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen and screen.pipeline["status"] == "done")
        # handing in ended the hold on purpose: never reported as a lost lock
        assert not any("lost the lock" in n.message for n in app._notifications)
        assert track_text(screen.query_one(StageTrack).stages).plain == "draft ✓ -> polish ✓"
        assert "Done" in _status(app)
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        art = await c.query(api.artifacts.get, {"artifactId": seeded.ids["doc"]})
        history = await c.query(api.artifacts.history, {"artifactId": seeded.ids["doc"]})
    await dara.client.close()
    assert art["version"] == 3 and art["content"].endswith("compare the numbers.") and art["lock"]["pipeline"] is None
    assert [(v["source"], v["provenance"]["stageName"], v["provenance"]["approver"]) for v in history[:2]] == [
        ("human", "polish", "auto"), ("agent", "draft", "alice")]


async def test_an_outside_edit_is_refused_with_the_pipeline_named(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _seed_piped)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
        doc = app.screen.query_one("#document")
        await wait_for(pilot, lambda: "⚙ Writing: draft at work" in str(doc.query_one("#doc-header").render()))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineHoldsDialog))
        message = app.screen.conflict.message
        assert "The Writing pipeline holds this artifact: stage draft is @dara's turn" in message
        assert "@alice, who started it, can cancel it" in message
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.current is not None)
        # nothing to review yet: the footer does not offer it, and the key does nothing
        assert app.screen.check_action("approve", ()) is False
        await pilot.press("a")
        await pilot.pause()
        assert app.screen.pipeline["status"] == "running"
        await pilot.press("ctrl+g")  # cancel (alice started it): a reason is offered, enter confirms
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.pipeline is not None and app.screen.pipeline["status"] == "cancelled")
        assert "Cancelled: cancelled by @alice" in _status(app)


async def test_start_from_the_composer_and_from_the_flow_picker(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _seed)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False) and app.screen.artifacts.current is not None)
        composer = app.screen.query_one(Composer)
        await pilot.press("f4", *"/pipeline novel #test-plan", "enter")
        await wait_for(pilot, lambda: any("No flow named 'novel'" in n.message for n in app._notifications))
        assert composer.text == "/pipeline novel #test-plan"  # kept
        composer.value = ""
        await pilot.press(*"/pipeline writing #test-plan", "enter")  # started, and its screen opens
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.pipeline is not None)
        assert any("Started a pipeline on #test-plan" in n.message for n in app._notifications)
        assert track_text(app.screen.query_one(StageTrack).stages).plain == "draft ● -> edit ○ -> polish ○"
        assert app.screen.pipeline["title"] == "Writing"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.pipeline["status"] == "cancelled")
        await pilot.press("s")  # start again, from the picker of pipeline flows
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineFlowPicker))
        assert list(app.screen.flows) == ["review", "writing"]
        await pilot.press("enter")  # the first: review
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.pipeline is not None
                       and app.screen.pipeline["status"] == "running")
        assert track_text(app.screen.query_one(StageTrack).stages).plain == "critique ● -> revise ○"
