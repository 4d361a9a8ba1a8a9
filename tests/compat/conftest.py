from __future__ import annotations

import shutil
from pathlib import Path

import pytest

JS_DIR = Path(__file__).parent / "js"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/compat" in str(item.fspath):
            item.add_marker(pytest.mark.compat)


@pytest.fixture(scope="session")
def node_driver() -> Path:
    if shutil.which("node") is None:
        pytest.fail("node is required for the JS compatibility tests")
    if not (JS_DIR / "node_modules" / "convex").exists():
        pytest.fail("run `npm ci` in tests/compat/js (scripts/test does it)")
    return JS_DIR / "driver.mjs"
