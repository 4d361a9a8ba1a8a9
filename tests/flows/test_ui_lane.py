"""The UI lane can be turned off, per backend (``[streaming] ui_lane``, ``[streaming.convex]``):
on a Convex deployment every ``streams:push`` is a billed function call. Off, the worker pushes
nothing and readers see the persistence cadence only; the replies are whole all the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from collab.backend_client.api import api
from collab.config import ConfigError, StreamingConfig, load_config_text
from collab.flows.live import LivePusher
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply
from collab.flows.worker import on_convex

from tests.flows._world import config_text, worker, world

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]


def test_the_convex_profile_applies_on_a_deployment_only() -> None:
    cfg = StreamingConfig.model_validate({"ui_interval_ms": 40,
                                          "convex": {"ui_lane": False, "persist_interval_ms": 1000}})
    assert cfg.for_backend(embedded=True) is cfg
    on = cfg.for_backend(embedded=False)
    assert (on.ui_lane, on.ui_interval_ms, on.persist_interval_ms) == (False, 40, 1000)
    assert StreamingConfig().for_backend(embedded=False).ui_lane is True


def test_a_convex_profile_must_keep_persistence_coarser() -> None:
    with pytest.raises(ConfigError, match="streaming.convex.persist_interval_ms"):
        load_config_text("[streaming]\nui_interval_ms = 100\npersist_interval_ms = 300\n"
                         "[streaming.convex]\npersist_interval_ms = 150\n")


def test_which_backend_is_a_deployment() -> None:
    embedded = load_config_text("")
    assert not on_convex("http://127.0.0.1:8187", embedded)
    assert on_convex("https://happy-otter-123.convex.cloud", embedded)
    assert on_convex("http://10.0.0.5:3210", load_config_text('[backend]\nurl = "http://10.0.0.5:3210"\n'))


class _RecordingClient:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    async def mutation(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args)
        return []


async def test_a_disabled_pusher_pushes_nothing() -> None:
    client = _RecordingClient()
    pusher = LivePusher(client, 5, enabled=False).start()  # type: ignore[arg-type]
    stream = pusher.register("s1", "k" * 16)
    stream.add("hello")
    pusher.unregister(stream)
    await pusher.stop()
    assert client.calls == [] and pusher.pushes == 0 and not stream.pending


async def test_with_the_ui_lane_off_readers_see_the_durable_text_only(tmp_path: Path,
                                                                      openai_server: OpenAIStreamServer) -> None:
    words = [f"w{i} " for i in range(60)]
    openai_server.script("rhea", Reply(words, tokens_per_second=200))
    config = load_config_text(config_text(openai_server.base_url, {"rhea": "rhea"},
                                          extra="\n[streaming.convex]\nui_lane = false\n"))
    async with world(tmp_path, ["rhea"]) as w, worker(w, config, ["rhea"], convex=True) as wk:
        assert wk.streaming.ui_lane is False
        tails: list[str] = []
        live = w.human.watch(api.streams.forSpace, {"spaceId": w.space})
        live.subscribe(lambda rows: tails.extend(r["text"] for r in rows or []))
        await w.post("@rhea count")
        runs = await w.runs_finished(1, timeout=30)
        assert runs[0]["status"] == "done"
        bodies = [m["body"] for m in await w.messages() if m["authorKind"] == "agent"]
        assert bodies == ["".join(words)]
        assert wk.pusher is not None and wk.pusher.pushes == 0
        assert all(t == "" for t in tails), "a live tail was pushed with the UI lane off"
