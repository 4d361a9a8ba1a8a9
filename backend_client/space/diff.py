"""Line diffs of two texts (history, variations, pipeline stages), as data: the widgets style
them; nothing here knows about a terminal."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

__all__ = ["DiffLine", "diff_lines", "side_by_side"]

Kind = Literal["head", "hunk", "add", "del", "same"]


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: Kind
    text: str


def diff_lines(a: str, b: str, label_a: str, label_b: str, context: int = 3) -> list[DiffLine]:
    """A unified diff of ``a`` -> ``b``; empty when they are equal."""
    out: list[DiffLine] = []
    for line in difflib.unified_diff(a.splitlines(), b.splitlines(), label_a, label_b, lineterm="", n=context):
        if line.startswith(("---", "+++")) and len(out) < 2:
            out.append(DiffLine("head", line))
        elif line.startswith("@@"):
            out.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            out.append(DiffLine("add", line))
        elif line.startswith("-"):
            out.append(DiffLine("del", line))
        else:
            out.append(DiffLine("same", line))
    return out


def side_by_side(a: str, b: str) -> list[tuple[DiffLine | None, DiffLine | None]]:
    """Rows of (left, right) for a two-column diff: equal lines side by side, a replaced block
    paired line by line, inserted / deleted lines against a blank."""
    left, right = a.splitlines(), b.splitlines()
    rows: list[tuple[DiffLine | None, DiffLine | None]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, left, right, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [(DiffLine("same", left[i]), DiffLine("same", right[j])) for i, j in zip(range(i1, i2), range(j1, j2))]
            continue
        olds = [DiffLine("del", left[i]) for i in range(i1, i2)]
        news = [DiffLine("add", right[j]) for j in range(j1, j2)]
        for k in range(max(len(olds), len(news))):
            rows.append((olds[k] if k < len(olds) else None, news[k] if k < len(news) else None))
    return rows
