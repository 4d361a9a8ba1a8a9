"""The whole way round, as a user sees it: a mention typed in the composer is answered by a real
``collab worker`` process through litellm and the loopback OpenAI-compatible server, and the
reply streams on screen (first "waiting for the provider" while the provider rate-limits, then
the text growing with its cursor, then the finished reply)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from collab.backend.testing import BackendProcess
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply
from collab.widgets.message_log import CURSOR, MessageLog

from tests.flows._world import config_text

from .conftest import seed_space, space_ready, wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

ANSWER = ("Three risks stand out. First, nobody owns step one. Second, there are no exit "
          "criteria. Third, there is no rollback plan if the numbers look wrong.")


def _on_screen(log: MessageLog) -> str:
    """The lines the log draws right now."""
    return "\n".join(log.render_line(y).text.rstrip() for y in range(log.size.height))


async def test_a_typed_mention_is_answered_by_the_worker_and_streams_on_screen(
        fresh_backend: BackendProcess, tmp_path: Path) -> None:
    # A backend of its own: the worker serves @quinn on the whole backend, and on the suite's
    # shared one it also answered runs other tests had queued for @quinn (a third request).
    backend = fresh_backend
    async with OpenAIStreamServer() as server:
        server.script("quinn", Reply.error(429, "Rate limit reached", retry_after=1),
                      Reply(ANSWER, tokens_per_second=12))
        text = config_text(server.base_url, {"quinn": "quinn"})
        cfg = tmp_path / "worker.toml"
        cfg.write_text(text)
        seeded = await asyncio.to_thread(seed_space, backend)
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collab.tui.cli", "worker", "--url", backend.url, "--data-dir",
            str(backend.data_dir), "--config", str(cfg), "--agents", "quinn",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
        try:
            assert worker.stdout is not None
            line = (await asyncio.wait_for(worker.stdout.readline(), 60)).decode()
            assert line.startswith("collab worker: serving @quinn"), line
            app = seeded.app(extra_config=text)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: space_ready(app), what="the space")
                await pilot.press("f4", *"@quinn what are the risks?", "enter")
                log = app.screen.query_one(MessageLog)
                await wait_for(pilot, lambda: "waiting for the provider" in _on_screen(log), timeout=60,
                               what="the reply to say it waits for the provider")
                seen: list[str] = []

                def growing() -> bool:
                    screen = _on_screen(log)
                    seen.append(screen)
                    return "… replying" in screen and CURSOR in screen and "nobody owns" in screen
                await wait_for(pilot, growing, timeout=60, what="the reply streaming with its cursor")
                partial = seen[-1]
                assert "no rollback plan" not in partial  # caught while it grows, not at its end
                await wait_for(pilot, lambda: log.messages[-1].get("state") == "done", timeout=60,
                               what="the reply to finish")
                await pilot.pause()
                final = _on_screen(log)
                assert "@quinn agent" in final and "… replying" not in final and CURSOR not in final
                assert log.messages[-1]["body"] == ANSWER
                assert "no rollback plan if the numbers look wrong." in final
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 30)
        assert len(server.requests_for("quinn")) == 2  # the 429, then the answer
        asked = server.requests_for("quinn")[1].messages[-1]["content"]
        assert "what are the risks?" in asked
