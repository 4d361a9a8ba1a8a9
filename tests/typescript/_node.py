"""Running the TypeScript side (``convex/``) from pytest (this package is not called ``convex``:
with ``tests/`` on ``sys.path`` it would shadow PyPI's ``convex`` that tests/compat imports).

Needs Node 20 and the packages of ``convex/package-lock.json`` (``bash scripts/test`` runs
``npm ci`` there).

In CI (``CI`` set) a missing ``node`` fails the test: the TypeScript side must run there. On a
developer's machine without Node the tests are skipped with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

CONVEX_DIR = Path(__file__).resolve().parents[2] / "convex"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed: CI must run the TypeScript side of the scenarios")
        pytest.skip("node is not installed (the TypeScript side of the scenarios needs Node 20)")
    if not (CONVEX_DIR / "node_modules" / "convex-test").is_dir():
        pytest.fail("convex/node_modules is missing: run `npm ci` in convex/ (bash scripts/test does)")
    return found


def run_node(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``node <args>`` in convex/; the caller checks the return code (output is in the result)."""
    return subprocess.run([node(), *args], cwd=CONVEX_DIR, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def bin_path(name: str) -> str:
    """A package's command from convex/node_modules/.bin (vitest, tsc)."""
    node()
    return str(CONVEX_DIR / "node_modules" / ".bin" / name)


@cache
def ts_registry() -> dict[str, Any]:
    """``convex/tools/registry.mjs``: the TypeScript functions and schema, as JSON."""
    done = run_node("tools/registry.mjs", timeout=120)
    if done.returncode != 0:
        pytest.fail(f"convex/tools/registry.mjs failed:\n{done.stderr}{done.stdout}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
