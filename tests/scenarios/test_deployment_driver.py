"""The opt-in deployment runner (test_deployment.py) itself works: it runs here against an
embedded backend started as a separate process, which accepts the same admin key with an
acting-as identity that a Convex deployment does. (CI has no deployment; this keeps the driver
from rotting until someone points it at one.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from collab.backend.testing import BackendProcess

ROOT = Path(__file__).resolve().parents[2]


def test_the_deployment_runner_passes_against_an_embedded_backend(tmp_path: Path) -> None:
    with BackendProcess(tmp_path / "data", functions="collab.backend.model") as backend:
        env = {**os.environ, "COLLAB_SCENARIO_URL": backend.url, "COLLAB_SCENARIO_ADMIN_KEY": backend.admin_key}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/scenarios/test_deployment.py"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
