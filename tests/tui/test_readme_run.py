"""The README's install-and-run command, in a fresh venv, ends on the space screen with the
default agents present:

    python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/collab

Slow (it installs every dependency, llama-cpp-python compiles), so opt-in:
``COLLAB_README_TEST=1 pytest tests/tui/test_readme_run.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_tmux import Tmux, shutil

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(os.environ.get("COLLAB_README_TEST") != "1", reason="set COLLAB_README_TEST=1 (slow)"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(1800),
]


def test_readme_install_and_run_lands_on_space_with_agents(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", "-DGGML_NATIVE=OFF")}
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True, env=env)
    tmux = Tmux(tmp_path / "home")
    tmux.home.mkdir()
    try:
        name = "readme"
        envs = " ".join(f"{k}={v}" for k, v in tmux.env("alice").items())
        subprocess.run(["tmux", "-S", tmux.socket, "new-session", "-d", "-s", name, "-x", "80", "-y", "24",
                        f"env -i {envs} {venv / 'bin' / 'collab'}; sleep 30"], check=True)
        text = tmux.wait(name, lambda s: "● live" in s and "@polly" in s, timeout=120)
        assert all(f"@{h}" in text for h in ("rhea", "dara", "edwin", "quinn", "polly"))
    finally:
        subprocess.run(["tmux", "-S", tmux.socket, "kill-server"], capture_output=True)
        subprocess.run([str(venv / "bin" / "collab"), "serve", "--stop", "--data-dir",
                        str(tmux.home / "data" / "collab")], capture_output=True, env={**os.environ, **tmux.env("x")})
