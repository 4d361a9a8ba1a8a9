"""The embedded backend dies under a running app (kill -9): the app starts it again on the same
port, the client reconnects by itself, and the screen goes back to live with its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from collab.backend.discovery import read_discovery
from collab.tui.app import CollabApp
from collab.tui.bootstrap import LaunchOptions
from collab.widgets.connection_badge import ConnectionBadge

from .conftest import make_config, space_ready, wait_for

pytestmark = pytest.mark.timeout(90)


async def test_killed_embedded_backend_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    data = tmp_path / "data"
    app = CollabApp(LaunchOptions(), config=make_config(data))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False), timeout=30)
            first = read_discovery(data.resolve())
            assert first is not None
            os.kill(first.pid, signal.SIGKILL)
            badge = app.screen.query_one(ConnectionBadge)
            await wait_for(pilot, lambda: "reconnecting" in str(badge.render()), timeout=10)
            await wait_for(pilot, lambda: (found := read_discovery(data.resolve())) is not None
                           and found.pid != first.pid, timeout=30)
            again = read_discovery(data.resolve())
            assert again is not None and again.url == first.url  # same port: the client just reconnects
            await wait_for(pilot, lambda: "live" in str(badge.render()) and "reconnecting" not in str(badge.render()),
                           timeout=30)
            assert any("started again" in n.message for n in app._notifications)
    finally:
        subprocess.run([sys.executable, "-m", "collab.tui.cli", "serve", "--stop", "--data-dir", str(data)],
                       capture_output=True, timeout=30)
