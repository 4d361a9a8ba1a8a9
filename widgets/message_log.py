"""The discussion log: messages of the space, live, including agents' replies while they
stream. Two inputs: ``messages:list`` (durable bodies, ~250 ms steps) and ``streams:forSpace``
(the not-yet-persisted tails, ~30 ms); a streaming reply shows ``merge(body, tail)`` with a
cursor. Decisions, open questions, failures and stops are marked in each message's header.

The whole discussion is reachable: moving or scrolling up past the oldest message held pages
older ones in above it (``messages:page`` through the facade), ``Home`` goes to the first
message, ``End`` back to the live tail. The log holds a bounded window of messages
(:mod:`~collab.widgets.message_window`); what comes in or goes at one end never moves what
the reader looks at.

Drawn line by line (Textual's line API) from a cache of wrapped messages, so a frame costs
the lines on screen, not the log: a new tail re-wraps only the end of its reply
(:class:`~collab.widgets.wrap.IncrementalWrap`), other messages keep their lines, a page
that comes in wraps only its own messages, and only the heights after the changed message
are summed again. A reply of 100,000 characters costs the same per tick as one of 100.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from collab.backend_client.space import rows_by_message
from collab.widgets.keys import binding
from collab.widgets.lines import refresh_rows, set_virtual_size
from collab.widgets.message_blocks import (CURSOR, CURSOR_STYLE, Block, body_of, header_key, header_text,
                                           message_prompt, note_of)
from collab.widgets.message_paging import LogPager
from collab.widgets.message_window import Edit, MessageWindow, Pages
from collab.widgets.wrap import IncrementalWrap

__all__ = ["CURSOR", "MessageLog", "header_text", "message_prompt"]

EMPTY = "No messages yet. Write below; @agent asks an agent."


class MessageLog(ScrollView, can_focus=True):
    BINDINGS = [
        binding("discussion.mark_decision", "act('mark_decision')", description="Decision"),
        binding("discussion.reply", "act('reply')", description="Reply"),
        binding("discussion.copy", "act('copy')", show=False),
        binding("discussion.export", "act('export')", show=False),
        binding("discussion.toggle_sidebar", "act('toggle_sidebar')", description="Outline"),
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "home", show=False),
        Binding("end", "end", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"message-log--cursor", "message-log--empty", "message-log--edge"}
    DEFAULT_CSS = """
    /* The gutter is kept whether or not the scrollbar shows, so the wrap width never changes
       under the messages; nothing is wider than the pane. */
    MessageLog { background: $surface; overflow-x: hidden; scrollbar-gutter: stable; padding: 0 1; }
    MessageLog > .message-log--cursor { background: $block-cursor-blurred-background; }
    MessageLog:focus > .message-log--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    MessageLog > .message-log--empty { color: $text-disabled; }
    MessageLog > .message-log--edge { color: $text-muted; text-style: italic; }
    """

    class Act(Message):
        """A key of the log: ``action`` on the selected ``message`` (handled by the pane)."""

        def __init__(self, action: str, message: dict[str, Any] | None) -> None:
            super().__init__()
            self.action = action
            self.message = message

    def __init__(self, me: str = "", pages: Pages | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.me = me
        self.window = MessageWindow()
        self.live: dict[str, dict[str, Any]] = {}  # messageId -> its live row (streams:forSpace)
        self.highlighted: int | None = None
        self._blocks: list[Block] = []
        self._by_id: dict[str, Block] = {}
        self._offsets: list[int] = []  # first line of each block
        self._end = 0  # the line after the last block
        self._top = 0  # lines above the first block (the "older messages" line)
        self._width = 0
        self._base = Style()
        self.pager = LogPager(self, pages)
        self._stuck = True  # the view stays at the end (the reader scrolled nowhere else)
        self._moving = False  # the log itself is scrolling (not the reader)

    def on_mount(self) -> None:
        self.border_title = "Discussion"

    # ------------------------------------------------------------------ data in

    @property
    def pages(self) -> Pages | None:
        """Where older and newer pages come from (None: the live tail only)."""
        return self.pager.pages

    @pages.setter
    def pages(self, pages: Pages | None) -> None:
        self.pager.pages = pages

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages the log holds, oldest first (a window of the discussion)."""
        return self.window.messages

    @property
    def selected(self) -> dict[str, Any] | None:
        idx = self.highlighted
        return self.messages[idx] if idx is not None and idx < len(self.messages) else None

    @property
    def _following(self) -> bool:
        """The reader is at the newest message: new and growing messages stay in view."""
        return self.window.joined and self._stuck and (self.highlighted is None
                                                       or self.highlighted >= len(self.messages) - 1)

    def set_messages(self, messages: list[dict[str, Any]]) -> None:
        """The live tail (``messages:list``): merged into the window."""
        follow = self._following
        self._apply(self.window.set_tail(list(messages), follow, self._reader()), follow)

    def replace_message(self, msg: dict[str, Any]) -> None:
        """Show a change made here to a message that may be outside the live tail."""
        self._apply(self.window.replace(msg), self._following)

    def set_live(self, rows: list[dict[str, Any]] | None) -> None:
        """New tails (every ~30 ms while agents stream): only their replies are re-wrapped, from
        their last line on."""
        old, self.live = self.live, rows_by_message(rows)
        changed = [i for i, m in enumerate(self.messages)
                   if m.get("state") == "streaming" and old.get(str(m["_id"])) != self.live.get(str(m["_id"]))]
        if changed:
            self._apply(Edit(changed=changed), self._following)

    # ------------------------------------------------------------------ layout

    def _header(self, msg: dict[str, Any], width: int, note: str | None) -> list[Strip]:
        console = self.app.console
        return [Strip(list(line.render(console))) for line in header_text(msg, self.me, note).wrap(console, width)]

    def _block(self, msg: dict[str, Any], width: int) -> Block:
        """The message's block, updated: a new header only if its marks changed, the body
        re-wrapped only from its last line if it grew."""
        mid = str(msg["_id"])
        note = note_of(msg, self.live.get(mid))
        key = header_key(msg, note)
        block = self._by_id.get(mid)
        if block is None or block.body.width != width:
            block = Block(key, self._header(msg, width, note), IncrementalWrap(width), False, mid)
            self._by_id[mid] = block
        elif block.header_key != key:
            block.header_key, block.header = key, self._header(msg, width, note)
        block.streaming = msg.get("state", "done") == "streaming"
        block.body.set(body_of(msg, self.live.get(mid)))
        return block

    def _anchor(self) -> tuple[int, int]:
        """The message at the top of the view and how far into it the view starts."""
        y = int(self.scroll_offset.y)
        i = max(0, bisect_right(self._offsets, y) - 1)
        return i, y - (self._offsets[i] if i < len(self._offsets) else self._top)

    def _apply(self, edit: Edit | None, follow: bool) -> None:
        """Lay out what ``edit`` changed: blocks only for the messages that came or changed,
        heights summed from the first change, the view kept on the same message."""
        if edit is None:
            return
        width = max(1, self.scrollable_content_region.width)
        if not edit:  # nothing in the window moved; its ends may have (the "newer" line)
            if self._blocks and len(self._blocks) == len(self.messages) and width == self._width:
                self._sum_heights(len(self._blocks), width)
            return
        msgs = self.messages
        n_old = len(self._blocks)
        if edit.reset or width != self._width:
            self._relayout(follow)
            return
        anchor_i, anchor_dy = self._anchor()
        gone = self._blocks[:edit.top_removed] + self._blocks[n_old - edit.bottom_removed:]
        kept = self._blocks[edit.top_removed:n_old - edit.bottom_removed]
        self._blocks = ([self._block(m, width) for m in msgs[:edit.top_added]] + kept
                        + [self._block(m, width) for m in msgs[len(msgs) - edit.bottom_added:]])
        for b in gone:
            self._by_id.pop(b.mid, None)
        for i in edit.changed:
            self._blocks[i] = self._block(msgs[i], width)
        if len(self._blocks) != len(msgs):  # cannot happen; if it did, lay out everything
            self._relayout(follow)
            return
        shift = edit.top_added - edit.top_removed
        if follow and msgs:
            self.highlighted = len(msgs) - 1
        elif self.highlighted is not None and msgs:
            self.highlighted = max(0, min(len(msgs) - 1, self.highlighted + shift))
        top_moved = bool(edit.top_added or edit.top_removed) or self._top != self._top_rows()
        first = 0 if top_moved else min([*edit.changed, len(kept)], default=0)
        scroll_before, redraw_from = self.scroll_offset.y, self._offsets[first] if first < len(self._offsets) else self._end
        self._sum_heights(first, width)
        if follow:
            self._scroll_end()
        elif top_moved and self._blocks:
            i = max(0, min(len(self._blocks) - 1, anchor_i + shift))
            self._scroll(max(0, self._offsets[i] + anchor_dy))
        if top_moved:
            self.refresh()
        else:  # the blocks from the first changed one down; everything if the view moved
            refresh_rows(self, redraw_from, self.virtual_size.height + 1, scroll_before)
        self.pager.check(retry=False)

    def _relayout(self, follow: bool) -> None:
        """Every block again (a new width wraps every message once; else they are cached)."""
        width = max(1, self.scrollable_content_region.width)
        if width != self._width:
            self._width, self._by_id = width, {}
        msgs = self.messages
        self._blocks = [self._block(m, width) for m in msgs]
        ids = {b.mid for b in self._blocks}
        self._by_id = {k: b for k, b in self._by_id.items() if k in ids}
        if not msgs:
            self.highlighted = None
        elif self.highlighted is None or follow:
            self.highlighted = len(msgs) - 1
        else:
            self.highlighted = min(self.highlighted, len(msgs) - 1)
        self._sum_heights(0, width)
        if follow:
            self._scroll_end()
        self.refresh()
        self.pager.check(retry=False)

    def _top_rows(self) -> int:
        return 1 if self.window.paged else 0

    def _sum_heights(self, first: int, width: int) -> None:
        self._top = self._top_rows()
        offsets = self._offsets[:first]
        total = offsets[-1] + self._blocks[first - 1].height if first else self._top
        for b in self._blocks[first:]:
            offsets.append(total)
            total += b.height
        self._offsets, self._end = offsets, total
        below = 0 if self.window.joined else 1  # the "newer messages" line
        set_virtual_size(self, Size(width, max(total + below, 1)))

    def _scroll_end(self) -> None:
        if self.scroll_y != self.max_scroll_y:
            self._scroll(self.max_scroll_y)

    def _scroll(self, y: float) -> None:
        """Scroll for the log's own reasons (the highlight moved, new messages came above or
        below), not the reader's wheel or scrollbar."""
        self._moving = True
        try:
            self.scroll_to(y=y, animate=False, immediate=True)
        finally:
            self._moving = False

    def on_resize(self, event: events.Resize) -> None:
        self._relayout(self._following)

    def render_lines(self, crop: Region) -> list[Strip]:
        # The last word on where the view is: the pane's height can change after the latest
        # layout (the composer grows, a sidebar opens) before a Resize is handled; a reader at
        # the newest message stays at the end in every frame.
        if max(1, self.scrollable_content_region.width) != self._width:
            self._relayout(self._following)
        if self._following and self.messages and self.scroll_y != self.max_scroll_y:
            self._scroll(self.max_scroll_y)
        self._base = self.rich_style  # once per frame, not once per line
        return super().render_lines(crop)

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._base
        line_no = self.scroll_offset.y + y
        if not self.messages:
            if y == 0:
                style = base + self.get_component_rich_style("message-log--empty") + Style(dim=True)
                return Strip([Segment(EMPTY[:width], style)]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        if line_no < self._top or (line_no == self._end and not self.window.joined):
            style = base + self.get_component_rich_style("message-log--edge")
            text = self.pager.edge_line(line_no < self._top)
            return Strip([Segment(text[:width], style)]).extend_cell_length(width, base)
        i = bisect_right(self._offsets, line_no) - 1
        if i < 0 or i >= len(self._blocks) or line_no >= self._offsets[i] + self._blocks[i].height:
            return Strip.blank(width, base)
        block, k = self._blocks[i], line_no - self._offsets[i]
        body = block.body.lines
        if k < len(block.header):
            strip = block.header[k]
        elif k - len(block.header) < len(body):
            line = body[k - len(block.header)]
            last = k - len(block.header) == len(body) - 1
            cursor = block.streaming and last and not block.cursor_line
            strip = Strip([Segment(line), Segment(CURSOR, CURSOR_STYLE)] if cursor else [Segment(line)])
        else:  # the cursor on its own line (the last body line is full)
            strip = Strip([Segment(CURSOR, CURSOR_STYLE)])
        # A segment's own style wins over an applied one: the cursor's background goes on before
        # the widget's, and pads the line too.
        if i == self.highlighted:
            base = base + self.get_component_rich_style("message-log--cursor")
        return strip.apply_style(base).crop_extend(0, width, base).apply_offsets(0, line_no)

    # ------------------------------------------------------------------ moving

    def _show_highlighted(self) -> None:
        i = self.highlighted
        if i is None or i >= len(self._blocks):
            return
        top, height = self._offsets[i], self._blocks[i].height
        if i == 0:  # the first message held: the line above it says what lies beyond
            top, height = 0, height + top
        view = self.scrollable_content_region.height
        if top < self.scroll_offset.y:
            self._scroll(top)
        elif top + height > self.scroll_offset.y + view:
            self._scroll(max(top, top + height - view))
        self._stuck = i == len(self._blocks) - 1  # moved to the newest: follow it
        self.refresh()
        self.pager.check()

    def action_cursor(self, delta: int) -> None:
        if self.messages:
            current = self.highlighted if self.highlighted is not None else len(self.messages) - 1
            self.highlighted = max(0, min(len(self.messages) - 1, current + delta))
            self._show_highlighted()

    def action_cursor_to(self, index: int) -> None:
        if self.messages:
            self.highlighted = index % len(self.messages)
            self._show_highlighted()

    def action_page(self, direction: int) -> None:
        if not self.messages or self.highlighted is None:
            return
        target = self._offsets[self.highlighted] + direction * self.scrollable_content_region.height
        i = max(0, min(len(self.messages) - 1, bisect_right(self._offsets, max(0, target)) - 1))
        self.highlighted = i
        self._show_highlighted()

    def action_home(self) -> None:
        """The first message of the discussion: loaded from its start unless already held."""
        self.pager.home()
        self.action_cursor_to(0)

    def action_end(self) -> None:
        """The newest message, following the live tail again."""
        self.pager.end()
        self._stuck = True
        self.action_cursor_to(-1)

    def on_click(self, event: events.Click) -> None:
        line_no = self.scroll_offset.y + event.y
        i = bisect_right(self._offsets, line_no) - 1
        if 0 <= i < len(self.messages):
            self.highlighted = i
            self.refresh()

    def action_act(self, action: str) -> None:
        self.post_message(self.Act(action, self.selected))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._moving or round(old_value) == round(new_value):
            return
        # The reader scrolled (wheel, scrollbar, a key): away from the end, the view stays
        # where they put it; back at the end of the live tail, it follows again.
        self._stuck = new_value >= self.max_scroll_y
        if self._stuck and self.window.joined and self.messages:
            self.highlighted = len(self.messages) - 1
        self.pager.check()

    # ------------------------------------------------------------------ where the reader is

    def _visible(self) -> tuple[int, int]:
        """Indexes of the first and last message on screen."""
        y = int(self.scroll_offset.y)
        first = max(0, bisect_right(self._offsets, y) - 1)
        last = max(0, bisect_right(self._offsets, y + self.scrollable_content_region.height - 1) - 1)
        return first, min(last, len(self.messages) - 1)

    def _reader(self) -> int:
        """Where the reader is (the message in the middle of the view): what a trim keeps."""
        if not self._offsets:
            return len(self.messages) - 1
        first, last = self._visible()
        return (first + last) // 2

    # ------------------------------------------------------------------ for tests and export

    def message_text(self, index: int) -> str:
        """The plain text the log shows for message ``index`` (header, body, cursor)."""
        msg = self.messages[index]
        return message_prompt(msg, self.me, self.live.get(str(msg["_id"]))).plain
