"""A worker that has just started answers at once: a real ``collab worker`` process with a 3 s
claim lease, a mention queued the moment it starts (so its first run arrives while litellm is
still being imported by the warm-up thread), answered through the loopback OpenAI server.

Before ``flows.llm.litellm_ready``, that first run imported litellm on the event loop, blocked
on the import lock the warm-up thread held, and the whole loop (heartbeats included) stood still
until the lease expired: the run failed with "the worker stopped answering"."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer

from tests.flows._world import config_text, world
from tests.live import until

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


async def test_a_mention_posted_as_the_worker_starts_is_answered_with_a_3s_lease(
        tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("quinn", "Here at once.")
    cfg = tmp_path / "config.toml"
    cfg.write_text(config_text(openai_server.base_url, {"quinn": "quinn"}))
    async with world(tmp_path, ["quinn"]) as w:
        # Queued before the process exists: the worker claims it right after connecting, while
        # its warm-up thread is still importing litellm.
        ask = await w.post("@quinn are you there?")
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collab.tui.cli", "worker", "--url", w.backend.url,
            "--data-dir", str(w.backend.backend.data_dir), "--config", str(cfg), "--agents", "quinn",
            "--run-lease-ms", "3000", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        try:
            with w.human.watch(api.runs.list, {"spaceId": w.space}) as runs, \
                    w.human.watch(api.messages.list, {"spaceId": w.space, "threadId": ask}) as thread:
                def finished() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
                    r = runs.value or []
                    if r and r[0]["status"] in ("done", "failed", "cancelled"):
                        return r[0], list(thread.value or [])
                    return None
                run, msgs = await until(finished, runs, thread, what="the first run to finish")
                if run["status"] == "done":  # the reply's final write may trail the run's
                    msgs = await until(lambda: len(thread.value or []) == 2 and thread.value[1]["state"] == "done"
                                       and list(thread.value), thread, what="the reply to be final")
        finally:
            proc.terminate()
            _, err = await proc.communicate()
        assert run["status"] == "done" and run["attempt"] == 1, (run.get("error"), err.decode()[-2000:])
        reply = msgs[1]
        assert reply["authorHandle"] == "quinn" and reply["body"] == "Here at once."
        assert len(openai_server.requests_for("quinn")) == 1
