"""``collab serve`` runs the agents' worker in its own process (and ``--no-worker`` does not)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from collab.backend.auth import Authority
from collab.backend.discovery import read_discovery
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer

from tests.flows._world import config_text

pytestmark = [pytest.mark.timeout(90), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


async def _serve(tmp: Path, server: OpenAIStreamServer, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    cfg = tmp / "config.toml"
    cfg.write_text(config_text(server.base_url, {"quinn": "quinn"}))
    env = {**os.environ, "COLLAB_CONFIG": str(cfg), "XDG_CONFIG_HOME": str(tmp / "xdg")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "collab.tui.cli", "serve", "--data-dir",
                                                str(tmp / "data"), "--quiet", *extra, env=env,
                                                stderr=asyncio.subprocess.PIPE)
    for _ in range(400):
        found = read_discovery((tmp / "data").resolve())
        if found is not None and found.pid == proc.pid:
            return proc, found.url
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("collab serve did not start")


async def _ask(tmp: Path, url: str) -> tuple[ConvexClient, str]:
    human = ConvexClient(url, auth=Authority((tmp / "data").resolve()).mint("olga"))
    await human.connect(timeout=10)
    space = await human.mutation(api.spaces.create, {"name": "s"})
    await human.mutation(api.spaces.addMember, {"spaceId": space, "handle": "quinn", "kind": "agent", "role": "editor"})
    await human.mutation(api.messages.post, {"spaceId": space, "body": "@quinn hello?"})
    return human, str(space)


async def _stderr(proc: asyncio.subprocess.Process) -> str:
    proc.terminate()
    assert proc.stderr is not None
    return (await proc.stderr.read()).decode()


@pytest.mark.parametrize("with_worker", [True, False])
async def test_serve_runs_the_worker(with_worker: bool, tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", "Hello from quinn.")
    proc, url = await _serve(tmp_path, openai_server, *([] if with_worker else ["--no-worker"]))
    try:
        human, space = await _ask(tmp_path, url)
        try:
            for _ in range(200 if with_worker else 40):
                msgs = await human.query(api.messages.list, {"spaceId": space})
                if len(msgs) == 2 and msgs[1]["state"] == "done":
                    break
                await asyncio.sleep(0.05)
            runs = await human.query(api.runs.list, {"spaceId": space})
        finally:
            await human.close()
        if with_worker:
            assert len(msgs) == 2, (await _stderr(proc))
            assert msgs[1]["authorHandle"] == "quinn" and msgs[1]["body"] == "Hello from quinn."
            assert runs[0]["status"] == "done"
        else:
            assert len(msgs) == 1 and runs[0]["status"] == "queued"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0
