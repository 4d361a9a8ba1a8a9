"""Two humans on two "machines" (two HOMEs: separate config and data dirs), end to end in tmux.

Alice serves her embedded backend on this machine's non-loopback address with TLS (a
self-signed certificate made here) and runs `collab invite`; Bob runs the printed
`collab join URL CODE --pin ...` line, which exchanges the code over the network path,
stores his token and opens the space. Bob edits under the lock; Alice's pane shows it live
with no key pressed. Then the code's second use is refused, and Bob's plain `collab`
reopens the joined space.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collab.backend.serve import machine_addresses
from tests.tls_cert import self_signed
from .tmuxer import COLLAB, Tmux

OUTWARD = [a for a in machine_addresses() if not a.startswith("127.")]
pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
              pytest.mark.skipif(not OUTWARD, reason="this machine has no address beyond loopback"),
              pytest.mark.timeout(180)]


class Home(Tmux):
    """One user's machine: a HOME with its own XDG dirs, and its tmux server."""

    def __init__(self, home: Path, handle: str) -> None:
        home.mkdir()
        super().__init__(home)
        self.handle = handle

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([COLLAB, *args], env=self.env(self.handle), capture_output=True, text=True,
                              timeout=120, check=check)



@pytest.fixture
def team(tmp_path: Path):
    alice, bob = Home(tmp_path / "alice", "alice"), Home(tmp_path / "bob", "bob")
    server: subprocess.Popen[str] | None = None

    def serve() -> subprocess.Popen[str]:
        nonlocal server
        cert, key = self_signed(tmp_path, *OUTWARD)
        server = subprocess.Popen([COLLAB, "serve", "--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key",
                                   str(key), "--no-worker"], env=alice.env("alice"), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        return server

    yield alice, bob, serve
    for h in (alice, bob):
        h.kill()
    if server is not None:
        server.terminate()
        server.wait(timeout=20)


def _discovery(alice: Home) -> dict:
    path = alice.home / "data" / "collab" / "backend.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists():
            found = json.loads(path.read_text())
            if found.get("public_url"):
                return found
        time.sleep(0.1)
    raise AssertionError("collab serve never wrote its discovery file")


def test_invite_join_over_tls_and_edit_live(team) -> None:
    alice, bob, serve = team
    server = serve()
    found = _discovery(alice)
    assert found["public_url"].startswith(f"https://{OUTWARD[0]}:")
    said = ""
    while "teammates connect to" not in said:
        said += server.stdout.readline()
    assert f"teammates connect to {found['public_url']}" in said and "plaintext" not in said

    invited = alice.run("invite", "--uses", "1", "--expires", "1h")
    join_line = invited.stdout.strip()
    assert join_line.startswith(f"collab join {found['public_url']} ") and " --pin sha256:" in join_line
    assert "1 use" in invited.stderr

    # Alice's app joins her own backend through its loopback side; she creates the artifact.
    alice.start("a", "alice", 80)
    alice.wait("a", lambda s: "● live" in s and "@polly" in s, timeout=60)
    alice.send("a", "n")
    alice.wait("a", lambda s: "Title of the new artifact" in s)
    alice.send("a", "Team notes", "Enter")
    alice.wait("a", lambda s: "Team notes v1" in s)

    # Bob runs the line as printed: the code crosses the network (TLS, pinned certificate).
    argv = shlex.split(join_line)
    assert argv[0] == "collab"
    bob.start_cmd("b", "bob", " ".join([COLLAB, *map(shlex.quote, argv[1:]), "--handle", "bob"]), 60)
    text = bob.wait("b", lambda s: "Team notes v1" in s and "● live" in s, timeout=60)
    assert "main" in text and "@bob" in text
    token_dir = bob.home / "config" / "collab" / "joined"
    tokens = list(token_dir.glob("*.jwt"))
    assert len(tokens) == 1 and (tokens[0].stat().st_mode & 0o777) == 0o600

    # Alice sees Bob arrive; Bob edits under the lock; Alice sees the lock and the save live.
    alice.wait("a", lambda s: "@bob" in s)
    bob.send("b", "e")
    bob.send("b", "-l", "Bob was here over TLS. ")
    bob.wait("b", lambda s: "EDITING" in s and "Bob was here" in s)
    alice.wait("a", lambda s: "■ @bob" in s)
    bob.send("b", "C-s")
    bob.wait("b", lambda s: "EDITING" not in s)
    text = alice.wait("a", lambda s: "Team notes v2" in s and "Bob was here over TLS." in s and "■ @bob" not in s)
    assert "v2 by @bob" in text

    # The code was for one use: a second join gets its own clear message.
    again = bob.run("join", *argv[2:], "--handle", "carol", "--no-open", check=False)
    assert again.returncode == 1 and "has been used up" in again.stderr

    # Later, plain `collab` on Bob's machine reopens the joined backend and space.
    bob.send("b", "C-q")
    bob.start("b2", "bob", 80)
    bob.wait("b2", lambda s: "Team notes v2" in s and "● live" in s and "@bob" in s, timeout=60)
    assert not (bob.home / "data" / "collab" / "backend.json").exists()  # no local backend was started
