"""The layer rules of docs/ARCHITECTURE.md, checked on the source (every import statement).

The rules are read from the table in docs/ARCHITECTURE.md itself, so the documented rules and
the enforced rules are one and the same; a top-level folder with Python code and no row fails.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
# Folders that are not Python layers (or not ours).
NOT_LAYERS = {".git", ".venv", ".ci", "docs", "scripts", "convex", "node_modules", "build"}


def read_rules(text: str) -> tuple[dict[str, set[str]], set[str], set[str]]:
    """(folder -> allowed collab.* packages, folders without Textual, folders that may not
    reach the client) from the "Layer rules" table of the doc."""
    allowed: dict[str, set[str]] = {}
    no_textual: set[str] = set()
    facade_only: set[str] = set()
    section = text.split("## Layer rules", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`") or cells[0].startswith("`-"):
            continue
        folder = cells[0].strip("`/")
        names = re.findall(r"`([a-z_*]+)`", cells[1])
        allowed[folder] = {"*"} if "*" in names else {f"collab.{n}" for n in names}
        if "no" in cells[2].lower():
            no_textual.add(folder)
        if "facade" in cells[3].lower():
            facade_only.add(folder)
    return allowed, no_textual, facade_only


ALLOWED, NO_TEXTUAL, FACADE_ONLY = read_rules(DOC.read_text(encoding="utf-8"))
# The client class, which screens and widgets reach only through the facade.
CLIENT_MODULES = ("collab.backend_client.client",)
CLIENT_NAMES = {"ConvexClient"}


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def _client_uses(path: Path) -> list[int]:
    """Lines that touch an attribute called ``client`` (``session.client``, ``self.client``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return sorted({n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "client"})


def _allowed(folder: str, module: str) -> bool:
    allowed = ALLOWED[folder]
    if "*" in allowed or module == f"collab.{folder}" or module.startswith(f"collab.{folder}."):
        return True
    return any(module == a or module.startswith(a + ".") for a in allowed)


def violations(folder: str) -> list[str]:
    bad: list[str] = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = path.relative_to(ROOT)
        for lineno, module, names in _imports(path):
            where = f"{rel}:{lineno} imports {module}"
            if folder in NO_TEXTUAL and (module == "textual" or module.startswith("textual.")):
                bad.append(where + " (no Textual in this layer)")
            elif module.startswith("collab.") and not _allowed(folder, module):
                bad.append(where)
            elif folder in FACADE_ONLY and (module.startswith(CLIENT_MODULES) or CLIENT_NAMES & set(names)):
                bad.append(where + " (the client class: go through the facade)")
        if folder in FACADE_ONLY:
            bad += [f"{rel}:{n} uses .client (go through the facade)" for n in _client_uses(path)]
    return bad


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_layer_imports(folder: str) -> None:
    bad = violations(folder)
    assert not bad, "layer rule broken:\n" + "\n".join(bad)


def test_every_python_folder_has_a_rule() -> None:
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in NOT_LAYERS
               and not p.name.startswith(".") and any(p.rglob("*.py"))}
    assert folders - set(ALLOWED) == set(), f"folders without a layer rule in {DOC.name}"
    assert set(ALLOWED) - folders == set(), f"rules for folders that do not exist in {DOC.name}"


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    # The checker itself must be able to fail.
    probe = tmp_path / "probe.py"
    probe.write_text("from textual.app import App\nimport collab.tui.cli\nx = session.client.query\n")
    mods = [m for _, m, _ in _imports(probe)]
    assert mods == ["textual.app", "collab.tui.cli"]
    assert _client_uses(probe) == [3]
    assert not _allowed("backend", "collab.tui.cli")
    assert not _allowed("backend", "collab.backend_client")
    assert not _allowed("backend_client", "collab.backend")
    assert _allowed("backend", "collab.wire.values")
    assert _allowed("tui", "collab.backend")
    assert "backend" in NO_TEXTUAL and "widgets" not in NO_TEXTUAL
    assert {"screens", "widgets"} <= FACADE_ONLY
