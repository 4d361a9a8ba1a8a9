"""SVG snapshots of the pipeline screen at 80x24 and in a 60-column tmux pane, against a real
backend: a draft awaiting the viewer's review after one rejection, and an agent's edit stage
streaming (durable output plus its live tail, with the cursor). Clocks are frozen; the agents'
side is played by real clients acting as the agents."""

from __future__ import annotations

from typing import Any

import pytest

from collab.backend_client import ConvexClient
from collab.backend_client.api import api

from .conftest import add_doc, seed_space, space_ready, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((60, 24), id="60x24")]
STAGES = [{"name": "draft", "actor": "dara", "approver": "human", "instructions": "Write a first draft."},
          {"name": "edit", "actor": "edwin", "approver": "human"},
          {"name": "polish", "actor": "polly", "approver": "human"}]
DRAFT = ("# Release checklist\n\nBefore a release we run the whole suite twice, on two machines, and "
         "compare the timings with the last release.\n\n- locks under contention\n- reconnect after a kill")


async def _stage(backend: Any, handle: str, pid: str, aid: str, text: str, tail: str = "",
                 submit: bool = True) -> None:
    async with ConvexClient(backend.url, auth=backend.mint_token(handle, agent=True)) as agent:
        token = (await agent.mutation(api.locks.acquire, {"artifactId": aid, "ttlMs": 600_000}))["token"]
        run = (await agent.query(api.pipelines.get, {"pipelineId": pid}))["runs"][-1]
        opened = await agent.mutation(api.proposals.open, {"proposalId": run["proposalId"], "key": "k" * 16,
                                                           "token": token})
        await agent.mutation(api.proposals.append, {"proposalId": run["proposalId"], "text": text, "token": token})
        if tail:
            await agent.mutation(api.streams.push, {"chunks": [{"streamId": opened["streamId"], "key": "k" * 16,
                                                                "text": text + tail, "seq": 1, "base": 0}]})
        if submit:
            await agent.mutation(api.pipelines.submit, {"pipelineId": pid, "stageRunId": run["_id"], "token": token})


async def _piped(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> str:
    for h in ("dara", "edwin", "polly"):
        await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": h, "kind": "agent", "role": "editor"})
    ids["doc"] = await add_doc(c, space_id, "Release checklist", "We test before we ship.")
    pid = (await c.mutation(api.pipelines.start, {"artifactId": ids["doc"], "title": "Writing", "flow": "writing",
                                                  "stages": STAGES}))["pipelineId"]
    ids["pipeline"] = pid
    return str(pid)


async def _review(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    pid = await _piped(c, space_id, ids, backend)
    await _stage(backend, "dara", pid, ids["doc"], "We test things before shipping.")
    first = (await c.query(api.pipelines.get, {"pipelineId": pid}))["runs"][-1]
    await c.mutation(api.pipelines.reject, {"pipelineId": pid, "stageRunId": first["_id"],
                                            "reason": "Too thin: list what we check."})
    await _stage(backend, "dara", pid, ids["doc"], DRAFT)
    await c.mutation(api.notifications.markRead, {})  # toasts are not what this snapshot shows


async def _streaming(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    pid = await _piped(c, space_id, ids, backend)
    await _stage(backend, "dara", pid, ids["doc"], DRAFT)
    run = (await c.query(api.pipelines.get, {"pipelineId": pid}))["runs"][-1]
    await c.mutation(api.pipelines.approve, {"pipelineId": pid, "stageRunId": run["_id"], "reason": "Good."})
    await _stage(backend, "edwin", pid, ids["doc"], "# Release checklist\n\nBefore each release we run the suite",
                 tail=" twice, on two mach", submit=False)
    await c.mutation(api.notifications.markRead, {})


def _open(seeder: Any, size: tuple[int, int], fresh_backend: Any, want: str, output_end: str = "") -> tuple[Any, Any]:
    from collab.screens.pipeline import PipelineScreen
    from collab.widgets.stream_text import StreamText

    seeded = seed_space(fresh_backend, seeder, name="design")
    app = seeded.app()

    async def ready(pilot: Any) -> None:
        await wait_for(pilot, lambda: space_ready(app) and app.screen.artifacts.current is not None)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.current is not None
                       and want in str(app.screen.query_one("#pipe-status").render())
                       and app.screen.query_one(StreamText).text.endswith(output_end))
        await pilot.pause()

    return app, ready


@pytest.mark.parametrize("size", SIZES)
def test_pipeline_awaiting_my_review(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    app, ready = _open(_review, size, fresh_backend, "Your review is needed")
    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_pipeline_stage_streaming(snap_compare: Any, fresh_backend: Any, size: tuple[int, int]) -> None:
    app, ready = _open(_streaming, size, fresh_backend, "is working on edit", "two mach")
    assert snap_compare(app, terminal_size=size, run_before=ready)
