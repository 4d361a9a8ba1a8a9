"""Pipelines end to end: the embedded backend, the run worker, litellm's real HTTP/SSE path
against the loopback server, and a human's client that reviews by watching live queries.

The writing preset with one rejection (the reason and the previous output reach the next
attempt; each approval is a version naming pipeline, stage and approver; the stage output
streams at both cadences), an agent approver's structured verdicts, a critique whose notes
reach the next stage, and a worker killed mid-stage."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from collab.backend_client.api import api
from collab.backend_client.space.pipeline import stage_output, start_args, track, track_line
from collab.config import load_config
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

from tests.flows._world import World, config_text, make_config, worker, world
from tests.live import until

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

DRAFT_1 = "Step one: test the thing. Step two: ship it when the numbers look right to everyone."
DRAFT_2 = "# Release plan\n\nStep one: test the thing. Step two: ship it when the numbers look right."
EDITED = "# Release plan\n\n1. Test the thing.\n2. Ship it when the numbers look right."
POLISHED = "# Release plan\n\n1. Test the thing.\n2. Ship it once the numbers look right."


async def _start(w: World, config: Any, flow: str) -> str:
    return str((await w.human.mutation(api.pipelines.start, start_args(config, flow, w.artifact)))["pipelineId"])


async def _awaiting(w: World, pid: str, stage: int, attempt: int) -> dict[str, Any]:
    """The attempt once it awaits review (the human's live query reaching that value)."""
    live = w.human.watch(api.pipelines.get, {"pipelineId": pid})
    try:
        def check() -> dict[str, Any] | None:
            got = live.value
            if not got or got["pipeline"]["status"] == "failed":
                assert not got or got["pipeline"]["status"] != "failed", got["pipeline"].get("reason")
                return None
            run = got["runs"][-1]
            ok = (run["stage"], run["attempt"], run["status"]) == (stage, attempt, "awaitingReview")
            return run if ok else None
        return await until(check, live, what=f"stage {stage} attempt {attempt} to await review")
    finally:
        live.close()


async def _runs_over(w: World, n: int) -> list[dict[str, Any]]:
    """The space's runs once ``n`` of them exist and all are over (a live query)."""
    live = w.human.watch(api.runs.list, {"spaceId": w.space})
    try:
        return await until(lambda: live.value if live.value is not None and len(live.value) >= n and all(
            r["status"] in ("done", "failed", "cancelled") for r in live.value) else None, live,
                           what=f"{n} runs to end")
    finally:
        live.close()


async def _finished(w: World, pid: str) -> dict[str, Any]:
    live = w.human.watch(api.pipelines.get, {"pipelineId": pid})
    try:
        return await until(lambda: live.value if live.value and live.value["pipeline"]["status"] in
                           ("done", "failed", "cancelled") else None, live, what="the pipeline to end")
    finally:
        live.close()


async def test_writing_preset_with_one_rejection(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("dara", Reply(DRAFT_1, tokens_per_second=30), Reply(DRAFT_2, tokens_per_second=60))
    openai_server.script("edwin", Reply(EDITED, tokens_per_second=80))
    openai_server.script("polly", Reply("```\n" + POLISHED + "\n```", tokens_per_second=80))
    handles = ["dara", "edwin", "polly"]
    config = make_config(openai_server.base_url, {h: h for h in handles})
    async with world(tmp_path, handles) as w, worker(w, config, handles):
        await _writing(w, config, openai_server)


async def _writing(w: World, config: Any, openai_server: OpenAIStreamServer) -> None:
    pid = await _start(w, config, "writing")
    # what the pipeline screen watches: the attempts and the live tails of the output
    got = w.human.watch(api.pipelines.get, {"pipelineId": pid})
    tails = w.human.watch(api.proposals.live, {"artifactId": w.artifact})
    frames: list[str] = []

    def frame(_: Any) -> None:
        if got.value and got.value["runs"][0]["status"] == "working":
            frames.append(stage_output(got.value["runs"][0], tails.value))

    got.subscribe(frame)
    tails.subscribe(frame)
    first = await _awaiting(w, pid, 0, 1)
    assert first["output"] == DRAFT_1 and first["actorHandle"] == "dara"
    grown = [f for f in dict.fromkeys(frames) if f]
    assert len(grown) >= 5 and all(DRAFT_1.startswith(f) for f in grown), grown[:5]  # streamed, in order
    assert track_line(track(got.value["pipeline"], got.value["runs"])) == "draft ● -> edit ○ -> polish ○"
    # nobody else can edit meanwhile, and the refusal says why
    with pytest.raises(Exception, match="Writing pipeline holds this artifact"):
        await w.human.mutation(api.locks.acquire, {"artifactId": w.artifact})
    await w.human.mutation(api.pipelines.reject, {"pipelineId": pid, "stageRunId": first["_id"],
                                                  "reason": "Start with a title line."})
    second = await _awaiting(w, pid, 0, 2)
    assert second["output"] == DRAFT_2 and second["inputVersion"] == 1
    prompt = openai_server.requests_for("dara")[1].messages[1]["content"]
    assert "Start with a title line." in prompt and DRAFT_1 in prompt and "attempt 2" in prompt
    await w.human.mutation(api.pipelines.approve, {"pipelineId": pid, "stageRunId": second["_id"],
                                                   "reason": "Good start."})
    edit = await _awaiting(w, pid, 1, 1)
    assert edit["inputVersion"] == 2 and DRAFT_2 in openai_server.requests_for("edwin")[0].messages[1]["content"]
    await w.human.mutation(api.pipelines.approve, {"pipelineId": pid, "stageRunId": edit["_id"]})
    polish = await _awaiting(w, pid, 2, 1)
    assert polish["output"] == POLISHED  # the fence around the whole is dropped
    await w.human.mutation(api.pipelines.approve, {"pipelineId": pid, "stageRunId": polish["_id"]})
    done = await _finished(w, pid)
    got.close()
    tails.close()
    assert done["pipeline"]["status"] == "done"
    assert track_line(track(done["pipeline"], done["runs"])) == "draft ✓ -> edit ✓ -> polish ✓"
    runs = await _runs_over(w, 4)
    history = await w.human.query(api.artifacts.history, {"artifactId": w.artifact, "includeContent": True})
    assert [(v["version"], v["source"], v["content"]) for v in history[:3]] == [
        (4, "agent", POLISHED), (3, "agent", EDITED), (2, "agent", DRAFT_2)]
    assert [(v["provenance"]["stageName"], v["provenance"]["actor"], v["provenance"]["approver"])
            for v in history[:3]] == [("polish", "polly", "olga"), ("edit", "edwin", "olga"), ("draft", "dara", "olga")]
    lock = (await w.human.query(api.artifacts.get, {"artifactId": w.artifact}))["lock"]
    assert not lock["held"] and lock["pipeline"] is None
    assert sorted((r["kind"], r["status"]) for r in runs) == [("stage", "done")] * 4


async def test_an_agent_approver_answers_with_a_verdict(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("dara", Reply(DRAFT_1, tokens_per_second=0), Reply(DRAFT_2, tokens_per_second=0))
    openai_server.script("quinn", Reply('{"verdict": "reject", "reason": "Too vague: who ships it?"}'),
                         Reply('Looks fine.\n{"verdict": "approve", "reason": "Clear enough now."}'))
    handles = ["dara", "quinn"]
    config = make_config(openai_server.base_url, {h: h for h in handles}, extra='''
[flows.checked]
title = "Checked"
view = "pipeline"
[[flows.checked.stages]]
name = "draft"
actor = "dara"
approver = "quinn"
''')
    async with world(tmp_path, handles) as w, worker(w, config, handles):
        await _checked(w, await _finished(w, await _start(w, config, "checked")), openai_server)


async def _checked(w: World, done: dict[str, Any], openai_server: OpenAIStreamServer) -> None:
    assert done["pipeline"]["status"] == "done"
    assert [(r["attempt"], r["status"], r["reviewer"]["handle"], r["reviewer"]["kind"], r["reason"])
            for r in done["runs"]] == [(1, "rejected", "quinn", "agent", "Too vague: who ships it?"),
                                       (2, "approved", "quinn", "agent", "Clear enough now.")]
    assert "Too vague: who ships it?" in openai_server.requests_for("dara")[1].messages[1]["content"]
    review = openai_server.requests_for("quinn")[0].messages
    assert '"verdict"' in review[0]["content"] and DRAFT_1 in review[1]["content"]
    runs = await _runs_over(w, 4)
    assert sorted((r["kind"], r["status"]) for r in runs) == [("review", "done")] * 2 + [("stage", "done")] * 2
    reviews = [r for r in runs if r["kind"] == "review"]
    assert {r["output"]["verdict"] for r in reviews} == {"approve", "reject"}
    art = await w.human.query(api.artifacts.get, {"artifactId": w.artifact})
    assert art["content"] == DRAFT_2 and art["version"] == 2


async def test_a_critique_reaches_the_next_stage(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    notes = "1. Nobody owns step one.\n2. No exit criteria."
    openai_server.script("quinn", Reply(notes, tokens_per_second=0))
    openai_server.script("edwin", Reply(EDITED, tokens_per_second=0))
    handles = ["quinn", "edwin"]
    config = make_config(openai_server.base_url, {h: h for h in handles})
    async with world(tmp_path, handles) as w, worker(w, config, handles):
        pid = await _start(w, config, "review")
        critique = await _awaiting(w, pid, 0, 1)
        assert critique["output"] == notes
        await w.human.mutation(api.pipelines.approve, {"pipelineId": pid, "stageRunId": critique["_id"]})
        revise = await _awaiting(w, pid, 1, 1)
        await w.human.mutation(api.pipelines.approve, {"pipelineId": pid, "stageRunId": revise["_id"]})
        done = await _finished(w, pid)
        art = await w.human.query(api.artifacts.get, {"artifactId": w.artifact})
    assert [r.get("outputVersion") for r in done["runs"]] == [None, 2]  # notes are not a version
    prompt = openai_server.requests_for("edwin")[0].messages[1]["content"]
    assert "Notes from the critique stage (@quinn)" in prompt and notes in prompt
    assert "Do not rewrite" in openai_server.requests_for("quinn")[0].messages[0]["content"]
    assert (art["version"], art["content"]) == (2, EDITED)


async def test_worker_killed_mid_stage(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    """SIGKILL on a real ``collab worker`` while an agent streams its stage: the stage fails
    with the reason, the lock is free at the lease's end, the partial output is kept, and
    ``pipelines:retry`` runs the stage again."""
    ttl = 5.0
    long = " ".join(f"word{i}" for i in range(400))
    openai_server.script("edwin", Reply(long, tokens_per_second=15), Reply(EDITED, tokens_per_second=0))
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(config_text(openai_server.base_url, {"edwin": "edwin"}, ttl_s=ttl, extra='''
[flows.solo]
title = "Solo"
view = "pipeline"
[[flows.solo.stages]]
name = "edit"
actor = "edwin"
'''))
    config = load_config(cfg_file, env={})
    async with world(tmp_path, ["edwin"]) as w:
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collab.tui.cli", "worker", "--url", w.backend.url, "--data-dir",
            str(Path(w.backend.backend.data_dir)), "--config", str(cfg_file), "--agents", "edwin",
            "--run-lease-ms", "3000", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        got = w.human.watch(api.pipelines.get, {"pipelineId": await _start(w, config, "solo")})
        art = w.human.watch(api.artifacts.get, {"artifactId": w.artifact})
        try:
            await until(lambda: got.value and len(got.value["runs"][0]["output"]) > 40, got,
                        what="the stage output to grow")
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            failed = await until(lambda: got.value if got.value["pipeline"]["status"] == "failed" else None, got,
                                 what="the stage to fail")
            run = failed["runs"][0]
            assert run["status"] == "failed" and "stopped answering" in run["error"]
            assert "stage edit failed" in failed["pipeline"]["reason"]
            assert len(run["output"]) > 40 and long.startswith(run["output"]) and run["outputStatus"] == "failed"
            lock = (await until(lambda: art.value if not art.value["lock"]["held"] else None, art,
                                what="the lock to be free"))["lock"]
            assert lock["pipeline"]["status"] == "failed"  # free of holders, still the pipeline's
            async with worker(w, config, ["edwin"]):
                assert (await w.human.mutation(api.pipelines.retry, {"pipelineId": failed["pipeline"]["_id"]})
                        )["attempt"] == 2
                again = await until(lambda: got.value["runs"][-1] if got.value["runs"][-1]["status"]
                                    == "awaitingReview" else None, got, what="the retried stage's output")
            assert again["output"] == EDITED and again["attempt"] == 2
            assert "attempt 1: failed" in openai_server.requests_for("edwin")[1].messages[1]["content"]
        finally:
            got.close()
            art.close()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
