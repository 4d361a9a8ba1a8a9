"""``collab serve`` runs the agents' worker in its own process (and ``--no-worker`` does not)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from collab.backend.auth import Authority
from collab.backend.discovery import read_discovery
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer

from tests.flows._world import config_text
from tests.live import until

pytestmark = [pytest.mark.timeout(90), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


async def _serve(tmp: Path, server: OpenAIStreamServer, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    cfg = tmp / "config.toml"
    cfg.write_text(config_text(server.base_url, {"quinn": "quinn"}))
    env = {**os.environ, "COLLAB_CONFIG": str(cfg), "XDG_CONFIG_HOME": str(tmp / "xdg")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "collab.tui.cli", "serve", "--data-dir",
                                                str(tmp / "data"), *extra, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
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


async def _worker_line(proc: asyncio.subprocess.Process) -> str:
    """The startup line saying whether this process serves the agents (printed once the worker
    is connected, or at once with --no-worker)."""
    assert proc.stdout is not None
    while line := (await proc.stdout.readline()).decode():
        if line.startswith("agents' worker:"):
            return line.strip()
    raise AssertionError("collab serve ended without saying whether it runs the worker")


async def _final(human: ConvexClient, space: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The messages and runs once the reply and its run are both finished (the run completes in
    its own mutation after the reply's last one), seen through live queries."""
    with human.watch(api.messages.list, {"spaceId": space}) as msgs, \
            human.watch(api.runs.list, {"spaceId": space}) as runs:
        def done() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
            m, r = msgs.value or [], runs.value or []
            if len(m) == 2 and m[1]["state"] != "streaming" and r and r[0]["status"] in ("done", "failed"):
                return m, r
            return None
        return await until(done, msgs, runs, what="the reply and its run to finish")


async def _stderr(proc: asyncio.subprocess.Process) -> str:
    proc.terminate()
    assert proc.stderr is not None
    return (await proc.stderr.read()).decode()


@pytest.mark.parametrize("with_worker", [True, False])
async def test_serve_runs_the_worker(with_worker: bool, tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", "Hello from quinn.")
    proc, url = await _serve(tmp_path, openai_server, *([] if with_worker else ["--no-worker"]))
    try:
        line = await asyncio.wait_for(_worker_line(proc), 60)
        human, space = await _ask(tmp_path, url)
        try:
            if with_worker:
                assert line.startswith("agents' worker: ") and "@quinn" in line.split()
                msgs, runs = await _final(human, space)
            else:
                assert line.startswith("agents' worker: off")
                await asyncio.sleep(2)  # a worker would claim the run now; none exists to
                msgs = await human.query(api.messages.list, {"spaceId": space})
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
