"""The README's install-and-run command, run as written on a copy of the repo with a fresh
HOME in tmux, ends on the space screen with the default agents present.

The command is read from README.md (the first ``sh`` block under "Install and run"), so the
README and this test cannot drift apart. It installs into a fresh venv, from wheels only (pip's
cache holds them once the suite's own install ran).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_tmux import Tmux

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(1200),
]


def readme_run_command() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Install and run", 1)[1]
    match = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert match, "README.md has no sh block under 'Install and run'"
    return match.group(1).strip()


def test_readme_install_and_run_lands_on_space_with_agents(tmp_path: Path) -> None:
    command = readme_run_command()
    repo = tmp_path / "collab"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    tmux = Tmux(tmp_path / "home")
    tmux.home.mkdir()
    name = "readme"
    try:
        env = tmux.env("alice")
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        # A fresh HOME, but pip's own cache: the wheels the suite's install already fetched.
        env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
        envs = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(["tmux", "-S", tmux.socket(name), "new-session", "-d", "-s", name, "-x", "80", "-y", "24",
                        "-c", str(repo), f"env -i {envs} sh -c '{command}'; sleep 60"], check=True)
        text = tmux.wait(name, lambda s: "● live" in s and "@polly" in s, timeout=900)
        assert all(f"@{h}" in text for h in ("rhea", "dara", "edwin", "quinn", "polly")), text
    finally:
        subprocess.run(["tmux", "-S", tmux.socket(name), "kill-server"], capture_output=True)
        collab = repo / ".venv" / "bin" / "collab"
        if collab.exists():
            subprocess.run([str(collab), "serve", "--stop", "--data-dir", str(tmux.home / "data" / "collab")],
                           capture_output=True, env={**os.environ, **tmux.env("x")})
