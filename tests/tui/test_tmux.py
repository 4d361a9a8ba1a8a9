"""End to end in tmux: real ``collab`` processes in real terminals, one backend.

Pane A (alice) locks and edits an artifact; pane B (bob, 60 columns) shows the lock badge with
alice's name; A saves; B shows the new content and version without a key pressed in B.
Also: the first run on a fresh HOME ends on the space screen with the default agents.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
              pytest.mark.timeout(120)]

COLLAB = str(Path(sys.executable).with_name("collab"))


class Tmux:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.socket = str(home / "tmux.sock")
        self.sessions: list[str] = []

    def env(self, handle: str) -> dict[str, str]:
        h = self.home
        return {"HOME": str(h), "XDG_CONFIG_HOME": str(h / "config"), "XDG_DATA_HOME": str(h / "data"),
                "XDG_STATE_HOME": str(h / "state"), "XDG_CACHE_HOME": str(h / "cache"), "USER": handle,
                "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}

    def start(self, name: str, handle: str, width: int, height: int = 24) -> None:
        env = " ".join(f"{k}={v!s}" for k, v in self.env(handle).items())
        cmd = f"env -i {env} {COLLAB}; sleep 30"
        subprocess.run(["tmux", "-S", self.socket, "new-session", "-d", "-s", name, "-x", str(width), "-y",
                        str(height), cmd], check=True)
        self.sessions.append(name)

    def send(self, name: str, *keys: str) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", "-t", name, *keys], check=True)

    def screen(self, name: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "capture-pane", "-p", "-t", name],
                              capture_output=True, text=True, check=True).stdout

    def wait(self, name: str, cond: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen(name)
            if cond(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"pane {name} never matched; it shows:\n{text}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)
        data = self.home / "data" / "collab"
        subprocess.run([COLLAB, "serve", "--stop", "--data-dir", str(data)], capture_output=True,
                       env={**os.environ, **self.env("x")})


@pytest.fixture
def tmux(tmp_path: Path) -> Tmux:
    t = Tmux(tmp_path)
    yield t
    t.close()


def test_first_run_lands_on_space_with_default_agents(tmux: Tmux) -> None:
    tmux.start("a", "alice", 80)
    text = tmux.wait("a", lambda s: "@polly" in s and "● live" in s)
    assert "main" in text and all(f"@{h}" in text for h in ("rhea", "dara", "edwin", "quinn"))
    assert (tmux.home / "config" / "collab" / "config.toml").read_text().startswith("# collab configuration")
    assert (tmux.home / "data" / "collab" / "backend.json").exists()


def test_two_panes_one_backend_live_lock_and_save(tmux: Tmux) -> None:
    tmux.start("a", "alice", 80)
    tmux.wait("a", lambda s: "● live" in s and "@polly" in s)
    tmux.send("a", "n")
    tmux.wait("a", lambda s: "Title of the new artifact" in s)
    tmux.send("a", "Release notes", "Enter")
    tmux.wait("a", lambda s: "Release notes v1" in s)

    tmux.start("b", "bob", 60)  # joins the same backend and space (a second tmux pane)
    tmux.wait("b", lambda s: "Release notes v1" in s and "● live" in s)

    # `e` and the text in one burst, no pause: keys typed while the lock is being taken must
    # land in the editor (they used to reach the space screen: `h` opened the history).
    tmux.send("a", "e")
    tmux.send("a", "-l", "Shipped the live lock badges. ")
    tmux.wait("a", lambda s: "EDITING" in s and "Shipped the live lock badges." in s)
    tmux.wait("b", lambda s: "■ @alice" in s)  # B shows the lock badge with A's name
    tmux.send("a", "C-s")
    tmux.wait("a", lambda s: "EDITING" not in s)
    # B updates by itself: new version, new content, badge gone; no key was sent to B.
    text = tmux.wait("b", lambda s: "Release notes v2" in s and "Shipped the live" in s and "■ @alice" not in s)
    assert "v2 by @alice" in text
