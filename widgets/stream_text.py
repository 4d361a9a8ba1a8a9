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
from textual.cache import LRUCache
from textual.geometry import NULL_SPACING, Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from collab.widgets.lines import refresh_rows, set_virtual_size
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
    StreamText.-following { scrollbar-visibility: hidden; }
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
        self._following = True
        self._jump_top = 0  # while following a streaming text: the top row of the view
        self._pending: str | None = text  # wrapped once the width is known
        self._base = Style()
        self._frame_width = 0
        # A column that follows its tail is drawn whole on every scroll, though only its last
        # row or two changed: a row's strip is built once per (row, width, style, text).
        self._strips: LRUCache[tuple[int, int, Style, str], Strip] = LRUCache(512)
        self._finished: LRUCache[tuple[Any, ...], Strip] = LRUCache(512)  # the same, filtered

    @property
    def _follow(self) -> bool:
        return self._following

    @_follow.setter
    def _follow(self, value: bool) -> None:
        self._following = value
        self._mark_following()

    def _mark_following(self) -> None:
        # While a text streams and the view follows its end, the scrollbar would move on every
        # new row, and drawing it cost more than the text (measured: bench/variations.py); its
        # gutter stays, so nothing re-wraps when it comes back.
        following = self._following and self.streaming
        if following == self.has_class("-following"):
            return
        self.set_class(following, "-following")
        if not following and self.is_mounted:  # the scrollbar shows again: bring it up to date
            self._scroll_update(self.virtual_size)
            if self.show_vertical_scrollbar:
                self.vertical_scrollbar.position = self.scroll_y

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        if self.has_class("-following"):
            # The scrollbar is hidden: moving it would only cost a rebuild of Textual's map of
            # every widget on the next frame (see set_virtual_size).
            if round(old_value) != round(new_value):
                self.refresh(self.size.region)
            return
        super().watch_scroll_y(old_value, new_value)

    # ------------------------------------------------------------------ text in

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def set_text(self, text: str, *, streaming: bool = False) -> None:
        """A new text (usually the old one plus more): only its end is wrapped again, and only
        the rows that changed are drawn again."""
        was_streaming, self.streaming = self.streaming, streaming
        if streaming != was_streaming:
            self._mark_following()
        if self._width == 0:  # not laid out yet: wrap once the width is known
            self._pending = text
            self.refresh()
            return
        # Wrapping is prefix-stable (widgets/wrap.py): appended text changes only the open last
        # row and the rows after it, even within one long paragraph.
        first, scroll = len(self._rows) + len(self._tail.lines) - 1, self.scroll_offset.y
        if text == self.text and streaming == was_streaming:
            return
        if text.startswith(self.text):
            self._extend(text[len(self.text):])
        else:
            self._rewrap(text)
            first = 0
        self._resized(first, scroll)

    def _rewrap(self, text: str) -> None:
        self.text, self._rows, self._line_first, self._tail = "", [], [], IncrementalWrap(self._width)
        self._strips.clear()
        self._finished.clear()
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

    def _virtual_rows(self) -> int:
        """The rows the view scrolls over. While it follows a streaming text it jump-scrolls,
        as terminals do under fast output: when the end passes the bottom, the view moves up a
        third of its height at once and the end fills the space left below it.

        Scrolling by one row moves every row of the column, so the whole column is drawn and
        sent to the terminal again; five columns at 50 tokens/s did that ~70 times a second
        (bench/variations.py). Jumps do it a few times a second, send a fraction of the bytes
        over SSH, and move the text under the reader's eyes less often. Nothing is hidden: the
        end is always on screen. The space below stays while the text streams (a reader who
        scrolled up comes back down to it) and goes when it stops."""
        rows = max(1, self.row_count)
        view = self.scrollable_content_region.height
        if not self.streaming or view < 3 or rows <= view:
            self._jump_top = 0
            return rows
        if self._following and (rows > self._jump_top + view or rows <= self._jump_top):
            self._jump_top = rows - view + view // 3
        return max(rows, self._jump_top + view)

    def _resized(self, first: int = 0, scroll_before: float | None = None) -> None:
        set_virtual_size(self, Size(self._width, self._virtual_rows()))
        if self._follow and self.streaming and self.scroll_y != self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        elif self.scroll_y > self.max_scroll_y:  # the space below the end went: end at the bottom
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        if scroll_before is None:
            self.refresh()
        else:
            refresh_rows(self, first, self.row_count + 1, scroll_before)

    def render_lines(self, crop: Region) -> list[Strip]:
        self._base = self.rich_style  # once per frame, not once per line
        width = max(1, self.scrollable_content_region.width)
        if width != self._width:
            self._width = width
            self._rewrap(self._pending if self._pending is not None else self.text)
            self._pending = None
            self._resized()
        if self._follow and self.streaming and self.scroll_y != self.max_scroll_y:
            self.scroll_y = self.max_scroll_y
        self._frame_width = self.size.width
        if not self._plain_box():
            return super().render_lines(crop)
        return self._render_plain(crop)

    def _plain_box(self) -> bool:
        """No border, padding, outline, tint, opacity or hatch: a drawn row is the final row."""
        styles = self.styles
        return (styles.gutter == NULL_SPACING and not any(edge for edge, _ in styles.outline)
                and not styles.tint.a and self.opacity == 1 and styles.text_opacity == 1
                and (not styles.has_rule("hatch") or styles.hatch == "none")
                and self._border_title is None and self._border_subtitle is None)

    def _render_plain(self, crop: Region) -> list[Strip]:
        """What Textual's styles cache would make of ``render_line`` for a plain box, without it.

        The styles cache keeps lines by their place on screen, so a column that scrolls by a row
        loses all of them and builds every line again (Strip copies, border and style look-ups
        per line): that was most of a frame with five columns streaming (bench/variations.py).
        Here a scrolled row comes back as the same Strip object it was a frame ago, and so do its
        filtered copy, its cuts and its terminal text, which Textual caches per Strip.
        """
        width, height = self._frame_width, self.size.height
        base_background, background = self.background_colors
        inner = self._styles_cache.get_inner_outer(base_background, background)[0].rich_style
        filters = tuple(self.get_line_filters())
        strips: list[Strip] = []
        # A plain text row (no cursor, not in compose mode) is kept finished, filters applied:
        # most rows of a frame are rows of the last frame.
        top, cached = int(self.scroll_offset.y), self._finished
        plain = not self.show_cursor_line and bool(self.text)
        for y in crop.line_range:
            key = None
            if plain and y < height:
                got = self._row_text(top + y)
                if got is not None and not got[1]:
                    key = (top + y, width, self._base, got[0], inner, background, filters)
                    strip = cached.get(key)
                    if strip is not None:
                        strips.append(strip)
                        continue
            strip = self.render_line(y) if y < height else Strip.blank(width, inner)
            if strip.cell_length != width:
                strip = strip.adjust_cell_length(width, inner)
            for line_filter in filters:
                strip = strip.apply_filter(line_filter, background)
            if key is not None:
                cached[key] = strip
            strips.append(strip)
        if crop.column_span != (0, width):
            x1, x2 = crop.column_span
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    # ------------------------------------------------------------------ drawing

    def _line_of_row(self, row: int) -> int:
        if row >= len(self._rows):
            return len(self._line_first)  # the open last line
        return bisect_right(self._line_first, row) - 1

    def _row_text(self, row: int) -> tuple[str, bool] | None:
        """A virtual row's text and whether the streaming cursor ends it (None: past the end)."""
        closed, tail = self._rows, self._tail.lines
        if row < len(closed):
            return closed[row], False
        k = row - len(closed)
        if k < len(tail):
            return tail[k], self.streaming and k == len(tail) - 1 and not self._cursor_row()
        if k == len(tail) and self._cursor_row():
            return "", True
        return None

    def render_line(self, y: int) -> Strip:
        width = self._frame_width or self.size.width  # set once per frame by render_lines
        base = self._base
        row = self.scroll_offset.y + y
        if not self.text and not self.streaming:
            if y == 0 and self.placeholder:
                style = base + self.get_component_rich_style("stream-text--empty")
                return Strip([Segment(self.placeholder[:width], style)]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        got = self._row_text(row)
        if got is None:
            return Strip.blank(width, base)
        text, cursor = got
        if not self.show_cursor_line and not cursor:
            key = (row, width, base, text)
            strip = self._strips.get(key)
            if strip is None:
                strip = Strip([Segment(text)]).apply_style(base).crop_extend(0, width, base).apply_offsets(0, row)
                self._strips[key] = strip
            return strip
        segments = [Segment(text)]
        if cursor:
            segments.append(Segment(CURSOR, CURSOR_STYLE))
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
