"""The discussion log: messages of the space, live, including agents' replies while they
stream. Two inputs: ``messages:list`` (durable bodies, ~250 ms steps) and ``streams:forSpace``
(the not-yet-persisted tails, ~30 ms); a streaming reply shows ``merge(body, tail)`` with a
cursor. Decisions, open questions, failures and stops are marked in each message's header.

Drawn line by line (Textual's line API) from a cache of wrapped messages, so a frame costs
the lines on screen, not the log: a new tail re-wraps only the end of its reply
(:class:`~collab.widgets.wrap.IncrementalWrap`), other messages keep their lines, and only
the heights after the changed message are summed again. A reply of 100,000 characters costs
the same per tick as one of 100.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from collab.backend_client.space import merge, rows_by_message
from collab.widgets.keys import binding
from collab.widgets.usage import run_cost
from collab.widgets.wrap import IncrementalWrap

__all__ = ["MessageLog", "header_text", "message_prompt"]

EMPTY = "No messages yet. Write below; @agent asks an agent."
CURSOR = "▌"  # no blink: terminals differ, snapshots flake
CURSOR_STYLE = Style(color="yellow", bold=True)


def header_text(msg: dict[str, Any], me: str = "") -> Text:
    """Who wrote it and its marks: ``@quinn agent ✔ decision … replying``."""
    kind = msg.get("authorKind", "human")
    handle = str(msg.get("authorHandle", "?"))
    text = Text()
    text.append("you" if handle == me else f"@{handle}", style="bold magenta" if kind == "agent" else "bold green")
    if kind == "agent":
        text.append(" agent", style="magenta")
    if msg.get("decision"):
        text.append(" ✔ decision", style="bold cyan")
    if msg.get("openQuestion"):
        text.append(" ? open", style="bold yellow")
    state = msg.get("state", "done")
    if state == "streaming":
        text.append(" … replying", style="italic yellow")
    elif state == "failed" and str(msg.get("error") or "").startswith("cancelled"):
        text.append(f" ■ stopped: {msg.get('error')}", style="bold yellow")  # ctrl+g, not a fault
    elif state == "failed":
        text.append(f" ✗ failed: {msg.get('error') or ''}", style="bold red")
    if msg.get("usage"):  # an agent's reply: what its run cost (set when the run ends)
        text.append(f" · {run_cost(msg['usage'])}", style="dim")
    return text


def body_of(msg: dict[str, Any], live: dict[str, Any] | None) -> str:
    """The text to show. Only a streaming reply has a tail; a finished one's row is deleted in
    the same commit as its final body."""
    body = str(msg.get("body", ""))
    return merge(body, live) if msg.get("state", "done") == "streaming" else body


def message_prompt(msg: dict[str, Any], me: str = "", live: dict[str, Any] | None = None) -> Text:
    """The whole message as one Text (header, body, cursor while streaming): for export-like
    uses and tests; the log itself draws from its line cache."""
    text = header_text(msg, me)
    text.append("\n")
    text.append(body_of(msg, live))
    if msg.get("state", "done") == "streaming":
        text.append(CURSOR, style="bold yellow")
    return text


def _header_key(msg: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(msg.get(k) for k in ("authorHandle", "authorKind", "decision", "openQuestion", "state", "error")) \
        + (repr(msg.get("usage")),)


@dataclass(eq=False)
class _Block:
    """One message wrapped to the log's width: its header lines and its body's lines (the
    cursor of a streaming reply is drawn after the last one, or on a line of its own)."""

    header_key: tuple[Any, ...]
    header: list[Strip]
    body: IncrementalWrap
    streaming: bool

    @property
    def cursor_line(self) -> bool:
        return self.streaming and cell_len(self.body.lines[-1]) >= self.body.width

    @property
    def height(self) -> int:
        return len(self.header) + len(self.body.lines) + (1 if self.cursor_line else 0)


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
        Binding("home", "cursor_to(0)", show=False),
        Binding("end", "cursor_to(-1)", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"message-log--cursor", "message-log--empty"}
    DEFAULT_CSS = """
    /* The gutter is kept whether or not the scrollbar shows, so the wrap width never changes
       under the messages; nothing is wider than the pane. */
    MessageLog { background: $surface; overflow-x: hidden; scrollbar-gutter: stable; padding: 0 1; }
    MessageLog > .message-log--cursor { background: $block-cursor-blurred-background; }
    MessageLog:focus > .message-log--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    MessageLog > .message-log--empty { color: $text-disabled; }
    """

    class Act(Message):
        """A key of the log: ``action`` on the selected ``message`` (handled by the pane)."""

        def __init__(self, action: str, message: dict[str, Any] | None) -> None:
            super().__init__()
            self.action = action
            self.message = message

    def __init__(self, me: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.me = me
        self.messages: list[dict[str, Any]] = []
        self.live: dict[str, dict[str, Any]] = {}  # messageId -> its live row (streams:forSpace)
        self.highlighted: int | None = None
        self._blocks: list[_Block] = []
        self._by_id: dict[str, _Block] = {}
        self._offsets: list[int] = []  # first line of each block
        self._width = 0

    def on_mount(self) -> None:
        self.border_title = "Discussion"

    # ------------------------------------------------------------------ data in

    @property
    def selected(self) -> dict[str, Any] | None:
        idx = self.highlighted
        return self.messages[idx] if idx is not None and idx < len(self.messages) else None

    @property
    def _following(self) -> bool:
        """The reader is at the newest message: new and growing messages stay in view."""
        return self.highlighted is None or self.highlighted >= len(self.messages) - 1

    def set_messages(self, messages: list[dict[str, Any]]) -> None:
        follow = self._following
        self.messages = list(messages)
        if not messages:
            self.highlighted = None
        elif follow:
            self.highlighted = len(messages) - 1
        else:
            self.highlighted = min(self.highlighted or 0, len(messages) - 1)
        self._layout_blocks(range(len(self.messages)), follow=follow)

    def set_live(self, rows: list[dict[str, Any]] | None) -> None:
        """New tails (every ~30 ms while agents stream): only their replies are re-wrapped, from
        their last line on."""
        old, self.live = self.live, rows_by_message(rows)
        changed = [i for i, m in enumerate(self.messages)
                   if m.get("state") == "streaming" and old.get(str(m["_id"])) != self.live.get(str(m["_id"]))]
        if changed:
            self._layout_blocks(changed, follow=self._following)

    # ------------------------------------------------------------------ layout

    def _header(self, msg: dict[str, Any], width: int) -> list[Strip]:
        console = self.app.console
        return [Strip(list(line.render(console))) for line in header_text(msg, self.me).wrap(console, width)]

    def _block(self, msg: dict[str, Any], width: int) -> _Block:
        """The message's block, updated: a new header only if its marks changed, the body
        re-wrapped only from its last line if it grew."""
        mid = str(msg["_id"])
        key = _header_key(msg)
        block = self._by_id.get(mid)
        if block is None or block.body.width != width:
            block = _Block(key, self._header(msg, width), IncrementalWrap(width), False)
            self._by_id[mid] = block
        elif block.header_key != key:
            block.header_key, block.header = key, self._header(msg, width)
        block.streaming = msg.get("state", "done") == "streaming"
        block.body.set(body_of(msg, self.live.get(mid)))
        return block

    def _layout_blocks(self, indexes: Any, *, follow: bool) -> None:
        width = max(1, self.scrollable_content_region.width)
        if width != self._width:  # a resize: every message is wrapped again, once
            self._width, self._by_id, indexes = width, {}, range(len(self.messages))
        if len(self._blocks) != len(self.messages) or indexes == range(len(self.messages)):
            self._blocks = [self._block(m, width) for m in self.messages]
            live_ids = {str(m["_id"]) for m in self.messages}
            self._by_id = {k: b for k, b in self._by_id.items() if k in live_ids}
            first = 0
        else:
            first = min(indexes, default=len(self.messages))
            for i in indexes:
                self._blocks[i] = self._block(self.messages[i], width)
        # Heights after the first changed block only (streaming replies are at the end).
        offsets = self._offsets[:first]
        total = offsets[-1] + self._blocks[first - 1].height if first else 0
        for b in self._blocks[first:]:
            offsets.append(total)
            total += b.height
        self._offsets = offsets
        self.virtual_size = Size(width, max(total, 1))
        if follow:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._layout_blocks(range(len(self.messages)), follow=self._following)

    def render_lines(self, crop: Region) -> list[Strip]:
        # The last word on where the view is: the pane's height can change after the latest
        # layout (the composer grows, a sidebar opens) before a Resize is handled; a reader at
        # the newest message stays at the end in every frame.
        if max(1, self.scrollable_content_region.width) != self._width:
            self._layout_blocks(range(len(self.messages)), follow=self._following)
        if self._following and self.messages and self.scroll_y != self.max_scroll_y:
            self.scroll_y = self.max_scroll_y
        return super().render_lines(crop)

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        line_no = self.scroll_offset.y + y
        if not self.messages:
            if y == 0:
                style = base + self.get_component_rich_style("message-log--empty") + Style(dim=True)
                return Strip([Segment(EMPTY[:width], style)]).extend_cell_length(width, base)
            return Strip.blank(width, base)
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
        view = self.scrollable_content_region.height
        if top < self.scroll_offset.y:
            self.scroll_to(y=top, animate=False)
        elif top + height > self.scroll_offset.y + view:
            self.scroll_to(y=max(top, top + height - view), animate=False)
        self.refresh()

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

    def on_click(self, event: events.Click) -> None:
        line_no = self.scroll_offset.y + event.y
        i = bisect_right(self._offsets, line_no) - 1
        if 0 <= i < len(self.messages):
            self.highlighted = i
            self.refresh()

    def action_act(self, action: str) -> None:
        self.post_message(self.Act(action, self.selected))

    # ------------------------------------------------------------------ for tests and export

    def message_text(self, index: int) -> str:
        """The plain text the log shows for message ``index`` (header, body, cursor)."""
        msg = self.messages[index]
        return message_prompt(msg, self.me, self.live.get(str(msg["_id"]))).plain
