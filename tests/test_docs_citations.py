"""The docs and the code cite only what is in the repo: the protocol and design pages they
name (docs/PROTOCOL.md, docs/DESIGN.md) exist, every section a citation gives ("PROTOCOL.md
3.4", "DESIGN 2.4") is a heading there, every docs/*.md named exists, and nothing points at
files outside the repo (they were once cited from a shared folder nobody who clones has)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP = {".venv", "node_modules", "__snapshots__", ".git", "__pycache__"}


def _sources() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        if path.suffix in (".md", ".py") and not SKIP & set(path.relative_to(REPO).parts):
            found.append(path)
    return sorted(found)


def _sections(doc: str) -> set[str]:
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.M))


# Spelled in pieces so this file does not match itself.
OUTSIDE = ("shared/" + "PROTOCOL", "shared/" + "DESIGN", "/work/" + "shared")
CITATION = re.compile(r"\b(PROTOCOL|DESIGN)(?:\.md)?(?: section)? (\d+(?:\.\d+)?)\b")


def test_protocol_and_design_are_in_the_repo_with_their_sections() -> None:
    assert {"1", "2.1", "2.3", "3.1", "3.3", "3.4", "3.9", "4.1", "4.2", "4.3", "5"} <= _sections("PROTOCOL.md")
    assert {"1", "2.3", "2.4", "2.5"} <= _sections("DESIGN.md")


def test_citations_resolve_inside_the_repo() -> None:
    sections = {"PROTOCOL": _sections("PROTOCOL.md"), "DESIGN": _sections("DESIGN.md")}
    problems = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(REPO)
        if any(o in text for o in OUTSIDE):
            problems.append(f"{where} points outside the repo")
        for doc, number in CITATION.findall(text):
            if number not in sections[doc]:
                problems.append(f"{where} cites {doc} {number}, which docs/{doc}.md has no section for")
        for name in re.findall(r"\bdocs/([A-Z][A-Z_]*\.md)\b", text):
            if not (REPO / "docs" / name).is_file():
                problems.append(f"{where} names docs/{name}, which does not exist")
    assert len(_sources()) > 100  # the walk found the code, not an empty folder
    assert not problems, "\n".join(problems)
