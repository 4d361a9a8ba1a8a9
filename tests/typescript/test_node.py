"""The TypeScript side inside the one pytest command: the type check of convex/ (strict) and
the Node runner of the shared scenarios (convex/tests/scenarios.test.ts: vitest + convex-test).
A failure shows the tool's own output."""

from __future__ import annotations

import os
import subprocess

from tests.typescript._node import CONVEX_DIR, bin_path, node


def _run(*cmd: str, timeout: float) -> subprocess.CompletedProcess[str]:
    node()
    # CI=1: vitest runs once, without its interactive watcher; NO_COLOR: plain output on failure.
    return subprocess.run(cmd, cwd=CONVEX_DIR, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CI": "1", "NO_COLOR": "1"})


def test_typescript_type_checks() -> None:
    done = _run(bin_path("tsc"), "--noEmit", "-p", "tsconfig.json", timeout=300)
    assert done.returncode == 0, f"tsc failed:\n{done.stdout}{done.stderr}"


def test_scenarios_pass_on_convex_test() -> None:
    done = _run(bin_path("vitest"), "run", "--reporter=verbose", timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"the Node runner failed:\n{output}"
    assert " passed" in output, output  # it ran tests, not nothing
