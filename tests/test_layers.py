"""The layer rules of DESIGN.md section 2, checked on the source (every import statement)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# folder -> the collab.* packages it may import (besides itself). "wire" is the pure codec of
# backend_client that the backend shares (docs/DECISIONS.md).
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "backend": {"collab.backend_client.wire"},
    "backend_client": {"collab.config"},
    "flows": {"collab.backend_client", "collab.config"},
    "widgets": {"collab.backend_client", "collab.config"},
    "screens": {"collab.widgets", "collab.backend_client", "collab.flows", "collab.config"},
    "tui": {"*"},
}
NO_TEXTUAL = {"config", "backend", "backend_client", "flows"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _allowed(folder: str, module: str) -> bool:
    allowed = ALLOWED[folder]
    if "*" in allowed or module == f"collab.{folder}" or module.startswith(f"collab.{folder}."):
        return True
    return any(module == a or module.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_layer_imports(folder: str) -> None:
    bad: list[str] = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for lineno, module in _imports(path):
            where = f"{path.relative_to(ROOT)}:{lineno} imports {module}"
            if folder in NO_TEXTUAL and (module == "textual" or module.startswith("textual.")):
                bad.append(where + " (no Textual in this layer)")
            elif module.startswith("collab.") and not _allowed(folder, module):
                bad.append(where)
    assert not bad, "layer rule broken:\n" + "\n".join(bad)


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    # The checker itself must be able to fail.
    probe = tmp_path / "probe.py"
    probe.write_text("from textual.app import App\nimport collab.tui.cli\n")
    mods = [m for _, m in _imports(probe)]
    assert mods == ["textual.app", "collab.tui.cli"]
    assert not _allowed("backend", "collab.tui.cli")
    assert _allowed("backend", "collab.backend_client.wire.values")
    assert not _allowed("backend", "collab.backend_client.client")
