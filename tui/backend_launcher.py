"""Find the embedded backend of a data dir, or start it in the background.

The backend is a detached ``collab serve`` (its own session, so closing the terminal or the
tmux pane that started it does not end it; stdio to a log file in the state dir). Every other
``collab`` on the same data dir (another pane, another SSH login) finds it through the
discovery file and joins it. Two panes starting at once both spawn one; the backend's flock
lets exactly one live and the other exits, and both panes then read the same discovery file.
No Textual here: ``collab doctor`` and the tests use it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from collab.backend.discovery import Discovery, read_discovery

LOG_NAME = "backend.log"


class BackendStartError(RuntimeError):
    """The backend could not be started; the message says why and where its log is."""


def find_backend(data_dir: Path) -> Discovery | None:
    return read_discovery(data_dir.expanduser().resolve())


def start_backend(data_dir: Path, log_dir: Path, *, port: int | None = None, timeout_s: float = 20.0) -> Discovery:
    """Join the running backend of ``data_dir`` or spawn one and wait for its discovery file.
    ``port``: listen there (a revived backend keeps its URL, so connected clients reconnect)."""
    data_dir = data_dir.expanduser().resolve()
    found = read_discovery(data_dir)
    if found is not None:
        return found
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / LOG_NAME
    cmd = [sys.executable, "-m", "collab.tui.cli", "serve", "--data-dir", str(data_dir), "--quiet"]
    if port:
        cmd += ["--port", str(port)]
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the terminal: no SIGHUP from the pane closing
            close_fds=True,
            cwd=str(data_dir),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = read_discovery(data_dir)
        if found is not None:
            return found
        code = proc.poll()
        # Exit code 1 with a live discovery is the "someone else won the race" case, handled
        # by the loop above on the next pass; any other exit is a real failure.
        if code is not None and read_discovery(data_dir) is None:
            time.sleep(0.2)
            if read_discovery(data_dir) is None:
                raise BackendStartError(
                    f"the embedded backend exited with code {code}; see {log_path}"
                    + _tail(log_path)
                )
        time.sleep(0.03)
    raise BackendStartError(f"the embedded backend did not start within {timeout_s:.0f} s; see {log_path}")


class BackendKeeper:
    """Brings the embedded backend back if it dies under a running app (killed, OOM, a crash).

    The app calls :meth:`revive` when its connection drops. If the data dir's backend is gone
    (its lock is free), a new one starts on the same port, so the client's own reconnect
    finds it at the same URL; if another pane revived it first, nothing is started."""

    def __init__(self, data_dir: Path, log_dir: Path, url: str) -> None:
        self.data_dir, self.log_dir = data_dir, log_dir
        self.port = urlsplit(url).port

    def revive(self) -> bool:
        """True if this call started a backend. Raises BackendStartError if it cannot."""
        if read_discovery(self.data_dir.expanduser().resolve()) is not None:
            return False
        start_backend(self.data_dir, self.log_dir, port=self.port)
        return True


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return "\n" + "\n".join(text) if text else ""
