"""@mention discussions end to end: the embedded backend, the run worker, litellm's real
HTTP/SSE path against the loopback server, and a human's client watching."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from collab.backend.model._live import merge
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

from tests.flows._world import make_config, worker, world
from tests.live import until

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

REPLIES = {
    "rhea": "Known: the plan has one step. Assumed: that step is enough. Sources needed for both claims.",
    "quinn": "Biggest risk first: nobody owns step one. Second: no exit criteria. Third: no rollback.",
    "edwin": "I would split step one into setup, run and check, and keep the plain voice of the plan.",
}


async def test_three_agent_mention_discussion_streams_interleaved(tmp_path: Path,
                                                                  openai_server: OpenAIStreamServer) -> None:
    handles = list(REPLIES)
    for h, text in REPLIES.items():
        openai_server.script(h, Reply(text, tokens_per_second=20))  # ~1 s a reply: many UI ticks, even on a loaded machine
    config = make_config(openai_server.base_url, {h: h for h in handles})
    async with world(tmp_path, handles) as w:
        # what a discussion pane watches: the durable list and the live tails
        msgs = w.human.watch(api.messages.list, {"spaceId": w.space})
        live = w.human.watch(api.streams.forSpace, {"spaceId": w.space})
        seen: list[tuple[float, dict[str, str]]] = []

        def frame(_: Any) -> None:
            rows = {r["messageId"]: r for r in (live.value or []) if r["kind"] == "message"}
            shown = {m["authorHandle"]: merge(m["body"], rows.get(m["_id"]))
                     for m in (msgs.value or []) if m["authorKind"] == "agent"}
            seen.append((time.monotonic(), shown))

        msgs.subscribe(frame)
        live.subscribe(frame)
        async with worker(w, config, handles) as wk:
            ask = await w.post("@rhea @quinn @edwin what do you think of #plan?")
            runs = await w.runs_finished(3)
            assert wk.finished and all(outcome == "done" for _, outcome in wk.finished)
        assert sorted(r["kind"] for r in runs) == ["discussion"] * 3
        assert all(r["status"] == "done" and r["usage"]["completionTokens"] > 0 for r in runs)
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
        replies = {m["authorHandle"]: m for m in thread[1:]}
        assert {h: m["body"] for h, m in replies.items()} == REPLIES
        assert all(m["state"] == "done" and m["runId"] for m in replies.values())
        assert await w.human.query(api.streams.forSpace, {"spaceId": w.space}) == []
        # interleaved: at some frame all three replies were growing at once, and every reply was
        # seen partially (streamed, not one blob)
        growing = [s for _, s in seen if sum(0 < len(s.get(h, "")) < len(REPLIES[h]) for h in handles) == 3]
        assert growing, "the three replies never streamed at the same time"
        for h in handles:
            partial = {s[h] for _, s in seen if h in s and 0 < len(s[h]) < len(REPLIES[h])}
            assert len(partial) >= 5, f"@{h}'s reply did not stream ({len(partial)} partial frames)"
            assert all(REPLIES[h].startswith(p) for p in partial), "a frame showed text out of order"
        # each agent got its persona, the thread and the referenced artifact
        for h in handles:
            sent = openai_server.requests_for(h)[0].messages
            assert sent[0]["role"] == "system" and f"@{h}" in sent[0]["content"]
            assert "Step 1. Test the thing." in sent[1]["content"] and "#plan" in sent[1]["content"]
            assert sent[-1] == {"role": "user", "content": "@olga: @rhea @quinn @edwin what do you think of #plan?"}


async def test_provider_errors_become_messages_in_the_thread(tmp_path: Path,
                                                             openai_server: OpenAIStreamServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # a wait longer than the worker's limit (30 s) is not waited out: said at once
    openai_server.script("rhea", Reply.error(429, "Rate limit reached for requests", retry_after=600))
    openai_server.script("quinn", Reply.error(500))
    openai_server.script("edwin", "Fine by me.")
    monkeypatch.delenv("COLLAB_TEST_MISSING_KEY", raising=False)
    config = make_config(openai_server.base_url, {"rhea": "rhea", "quinn": "quinn", "edwin": "edwin", "polly": "polly"},
                         key_env={"polly": "COLLAB_TEST_MISSING_KEY"})
    handles = ["rhea", "quinn", "edwin", "polly"]
    async with world(tmp_path, handles) as w, worker(w, config, handles):
        ask = await w.post("@all quick check on #plan")
        runs = await w.runs_finished(4)
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
    by = {m["authorHandle"]: m for m in thread[1:]}
    status = {r["agentId"]: r for r in runs}
    assert by["edwin"]["state"] == "done" and by["edwin"]["body"] == "Fine by me."
    for h in ("rhea", "quinn", "polly"):
        assert by[h]["state"] == "failed" and by[h]["body"] == by[h]["error"], h
        assert by[h]["error"].startswith(f"@{h}") or f"@{h}" in by[h]["error"], by[h]["error"]
    assert "rate limit" in by["rhea"]["error"].lower()
    assert "COLLAB_TEST_MISSING_KEY" in by["polly"]["error"]
    assert all(r["status"] == ("done" if r["agentId"] == w.agents["edwin"] else "failed") for r in status.values())


async def test_cancel_stops_the_stream_within_a_second(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", Reply(" ".join(f"w{i}" for i in range(400)), tokens_per_second=20))
    config = make_config(openai_server.base_url, {"quinn": "quinn"})
    async with world(tmp_path, ["quinn"]) as w, worker(w, config, ["quinn"]) as wk:
        await w.post("@quinn talk for a long time")

        async def streaming() -> Any:
            msgs = await w.messages()
            return len(msgs) == 2 and len(msgs[1]["body"]) > 10 and msgs[1]
        await w.wait_for(streaming, what="the reply to stream")
        run = (await w.runs())[0]
        t0 = time.monotonic()
        await w.human.mutation(api.runs.cancel, {"runId": run["_id"], "reason": "stopped by olga"})
        await w.wait_for(lambda: _true(openai_server.stats.streams_abandoned >= 1), 5, "the HTTP stream to close")
        assert time.monotonic() - t0 < 1.0
        await w.wait_for(lambda: _true(not wk.active), 5, "the worker to let go")
        reply = (await w.messages())[1]
        assert reply["state"] == "failed" and reply["error"] == "stopped by olga" and reply["body"]
        assert (await w.runs())[0]["status"] == "cancelled"
        assert await w.human.query(api.streams.forSpace, {"spaceId": w.space}) == []


async def _true(value: bool) -> bool:
    return value


async def test_one_worker_claims_each_run_once(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    """Two workers serve the same agent: every run is executed exactly once."""
    openai_server.script("dara", Reply("short answer", tokens_per_second=100))
    config = make_config(openai_server.base_url, {"dara": "dara"})
    async with world(tmp_path, ["dara"]) as w, worker(w, config, ["dara"]) as a, worker(w, config, ["dara"]) as b:
        for i in range(6):
            await w.post(f"@dara question {i}")
        runs = await w.runs_finished(6, timeout=40)
        assert all(r["status"] == "done" and r["attempt"] == 1 for r in runs)
        assert len(a.finished) + len(b.finished) == 6
        assert len(openai_server.requests_for("dara")) == 6
        replies = [m for m in await w.messages() if m["authorHandle"] == "dara"]
        assert len(replies) == 6


async def test_a_question_about_a_deleted_artifact_is_still_answered(tmp_path: Path,
                                                                     openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", "It is gone, but here is my view.")
    config = make_config(openai_server.base_url, {"quinn": "quinn"})
    async with world(tmp_path, ["quinn"]) as w:
        ask = await w.post("@quinn what do you make of #plan?")  # queued; no worker yet
        await w.human.mutation(api.artifacts.delete, {"artifactId": w.artifact})
        async with worker(w, config, ["quinn"]):
            runs = await w.runs_finished(1)
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
    assert runs[0]["status"] == "done", runs[0].get("error")
    assert thread[1]["body"] == "It is gone, but here is my view."
    # the model was asked without the artifact (no context message about #plan)
    assert "Step 1" not in str(openai_server.requests_for("quinn")[0].messages)


async def _notes_until_done(w: Any, openai_server: OpenAIStreamServer) -> tuple[list[str], dict[str, Any]]:
    """Every note the space's live rows carried while the first run ran, and that run."""
    notes: list[str] = []
    with w.human.watch(api.streams.forSpace, {"spaceId": w.space}) as rows, \
            w.human.watch(api.runs.list, {"spaceId": w.space}) as runs:
        rows.subscribe(lambda value: notes.extend(r["note"] for r in value or [] if r.get("note")))

        def finished() -> dict[str, Any] | None:
            r = runs.value or []
            return r[0] if r and r[0]["status"] in ("done", "failed", "cancelled") else None
        run = await until(finished, runs, what="the run to finish")
    return list(dict.fromkeys(notes)), run


async def test_a_rate_limited_reply_waits_for_the_provider_then_answers(tmp_path: Path,
                                                                        openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", Reply.error(429, "Rate limit reached", retry_after=1), "Answer after the wait.")
    config = make_config(openai_server.base_url, {"quinn": "quinn"})
    async with world(tmp_path, ["quinn"]) as w, worker(w, config, ["quinn"]):
        ask = await w.post("@quinn are you there?")
        notes, run = await _notes_until_done(w, openai_server)
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
    assert notes == ["waiting for the provider (rate limited): trying again in 1 s, attempt 2 of 3"]
    assert run["status"] == "done" and run["attempt"] == 1
    assert [(m["authorHandle"], m["state"], m["body"]) for m in thread[1:]] == [("quinn", "done", "Answer after the wait.")]
    assert len(openai_server.requests_for("quinn")) == 2


async def test_rate_limit_retries_are_bounded(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", Reply.error(429, "Rate limit reached", retry_after=0.2))  # every time
    config = make_config(openai_server.base_url, {"quinn": "quinn"})
    async with world(tmp_path, ["quinn"]) as w, worker(w, config, ["quinn"]):
        ask = await w.post("@quinn are you there?")
        notes, run = await _notes_until_done(w, openai_server)
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
    assert notes == [f"waiting for the provider (rate limited): trying again in 0.2 s, attempt {n} of 3" for n in (2, 3)]
    assert run["status"] == "failed" and "rate limit" in run["error"].lower()
    assert thread[1]["state"] == "failed" and thread[1]["error"] == run["error"]
    assert len(openai_server.requests_for("quinn")) == 3


async def test_a_cancel_ends_the_wait_for_the_provider(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", Reply.error(429, "Rate limit reached", retry_after=25), "never sent")
    config = make_config(openai_server.base_url, {"quinn": "quinn"})
    async with world(tmp_path, ["quinn"]) as w, worker(w, config, ["quinn"]) as wk:
        await w.post("@quinn are you there?")
        with w.human.watch(api.streams.forSpace, {"spaceId": w.space}) as rows:
            await until(lambda: any(r.get("note") for r in rows.value or []), rows, what="the wait notice")
        waiting_since = time.monotonic()
        run = (await w.runs())[0]
        await w.human.mutation(api.runs.cancel, {"runId": run["_id"], "reason": "stopped by olga"})
        await w.wait_for(lambda: _true(not wk.active), 60, "the worker to let go of the run")
        # before the retry was due: the cancel ended the wait, the wait did not run its course
        assert time.monotonic() - waiting_since < 25
        reply = (await w.messages())[1]
    assert wk.finished == [(run["_id"], "cancelled")]
    assert reply["state"] == "failed" and reply["error"] == "stopped by olga"
    assert len(openai_server.requests_for("quinn")) == 1  # the second call was never made
