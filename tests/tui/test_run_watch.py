"""``collab run`` / ``collab watch`` from a shell, against a real ``collab serve``: a script
starts a variations round, watches it and picks from it; errors are JSON on stderr with the
code, bad arguments exit 2."""

from __future__ import annotations

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
COLLAB = [sys.executable, "-m", "collab.tui.cli"]


def _env(tmp: Path, handle: str = "alice") -> dict[str, str]:
    cfg = tmp / "config.toml"
    cfg.write_text(f'[identity]\nhandle = "{handle}"\n')
    return {**os.environ, "COLLAB_CONFIG": str(cfg), "XDG_CONFIG_HOME": str(tmp / "xdg")}


def collab(backend: BackendProcess, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COLLAB, "--data-dir", str(backend.data_dir), *args], capture_output=True, text=True,
                          env=env, timeout=60)


async def test_a_script_starts_watches_and_picks_a_round(backend: BackendProcess, tmp_path: Path) -> None:
    env = _env(tmp_path)
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        space = await c.mutation(api.spaces.create, {"name": "scripted"})
        await c.mutation(api.spaces.addMember, {"spaceId": space, "handle": "ada", "kind": "agent", "role": "editor"})
        art = await c.mutation(api.artifacts.create, {"spaceId": space, "title": "Doc", "kind": "markdown",
                                                      "content": "v1"})
    started = collab(backend, env, "run", "variations:start",
                     json.dumps({"artifactId": art, "instruction": "shorter", "n": 1}))
    assert started.returncode == 0, started.stderr
    round_id = json.loads(started.stdout)["roundId"]
    watcher = subprocess.Popen([*COLLAB, "--data-dir", str(backend.data_dir), "watch", "variations:round",
                                json.dumps({"roundId": round_id})], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert first["variations"][0]["status"] == "queued"
        prop = first["variations"][0]["proposalId"]
        async with ConvexClient(backend.url, auth=backend.mint_token("ada", agent=True)) as ada:
            await ada.mutation(api.proposals.open, {"proposalId": prop, "key": "k" * 16})
            await ada.mutation(api.proposals.finish, {"proposalId": prop, "status": "done", "content": "short"})
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["variations"][0]["status"] != "done":  # one JSON line per new result
            seen.append(json.loads(watcher.stdout.readline()))
        assert seen[-1]["variations"][0]["content"] == "short"
    finally:
        watcher.terminate()
        watcher.wait(10)
    variation = seen[-1]["variations"][0]["variationId"]
    lock = collab(backend, env, "run", "locks:acquire", json.dumps({"artifactId": art}))
    token = json.loads(lock.stdout)["token"]
    picked = collab(backend, env, "run", "variations:pick", json.dumps({"variationId": variation, "token": token}))
    assert picked.returncode == 0 and json.loads(picked.stdout)["version"] == 2
    got = collab(backend, env, "run", "artifacts:get", json.dumps({"artifactId": art}))
    assert json.loads(got.stdout)["content"] == "short"


def test_errors_are_json_with_their_code_and_bad_input_exits_2(backend: BackendProcess, tmp_path: Path) -> None:
    env = _env(tmp_path, "mallory")
    refused = collab(backend, env, "run", "variations:start",
                     json.dumps({"artifactId": "nope", "instruction": "x", "n": 1}))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "artifactId" in json.loads(refused.stderr)["error"]
    denied = collab(backend, env, "run", "runs:cancelAll", json.dumps({"spaceId": "jd700000000000000000000000000000"}))
    assert denied.returncode == 1
    err = json.loads(denied.stderr)
    assert err["error"] and "code" in err
    assert collab(backend, env, "run", "spaces:list", "{not json").returncode == 2
    assert collab(backend, env, "run", "spaces:list", "[1, 2]").returncode == 2
    watched = collab(backend, env, "watch", "variations:start", "{}")
    assert watched.returncode == 2 and "only a query can be watched" in watched.stderr
    listed = collab(backend, env, "run", "spaces:list")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
