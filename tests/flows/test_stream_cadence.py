"""The persistence cadence bounds durable writes whatever the token rate (DESIGN 2.5): with a
fast fake provider, the message list (what everyone's discussion pane re-runs on) changes at
most every ``persist_interval_ms``, and the live tails at most every ``ui_interval_ms`` for all
streams together. Counted on the backend (commits) and at a watching client."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

from tests.flows._world import make_config, worker, world

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

PERSIST_S, UI_S = 0.25, 0.03


@pytest.mark.parametrize("tps", [100, 1000])
async def test_persisted_writes_follow_the_cadence_not_the_token_rate(tps: int, tmp_path: Path,
                                                                      openai_server: OpenAIStreamServer) -> None:
    tokens = int(tps * 1.5)  # ~1.5 s of streaming at either rate
    handles = ["rhea", "quinn"]
    for h in handles:
        openai_server.script(h, Reply([f"t{i} " for i in range(tokens)], tokens_per_second=tps))
    config = make_config(openai_server.base_url, {h: h for h in handles})
    async with world(tmp_path, handles) as w, worker(w, config, handles) as wk:
        engine = w.backend.backend.engine
        msgs = w.human.watch(api.messages.list, {"spaceId": w.space})
        live = w.human.watch(api.streams.forSpace, {"spaceId": w.space})
        changes: dict[str, list[float]] = {"messages": [], "live": []}
        msgs.subscribe(lambda _v: changes["messages"].append(time.monotonic()))
        live.subscribe(lambda _v: changes["live"].append(time.monotonic()))
        await w.post("@rhea @quinn count")

        async def started() -> Any:
            return any(m["authorKind"] == "agent" and m["body"] for m in await w.messages())
        await w.wait_for(started, what="the replies to start")
        c0, t0 = engine.stats["commits"], time.monotonic()
        appends0 = len(changes["messages"])
        runs = await w.runs_finished(2, timeout=30)
        elapsed = time.monotonic() - t0
        commits = engine.stats["commits"] - c0
        appends = len(changes["messages"]) - appends0
        assert all(r["status"] == "done" for r in runs)
        bodies = [m["body"] for m in await w.messages() if m["authorKind"] == "agent"]
        assert bodies == ["".join(f"t{i} " for i in range(tokens))] * 2
        # durable writes: <= one per persistence interval per stream (+ leading, final, finish)
        persisted_bound = 2 * (elapsed / PERSIST_S + 3)
        assert appends <= persisted_bound, (appends, elapsed)
        # all commits: one push per UI tick for both streams, the persistence lane, heartbeats
        pushes = wk.pusher.pushes if wk.pusher else 0
        assert pushes <= elapsed / UI_S + 3, (pushes, elapsed)
        assert commits <= elapsed / UI_S + persisted_bound + 20, (commits, elapsed)
        assert commits / elapsed < 100
        # and the token rate did not show up in the write rate: far fewer writes than tokens
        assert appends < tokens / 4
