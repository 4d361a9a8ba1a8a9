"""The offline default: with no provider key and the default config, the built-in agents run
on the local llama.cpp model, and a full @mention discussion gets a real reply."""

from __future__ import annotations

from pathlib import Path

import pytest
from collab.backend_client.api import api
from collab.config import load_config_text
from collab.flows.local_model import binding_available

from tests.flows._world import worker, world

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
    pytest.mark.skipif(not binding_available(), reason="xllamacpp is not importable"),
]


async def test_default_agents_reply_with_the_local_model(tmp_path: Path) -> None:
    config = load_config_text("")  # the defaults: no keys anywhere
    assert config.model_for("quinn").model == "local/smollm2"
    async with world(tmp_path, ["quinn"], content="Ship on Friday. Tests: none yet.\n") as w, \
            worker(w, config, ["quinn"]):
        ask = await w.post("@quinn what is the biggest risk in #plan?")
        runs = await w.runs_finished(1, timeout=180)
        thread = await w.human.query(api.messages.list, {"spaceId": w.space, "threadId": ask})
    assert runs[0]["status"] == "done", runs[0]
    reply = thread[-1]
    assert reply["authorHandle"] == "quinn" and reply["state"] == "done"
    assert len(reply["body"].split()) >= 5, reply["body"]
    assert runs[0]["usage"]["completionTokens"] > 5 and runs[0]["costUsd"] == 0
