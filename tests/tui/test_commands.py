"""The CLI subcommands a user runs beside the app, as real processes against a real backend:
``collab export`` (every artifact and every message; an unknown space refused, not created) and
``collab locate`` (every path, and the backend running for the data dir)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api

pytestmark = pytest.mark.timeout(120)


def collab(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``collab <args>`` as alice, with a config naming the backend's data dir."""
    return subprocess.run([sys.executable, "-m", "collab.tui.cli", *args], capture_output=True, text=True,
                          timeout=90, env={**os.environ, "COLLAB_CONFIG": str(tmp / "config.toml"), **(env or {})})


@pytest.fixture
def alice_backend(tmp_path: Path) -> Any:
    data = tmp_path / "data"
    (tmp_path / "config.toml").write_text(f'[identity]\nhandle = "alice"\n[backend]\ndata_dir = "{data}"\n')
    with BackendProcess(data, functions="collab.backend.model") as proc:
        yield proc


async def _seed(backend: BackendProcess, messages: int) -> str:
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        await c.mutation(api.actors.ensure, {"name": "alice"})
        space = str(await c.mutation(api.spaces.create, {"name": "notes"}))
        await c.mutation(api.artifacts.create, {"spaceId": space, "title": "Test plan", "kind": "markdown",
                                                "content": "# Plan\n\nStep 1.\n"})
        await c.mutation(api.artifacts.create, {"spaceId": space, "title": "main.py", "kind": "code",
                                                "language": "python", "content": "print('hi')\n"})
        first = await c.mutation(api.messages.post, {"spaceId": space, "body": "message 0"})
        await c.mutation(api.messages.markDecision, {"messageId": first, "decision": True})
        for i in range(1, messages):
            await c.mutation(api.messages.post, {"spaceId": space, "body": f"message {i}"})
        return space


async def test_export_writes_every_artifact_and_every_message(alice_backend: BackendProcess, tmp_path: Path) -> None:
    await _seed(alice_backend, 250)  # more than one page, more than the log's 100
    out = tmp_path / "out"
    done = await asyncio.to_thread(collab, tmp_path, "--space", "notes", "export", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["discussion-notes.md", "main.py", "test-plan.md", "usage.md"]
    assert (out / "test-plan.md").read_text() == "# Plan\n\nStep 1.\n"
    assert (out / "main.py").read_text() == "print('hi')\n"
    text = (out / "discussion-notes.md").read_text()
    bodies = [line for line in text.splitlines() if line.startswith("message ")]
    assert bodies == [f"message {i}" for i in range(250)]  # all of them, oldest first
    assert "## Decisions\n\n- message 0 (@alice)" in text
    assert sorted(done.stdout.split()) == sorted(str(p) for p in out.iterdir())


async def test_export_refuses_an_unknown_space(alice_backend: BackendProcess, tmp_path: Path) -> None:
    await _seed(alice_backend, 1)
    done = await asyncio.to_thread(collab, tmp_path, "--space", "nope", "export", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "no space called 'nope'" in done.stdout and "yours: notes" in done.stdout, done.stdout
    assert not (tmp_path / "out").exists()
    async with ConvexClient(alice_backend.url, auth=alice_backend.mint_token("alice")) as c:
        assert [s["name"] for s in await c.query(api.spaces.list, {})] == ["notes"]  # nothing created


def test_locate_names_every_path_and_the_running_backend(alice_backend: BackendProcess, tmp_path: Path) -> None:
    xdg = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    done = collab(tmp_path, "locate", "--json", env=xdg)
    assert done.returncode == 0, done.stderr
    paths = json.loads(done.stdout)
    assert paths["config_file"] == str(tmp_path / "config.toml")
    assert paths["data_dir"] == str(tmp_path / "data")  # from the config file
    assert paths["state_dir"] == str(tmp_path / "state" / "collab")
    assert paths["log_dir"] == str(tmp_path / "state" / "collab" / "log")
    assert paths["backend_log"] == str(tmp_path / "state" / "collab" / "log" / "backend.log")
    assert paths["cache_dir"] == str(tmp_path / "cache" / "collab")
    assert paths["runtime_dir"] == str(tmp_path / "run" / "collab")
    assert paths["backend_url"] == alice_backend.url
    text = collab(tmp_path, "locate", env=xdg).stdout
    assert f"backend           {alice_backend.url} (pid {alice_backend.proc.pid})" in text
    assert f"cache_dir         {tmp_path / 'cache' / 'collab'}  (not created yet)" in text
