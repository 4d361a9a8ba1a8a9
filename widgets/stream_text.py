"""One text that may be growing (a pipeline stage's output while its agent writes), drawn line
by line (Textual's line API) from an incremental wrap: a new live tail every ~30 ms re-wraps
only the last line and what was appended (:class:`~collab.widgets.wrap.IncrementalWrap`), and
a frame draws only the rows on screen, so a tick costs the same at 100 and at 100,000
characters. It can also show fixed styled lines (a diff), wrapped once.

The view follows the end while the reader is at the end; scrolling up stops following.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from collab.widgets.wrap import IncrementalWrap, wrap

__all__ = ["StreamText"]

CURSOR = "▌"
CURSOR_STYLE = Style(color="yellow", bold=True)


class StreamText(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    StreamText { background: $surface; overflow-x: hidden; scrollbar-gutter: stable; padding: 0 1; }
    """

    def __init__(self, placeholder: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.streaming = False
        self._wrap = IncrementalWrap(1)
        self._styled: list[tuple[str, str]] | None = None  # (text, style) lines: a diff
        self._lines: list[tuple[str, Style]] = []  # the styled lines, wrapped
        self._width = 0
        self._follow = True

    # ------------------------------------------------------------------ data in

    @property
    def text(self) -> str:
        return self._wrap.text

    def set_text(self, text: str, *, streaming: bool = False) -> None:
        """Show ``text`` (re-wrapped only from its last line if it extends what is shown)."""
        self._styled = None
        self.streaming = streaming
        self._wrap.set(text)
        self._relayout()

    def set_styled(self, lines: list[tuple[str, str]]) -> None:
        """Show fixed lines, each with a Rich style string (wrapped to the width once)."""
        self._styled = list(lines)
        self.streaming = False
        self._wrap_styled()
        self._relayout()

    def _wrap_styled(self) -> None:
        width = max(1, self._width)
        self._lines = [(part, Style.parse(style) if style else Style()) for text, style in self._styled or []
                       for part in wrap(text, width)]

    # ------------------------------------------------------------------ layout

    @property
    def _rows(self) -> int:
        if self._styled is not None:
            return len(self._lines)
        lines = self._wrap.lines
        if not self._wrap.text:
            return 1
        extra = 1 if self.streaming and cell_len(lines[-1]) >= self._wrap.width else 0
        return len(lines) + extra

    def _relayout(self) -> None:
        width = max(1, self.scrollable_content_region.width)
        if width != self._width:
            self._width = width
            self._wrap.resize(width)
            if self._styled is not None:
                self._wrap_styled()
        follow = self._follow or self.scroll_y >= self.max_scroll_y
        self.virtual_size = Size(width, max(self._rows, 1))
        if follow:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._relayout()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._follow = False

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._follow = new >= self.max_scroll_y

    def render_lines(self, crop: Region) -> list[Strip]:
        if max(1, self.scrollable_content_region.width) != self._width:
            self._relayout()
        return super().render_lines(crop)

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        row = self.scroll_offset.y + y
        if self._styled is not None:
            if row >= len(self._lines):
                return Strip.blank(width, base)
            text, style = self._lines[row]
            return Strip([Segment(text, style)]).apply_style(base).crop_extend(0, width, base).apply_offsets(0, row)
        if not self._wrap.text:
            if row == 0 and (self.placeholder or self.streaming):
                segs = [Segment(CURSOR, CURSOR_STYLE)] if self.streaming else \
                    [Segment(self.placeholder[:width], Style(dim=True, italic=True))]
                return Strip(segs).apply_style(base).crop_extend(0, width, base)
            return Strip.blank(width, base)
        lines = self._wrap.lines
        if row < len(lines):
            last = row == len(lines) - 1
            segs = [Segment(lines[row])]
            if self.streaming and last and cell_len(lines[row]) < self._wrap.width:
                segs.append(Segment(CURSOR, CURSOR_STYLE))
            strip = Strip(segs)
        elif self.streaming and row == len(lines) and cell_len(lines[-1]) >= self._wrap.width:
            strip = Strip([Segment(CURSOR, CURSOR_STYLE)])  # the last line is full: a line of its own
        else:
            return Strip.blank(width, base)
        return strip.apply_style(base).crop_extend(0, width, base).apply_offsets(0, row)
