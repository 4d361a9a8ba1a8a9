"""`collab serve` as a real process: durability under kill -9, lock, discovery, signals, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from collab.backend.discovery import read_discovery
from collab.backend.testing import BackendProcess
from tests.backend.wsclient import RawPeer


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    proc = BackendProcess(tmp_path / "data").start()
    acked: list[str] = []
    try:
        peer = await RawPeer(proc.url).open()

        async def stream() -> None:
            i = 0
            while True:
                await peer.send({"type": "Mutation", "requestId": i, "udfPath": "messages:send",
                                 "args": [{"channel": "d", "body": f"m{i}"}]})
                while True:
                    msg = await peer.recv(timeout=5)
                    if msg["type"] == "MutationResponse":
                        assert msg["success"]
                        acked.append(f"m{i}")
                        break
                i += 1

        task = asyncio.ensure_future(stream())
        await asyncio.sleep(1.0)
        proc.kill()  # SIGKILL while the stream is running
        with pytest.raises(Exception):
            await asyncio.wait_for(task, 10)
        assert len(acked) > 50
        proc.start()
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{proc.url}/api/query", json={"path": "messages:list", "args": {"channel": "d"}})
        stored = {m["body"] for m in r.json()["value"]}
        missing = [b for b in acked if b not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"
    finally:
        proc.stop()


def _collab(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collab.tui.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_second_serve_on_same_data_dir_refuses(tmp_path: Path) -> None:
    with BackendProcess(tmp_path / "data") as proc:
        result = _collab("serve", "--data-dir", str(tmp_path / "data"), "--functions", proc.functions)
        assert result.returncode == 1
        assert "already running" in result.stderr and str(proc.port) in result.stderr


def test_sigterm_shuts_down_cleanly_and_removes_discovery(tmp_path: Path) -> None:
    proc = BackendProcess(tmp_path / "data").start()
    found = read_discovery(tmp_path / "data")
    assert found is not None and found.url == proc.url and found.pid == proc.proc.pid  # type: ignore[union-attr]
    assert proc.stop() == 0
    assert read_discovery(tmp_path / "data") is None
    assert not (tmp_path / "data" / "backend.json").exists()


def test_stale_discovery_after_kill_is_ignored(tmp_path: Path) -> None:
    proc = BackendProcess(tmp_path / "data").start()
    proc.kill()
    assert (tmp_path / "data" / "backend.json").exists()
    assert read_discovery(tmp_path / "data") is None  # the lock died with the process
    proc.start()
    proc.stop()


def test_serve_stop_flag(tmp_path: Path) -> None:
    proc = BackendProcess(tmp_path / "data").start()
    result = _collab("serve", "--data-dir", str(tmp_path / "data"), "--stop")
    assert result.returncode == 0, result.stderr
    assert proc.proc is not None and proc.proc.wait(timeout=10) == 0
    result = _collab("serve", "--data-dir", str(tmp_path / "data"), "--stop")
    assert result.returncode == 1 and "no backend is running" in result.stderr


def test_refuses_to_start_with_readable_admin_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with BackendProcess(data):
        pass
    os.chmod(data / "admin_key", 0o644)
    result = _collab("serve", "--data-dir", str(data), "--functions", "collab.backend.testing.app")
    assert result.returncode == 1
    assert "refusing to start" in result.stderr and "chmod 600" in result.stderr


def test_startup_line_names_url_and_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "collab.tui.cli", "serve", "--data-dir", str(data), "--functions", "collab.backend.testing.app"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("collab backend listening on http://127.0.0.1:") and str(data) in line
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_token_mint_prints_a_verifiable_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _collab("--data-dir", str(data), "token", "mint", "--handle", "edwin", "--agent")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    from collab.backend.auth import Authority

    identity, exp = Authority(data).verify(token)
    assert identity["subject"] == "agent:edwin" and identity["collab_kind"] == "agent" and exp > time.time()
    bad = _collab("--data-dir", str(data), "token", "mint", "--handle", "no spaces!")
    assert bad.returncode == 2 and "--handle" in bad.stderr


def test_jwks_verifies_minted_token(tmp_path: Path) -> None:
    import jwt

    with BackendProcess(tmp_path / "data") as proc:
        jwks = httpx.get(f"{proc.url}/.well-known/jwks.json").json()
        token = proc.mint_token("alice")
        key = jwt.PyJWK(jwks["keys"][0])
        claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="collab")
        assert claims["sub"] == "human:alice" and "iat" in claims and "exp" in claims
        assert json.loads(json.dumps(jwks))["keys"][0]["alg"] == "ES256"


def test_default_app_is_the_collaboration_model(tmp_path: Path) -> None:
    """`collab serve` with no --functions serves backend/model (docs/API.md)."""
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "collab.tui.cli", "serve", "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("collab backend listening on "), proc.stderr.read() if proc.stderr else line
        url = line.split()[4]
        from collab.backend.auth import Authority

        token = Authority(data).mint("alice")
        r = httpx.post(f"{url}/api/mutation", json={"path": "spaces:create", "args": {"name": "demo"}},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.json()["status"] == "success", r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
