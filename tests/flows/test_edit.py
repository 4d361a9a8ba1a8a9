"""Agent revisions under the lock: queueing behind a human, a draft that grows for everyone,
a version with source "agent"; and a worker process killed mid-stream (SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from collab.backend.model._live import merge
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

from tests.flows._world import World, config_text, make_config, worker, world

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

REVISED = ("Step 1. Set up the test box.\nStep 2. Run the suite twice.\nStep 3. Check the numbers "
           "against the baseline and write down what changed.\n")


async def _lock(w: World) -> dict[str, Any]:
    return dict((await w.human.query(api.artifacts.get, {"artifactId": w.artifact}))["lock"])


async def test_agent_revision_queues_for_the_lock_and_saves_a_version(tmp_path: Path,
                                                                     openai_server: OpenAIStreamServer) -> None:
    openai_server.script("edwin", Reply("```\n" + REVISED + "```", tokens_per_second=60))
    config = make_config(openai_server.base_url, {"edwin": "edwin"})
    async with world(tmp_path, ["edwin"]) as w, worker(w, config, ["edwin"]):
        mine = await w.human.mutation(api.locks.acquire, {"artifactId": w.artifact})
        ask = await w.post("@edwin please tighten #plan", task="revise")

        async def queued() -> bool:
            lock = await _lock(w)
            return lock["queueLength"] == 1 and lock["queue"][0]["handle"] == "edwin"
        await w.wait_for(queued, what="the agent to queue behind the human")
        # everyone sees the draft grow: durable draft + live tail, as a document view shows it
        draft = w.human.watch(api.drafts.get, {"artifactId": w.artifact})
        tail = w.human.watch(api.streams.forArtifact, {"artifactId": w.artifact})
        frames: list[str] = []

        def frame(_: Any) -> None:
            d = draft.value
            if d is not None and d["actorId"] == w.agents["edwin"]:
                frames.append(merge(d["content"], tail.value))
            elif tail.value is not None:
                frames.append(merge("", tail.value) if tail.value["base"] == 0 else "")

        draft.subscribe(frame)
        tail.subscribe(frame)
        await w.human.mutation(api.artifacts.save, {"artifactId": w.artifact, "token": mine["token"],
                                                    "content": "Step 1. Test the thing properly.\n"})
        runs = await w.runs_finished(1)
        assert runs[0]["status"] == "done" and runs[0]["kind"] == "revise", runs[0]
        history = await w.human.query(api.artifacts.history, {"artifactId": w.artifact, "includeContent": True})
        assert [(v["version"], v["source"]) for v in history] == [(3, "agent"), (2, "human"), (1, "human")]
        assert history[0]["content"] == REVISED.strip("\n")  # the fence around the whole is dropped
        assert not (await _lock(w))["held"]
        grown = [f for f in dict.fromkeys(frames) if f]
        assert len(grown) >= 5 and all(("```\n" + REVISED + "```").startswith(f) for f in grown), grown[:3]
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
        assert thread[-1]["authorHandle"] == "edwin" and "version 3" in thread[-1]["body"]
        # the model saw the version it was granted (v2), not the one at the time of asking
        assert "Test the thing properly" in openai_server.requests_for("edwin")[0].messages[1]["content"]


async def test_worker_killed_mid_stream_frees_lock_keeps_draft_fails_run(tmp_path: Path,
                                                                        openai_server: OpenAIStreamServer) -> None:
    ttl = 5.0
    openai_server.script("edwin", Reply(REVISED * 6, tokens_per_second=15), Reply(REVISED, tokens_per_second=200))
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(config_text(openai_server.base_url, {"edwin": "edwin"}, ttl_s=ttl))
    async with world(tmp_path, ["edwin"]) as w:
        data_dir = Path(w.backend.backend.data_dir)
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collab.tui.cli", "worker", "--url", w.backend.url, "--data-dir", str(data_dir),
            "--config", str(cfg_file), "--agents", "edwin", "--run-lease-ms", "3000",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        try:
            await w.post("@edwin rewrite #plan", task="revise")

            async def drafting() -> Any:
                d = await w.human.query(api.drafts.get, {"artifactId": w.artifact})
                return d is not None and len(d["content"]) > 40 and d
            await w.wait_for(drafting, timeout=30, what="the agent's draft to grow")
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            killed = time.monotonic()
            before = (await w.human.query(api.drafts.get, {"artifactId": w.artifact}))["content"]

            async def freed() -> bool:
                return not (await _lock(w))["held"]
            await w.wait_for(freed, timeout=ttl + 5, what="the lock to be freed")
            assert time.monotonic() - killed <= ttl + 1.5  # TTL + the sweep at the lease end
            kept = await w.human.query(api.drafts.list, {"artifactId": w.artifact})
            assert len(kept) == 1 and kept[0]["status"] == "orphaned"
            assert kept[0]["content"].startswith(before) and (REVISED * 6).startswith(kept[0]["content"])
            runs = await w.runs_finished(1, timeout=10)
            assert runs[0]["status"] == "failed" and "stopped answering" in runs[0]["error"]
            assert await w.human.query(api.streams.forArtifact, {"artifactId": w.artifact}) is None
            # retried, by another worker, it completes
            await w.human.mutation(api.runs.retry, {"runId": runs[0]["_id"]})
            config = make_config(openai_server.base_url, {"edwin": "edwin"}, ttl_s=ttl)
            async with worker(w, config, ["edwin"]):
                runs = await w.runs_finished(1)
            assert runs[0]["status"] == "done" and runs[0]["attempt"] == 2
            art = await w.human.query(api.artifacts.get, {"artifactId": w.artifact})
            assert art["version"] == 2 and art["content"] == REVISED.strip("\n")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_a_rate_limited_revision_says_it_waits_then_saves(tmp_path: Path,
                                                                openai_server: OpenAIStreamServer) -> None:
    openai_server.script("edwin", Reply.error(429, "Rate limit reached", retry_after=1), Reply(REVISED))
    config = make_config(openai_server.base_url, {"edwin": "edwin"})
    async with world(tmp_path, ["edwin"]) as w, worker(w, config, ["edwin"]):
        ask = await w.post("@edwin rewrite #plan", task="revise")
        notes: list[str] = []
        with w.human.watch(api.streams.forSpace, {"spaceId": w.space}) as rows:
            rows.subscribe(lambda value: notes.extend(r["note"] for r in value or [] if r.get("note")))
            runs = await w.runs_finished(1)
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
        art = await w.human.query(api.artifacts.get, {"artifactId": w.artifact})
    assert runs[0]["status"] == "done", runs[0].get("error")
    assert list(dict.fromkeys(notes)) == ["waiting for the provider (rate limited): trying again in 1 s, attempt 2 of 3"]
    # one reply from edwin: it said it waited, then says what was saved
    assert [(m["authorHandle"], m["state"], m["body"]) for m in thread[1:]] == [
        ("edwin", "done", "Revised #plan: version 2 is saved.")]
    assert art["version"] == 2 and art["content"] == REVISED.strip("\n")
