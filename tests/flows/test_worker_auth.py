"""``collab worker`` next to a deployment it holds no signing key for: each agent acts with the
credentials the command line gives, ``--token HANDLE=JWT`` or ``--admin-key`` (acting as
``agent:<handle>``). A real worker process, a mention answered through the loopback server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer

from tests.flows._world import World, config_text, world
from tests.live import until

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


async def _answered_by_a_worker(w: World, tmp: Path, server: OpenAIStreamServer, *auth: str) -> dict[str, Any]:
    cfg = tmp / "config.toml"
    cfg.write_text(config_text(server.base_url, {"quinn": "quinn"}))
    nowhere = tmp / "no-keys-here"  # a data dir without the backend's key: nothing can be minted
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collab.tui.cli", "worker", "--url", w.backend.url, "--data-dir", str(nowhere),
        "--config", str(cfg), "--agents", "quinn", *auth, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "XDG_CONFIG_HOME": str(tmp / "xdg")})
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line.startswith("collab worker: serving @quinn"), line + (await proc.stderr.read()).decode()
        ask = await w.post("@quinn who are you?")
        with w.human.watch(api.messages.list, {"spaceId": w.space, "threadId": ask}) as thread, \
                w.human.watch(api.runs.list, {"spaceId": w.space}) as run_list:
            def finished() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
                msgs, runs = thread.value or [], run_list.value or []
                if len(msgs) == 2 and msgs[1]["state"] != "streaming" and runs and runs[0]["status"] != "streaming" \
                        and runs[0]["status"] not in ("queued", "claimed"):
                    return msgs[1], runs
                return None
            reply, runs = await until(finished, thread, run_list, what="quinn's reply and its run to finish")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert not nowhere.exists() or not any(nowhere.iterdir())
    assert runs[0]["status"] == "done" and runs[0]["claimedBy"] == w.agents["quinn"]
    return dict(reply)


async def test_worker_with_a_token_per_agent(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", "I am Quinn, by token.")
    async with world(tmp_path, ["quinn"]) as w:
        token = w.backend.mint_token("quinn", agent=True)
        reply = await _answered_by_a_worker(w, tmp_path, openai_server, "--token", f"quinn={token}")
    assert (reply["authorHandle"], reply["authorKind"], reply["body"]) == ("quinn", "agent", "I am Quinn, by token.")


async def test_worker_with_the_admin_key_acting_as_each_agent(tmp_path: Path,
                                                             openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", "I am Quinn, by admin key.")
    async with world(tmp_path, ["quinn"]) as w:
        reply = await _answered_by_a_worker(w, tmp_path, openai_server, "--admin-key", w.backend.admin_key)
    assert (reply["authorHandle"], reply["authorKind"], reply["body"]) == ("quinn", "agent", "I am Quinn, by admin key.")
    assert reply["authorId"] == w.agents["quinn"]  # the same actor as the member: acting as agent:quinn


async def test_a_malformed_token_flag_is_refused(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collab.tui.cli", "worker", "--url", "http://127.0.0.1:9", "--token", "quinn",
        "--agents", "quinn", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0 and "--token wants HANDLE=JWT (got 'quinn')" in (out + err).decode()
