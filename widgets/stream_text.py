"""A text that may be growing (a variation, a stage's output), drawn line by line.

Source lines (split on ``\\n``) are wrapped one by one and kept: when the text grows, only its
last source line is wrapped again, incrementally (:class:`~collab.widgets.wrap.IncrementalWrap`),
so a tick costs the same whatever the text's length, and a frame draws only the rows on screen.
Because rows know their source line, the widget has a line cursor and a line selection (for
picking parts of a text with the keyboard), and the view follows the end while the text
streams, unless the reader moved away.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from collab.widgets.wrap import IncrementalWrap, wrap

__all__ = ["StreamText"]

CURSOR = "▌"
CURSOR_STYLE = Style(color="yellow", bold=True)


class StreamText(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up,k", "line(-1)", "Up", show=False),
        Binding("down,j", "line(1)", "Down", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "line_to(0)", show=False),
        Binding("end", "line_to(-1)", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"stream-text--line", "stream-text--selected", "stream-text--empty"}
    DEFAULT_CSS = """
    StreamText { overflow-x: hidden; scrollbar-gutter: stable; background: $surface; }
    StreamText > .stream-text--line { background: $boost; }
    StreamText:focus > .stream-text--line { background: $block-cursor-blurred-background; }
    StreamText > .stream-text--selected { background: $accent 40%; }
    StreamText > .stream-text--empty { color: $text-disabled; }
    """

    class Moved(Message):
        """The line cursor moved (or the view scrolled): ``line`` is the source line."""

        def __init__(self, widget: StreamText, line: int) -> None:
            super().__init__()
            self.widget = widget
            self.line = line

    def __init__(self, text: str = "", *, placeholder: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.text = ""
        self.streaming = False  # draw a cursor after the end
        self.cursor_line = 0
        self.show_cursor_line = False  # compose mode: the cursor line and selection are drawn
        self.selection: tuple[int, int] | None = None  # source lines [start, end)
        self.anchor: int | None = None  # a selection grows from here as the cursor moves
        self._width = 0
        self._rows: list[str] = []  # wrapped rows of every source line but the last
        self._line_first: list[int] = []  # first row of each closed source line
        self._tail = IncrementalWrap(1)  # the last source line, still growing
        self._follow = True
        self._pending: str | None = text  # wrapped once the width is known

    # ------------------------------------------------------------------ text in

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def set_text(self, text: str, *, streaming: bool = False) -> None:
        """A new text (usually the old one plus more): only its end is wrapped again."""
        self.streaming = streaming
        if self._width == 0:  # not laid out yet: wrap once the width is known
            self._pending: str | None = text  # wrapped once the width is known
            self.refresh()
            return
        if text.startswith(self.text):
            self._extend(text[len(self.text):])
        else:
            self._rewrap(text)
        self._resized()

    def _rewrap(self, text: str) -> None:
        self.text, self._rows, self._line_first, self._tail = "", [], [], IncrementalWrap(self._width)
        self._extend(text)

    def _extend(self, more: str) -> None:
        self.text += more
        *closed, last = more.split("\n")
        if closed:
            # The open line is complete: its rows join the closed ones; whole lines follow.
            self._tail.append(closed[0])
            self._line_first.append(len(self._rows))
            self._rows += self._tail.lines
            for line in closed[1:]:
                self._line_first.append(len(self._rows))
                self._rows += wrap(line, self._width)
            self._tail = IncrementalWrap(self._width)
        self._tail.append(last)

    @property
    def row_count(self) -> int:
        return len(self._rows) + len(self._tail.lines) + (1 if self._cursor_row() else 0)

    def _cursor_row(self) -> bool:
        """The streaming cursor gets a row of its own when the last row is full."""
        return self.streaming and len(self._tail.lines[-1]) >= self._width

    def _resized(self) -> None:
        self.virtual_size = Size(self._width, max(1, self.row_count))
        if self._follow and self.streaming:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        width = max(1, self.scrollable_content_region.width)
        if width != self._width:
            self._width = width
            self._rewrap(self._pending if self._pending is not None else self.text)
            self._pending = None
            self._resized()
        if self._follow and self.streaming and self.scroll_y != self.max_scroll_y:
            self.scroll_y = self.max_scroll_y
        return super().render_lines(crop)

    # ------------------------------------------------------------------ drawing

    def _line_of_row(self, row: int) -> int:
        if row >= len(self._rows):
            return len(self._line_first)  # the open last line
        return bisect_right(self._line_first, row) - 1

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        row = self.scroll_offset.y + y
        if not self.text and not self.streaming:
            if y == 0 and self.placeholder:
                style = base + self.get_component_rich_style("stream-text--empty")
                return Strip([Segment(self.placeholder[:width], style)]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        tail = self._tail.lines
        if row < len(self._rows):
            segments = [Segment(self._rows[row])]
        elif row - len(self._rows) < len(tail):
            k = row - len(self._rows)
            segments = [Segment(tail[k])]
            if self.streaming and k == len(tail) - 1 and not self._cursor_row():
                segments.append(Segment(CURSOR, CURSOR_STYLE))
        elif self._cursor_row() and row == len(self._rows) + len(tail):
            segments = [Segment(CURSOR, CURSOR_STYLE)]
        else:
            return Strip.blank(width, base)
        if self.show_cursor_line:
            line = self._line_of_row(row)
            if self.selection is not None and self.selection[0] <= line < self.selection[1]:
                base = base + self.get_component_rich_style("stream-text--selected")
            elif line == self.cursor_line:
                base = base + self.get_component_rich_style("stream-text--line")
        return Strip(segments).apply_style(base).crop_extend(0, width, base).apply_offsets(0, row)

    # ------------------------------------------------------------------ moving

    def _rows_of_line(self, line: int) -> tuple[int, int]:
        if line < len(self._line_first):
            end = self._line_first[line + 1] if line + 1 < len(self._line_first) else len(self._rows)
            return self._line_first[line], end
        return len(self._rows), len(self._rows) + len(self._tail.lines)

    def move_to_line(self, line: int) -> None:
        count = len(self.lines)
        self.cursor_line = max(0, min(count - 1, line))
        top, end = self._rows_of_line(self.cursor_line)
        view = self.scrollable_content_region.height
        if top < self.scroll_offset.y:
            self.scroll_to(y=top, animate=False)
        elif end > self.scroll_offset.y + view:
            self.scroll_to(y=max(top, end - view), animate=False)
        self._follow = self.cursor_line == count - 1
        if self.anchor is not None:
            self.selection = (min(self.anchor, self.cursor_line), max(self.anchor, self.cursor_line) + 1)
        self.refresh()
        self.post_message(self.Moved(self, self.cursor_line))

    def toggle_selection(self) -> None:
        """Start a selection at the cursor line, or stop growing it (it stays as it is)."""
        if self.anchor is None:
            self.anchor = self.cursor_line
            self.selection = (self.cursor_line, self.cursor_line + 1)
        else:
            self.anchor = None
        self.refresh()

    def clear_selection(self) -> None:
        self.anchor, self.selection = None, None
        self.refresh()

    def action_line(self, delta: int) -> None:
        if not self.show_cursor_line:  # reading: scroll by a row
            self.scroll_to(y=self.scroll_offset.y + delta, animate=False)
            self._follow = self.scroll_offset.y >= self.max_scroll_y
            self.post_message(self.Moved(self, self._line_of_row(int(self.scroll_offset.y))))
            return
        self.move_to_line(self.cursor_line + delta)

    def action_line_to(self, line: int) -> None:
        if not self.show_cursor_line:
            self.scroll_to(y=0 if line == 0 else self.max_scroll_y, animate=False)
            self._follow = line != 0
            return
        self.move_to_line(line if line >= 0 else len(self.lines) - 1)

    def action_page(self, direction: int) -> None:
        view = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=self.scroll_offset.y + direction * view, animate=False)
        self._follow = self.scroll_offset.y >= self.max_scroll_y
        if self.show_cursor_line:
            self.cursor_line = self._line_of_row(int(self.scroll_offset.y))
            self.refresh()

    def scroll_rows_to(self, y: float) -> None:
        """Scroll to row ``y`` (columns scrolled together follow the focused one)."""
        self.scroll_to(y=y, animate=False)
        self._follow = self.scroll_offset.y >= self.max_scroll_y
