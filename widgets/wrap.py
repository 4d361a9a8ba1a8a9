"""Greedy word wrap of a growing text, in terminal cells, where appending costs only the new
text: what streams into a pane every ~30 ms (a reply, a variation, a stage's output) must cost
the same per tick whether it is 100 or 100,000 characters long.

Greedy wrapping is prefix-stable: the lines before the last one never change when text is
appended (a hard line break ends a line for good, and a soft break happened because the next
word did not fit, which more text cannot undo). So an append wraps again only the source of
the last line (kept as an offset into the text, dropped spaces included) plus the new text.
A new width (a resize) wraps the whole text again, once.
"""

from __future__ import annotations

import re

from rich.cells import cell_len

__all__ = ["IncrementalWrap", "wrap"]

_TOKENS = re.compile(r"\n| +|[^ \n]+")


class IncrementalWrap:
    def __init__(self, width: int, text: str = "") -> None:
        self.width = max(1, width)
        self._reset()
        self.set(text)

    def _reset(self) -> None:
        self.text = ""
        self.lines: list[str] = [""]  # the last one is open: appended text may change it
        self.start = 0  # where the last line's source begins in ``text``
        self.soft = False  # the last line began at a soft break (its leading spaces are dropped)
        self.wrapped = 0  # characters the last append went through (its cost, for tests)

    def set(self, text: str) -> None:
        """Wrap ``text``: only from the last line on if it extends the previous text."""
        if text.startswith(self.text):
            self.append(text[len(self.text):])
        else:
            self._reset()
            self.append(text)

    def resize(self, width: int) -> None:
        if max(1, width) != self.width:
            text, self.width = self.text, max(1, width)
            self._reset()
            self.append(text)

    def append(self, more: str) -> None:
        if not more:
            return
        self.text += more
        self.wrapped = len(self.text) - self.start
        self.lines.pop()
        width, lines = self.width, self.lines
        line, used, soft, start = "", 0, self.soft, self.start

        def emit(text: str, next_start: int, next_soft: bool) -> None:
            nonlocal line, used, soft, start
            lines.append(text)
            line, used, soft, start = "", 0, next_soft, next_start

        for m in _TOKENS.finditer(self.text, self.start):
            token, at = m.group(), m.start()
            if token == "\n":
                emit(line, at + 1, False)
            elif token[0] == " ":
                # One space at a time, so a run split between two appends wraps as one.
                for i in range(len(token)):
                    if not line and soft:
                        continue  # spaces at a soft break are dropped
                    if used < width:
                        line, used = line + " ", used + 1
                    elif line.strip(" "):
                        emit(line.rstrip(" "), at + i, True)
                    # else: indentation wider than the line; the rest of it is dropped
            else:
                size = cell_len(token)
                if used + size <= width:
                    line, used = line + token, used + size
                    continue
                if line.strip(" "):
                    emit(line.rstrip(" "), at, True)
                elif size <= width:  # indentation that leaves no room for the word: dropped
                    line, used = "", 0
                for i, ch in enumerate(token):  # a word wider than the line is folded
                    w = cell_len(ch)
                    if used + w > width and line:
                        emit(line, at + i, True)
                    line, used = line + ch, used + w
        lines.append(line)
        self.start, self.soft = start, soft


def wrap(text: str, width: int) -> list[str]:
    """``text`` wrapped to ``width`` cells (hard breaks kept, long words folded)."""
    return IncrementalWrap(width, text).lines
