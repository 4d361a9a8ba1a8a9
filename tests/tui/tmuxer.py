"""Driving real ``collab`` processes in tmux for the end-to-end tests: one HOME (one backend,
local users), panes of any size, keys sent, screens captured and waited on."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

COLLAB = str(Path(sys.executable).with_name("collab"))


class Tmux:
    """One tmux server per pane (a socket each), so every pane keeps the size the test gave it:
    sessions of one server resize each other's windows."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.sessions: list[str] = []

    def socket(self, name: str) -> str:
        return str(self.home / f"tmux-{name}.sock")

    def env(self, handle: str) -> dict[str, str]:
        h = self.home
        return {"HOME": str(h), "XDG_CONFIG_HOME": str(h / "config"), "XDG_DATA_HOME": str(h / "data"),
                "XDG_STATE_HOME": str(h / "state"), "XDG_CACHE_HOME": str(h / "cache"), "USER": handle,
                "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}

    def _tmux(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", self.socket(name), *args], capture_output=True, text=True, check=True)

    def start(self, name: str, handle: str, width: int, height: int = 24) -> None:
        self.start_cmd(name, handle, COLLAB, width, height)

    def start_cmd(self, name: str, handle: str, cmd: str, width: int, height: int = 24) -> None:
        """Run ``cmd`` (a shell command line) as ``handle`` in a new pane; what it printed stays
        on screen after it exits (a traceback, the exit status)."""
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.env(handle).items())
        line = f"env -i {env} {cmd}; echo collab exited: $?; sleep 300"
        self._tmux(name, "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), line)
        self.sessions.append(name)

    def kill(self) -> None:
        for name in self.sessions:
            subprocess.run(["tmux", "-S", self.socket(name), "kill-server"], capture_output=True)

    def send(self, name: str, *keys: str) -> None:
        self._tmux(name, "send-keys", "-t", name, *keys)

    def size(self, name: str) -> str:
        return self._tmux(name, "display-message", "-p", "-t", name, "#{window_width}x#{window_height}").stdout.strip()

    def screen(self, name: str) -> str:
        return self._tmux(name, "capture-pane", "-p", "-t", name).stdout

    def wait(self, name: str, cond: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen(name)
            if cond(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"pane {name} never matched; it shows:\n{text}")

    def close(self) -> None:
        self.kill()
        data = self.home / "data" / "collab"
        subprocess.run([COLLAB, "serve", "--stop", "--data-dir", str(data)], capture_output=True,
                       env={**os.environ, **self.env("x")})


@pytest.fixture
def tmux(tmp_path: Path) -> Tmux:
    t = Tmux(tmp_path)
    yield t
    t.close()
