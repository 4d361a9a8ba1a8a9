"""The composer: a message of one or more lines. ``enter`` sends, ``ctrl+j`` / ``alt+enter``
add a line (``shift+enter`` and ``ctrl+enter`` do not reach apps through most terminals and
tmux). Completion of ``@handles`` (members, ``@all``) and ``#artifact`` slugs shows as an inline
suggestion after the cursor, accepted with tab or right arrow. It grows to 4 lines, then
scrolls."""

from __future__ import annotations

import re
from typing import Any

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from collab.widgets.keys import binding

_LAST_WORD = re.compile(r"(?:^|(?<=\s))([@#])([A-Za-z0-9_.-]*)$")


def complete(value: str, handles: list[str], slugs: list[str]) -> str | None:
    """The whole value with the ``@handle`` / ``#slug`` being typed at its end completed."""
    m = _LAST_WORD.search(value)
    if not m:
        return None
    sigil, prefix = m.group(1), m.group(2).lower()
    pool = ["all", *handles] if sigil == "@" else slugs
    for cand in sorted(pool, key=lambda s: (len(s), s)):
        if cand.lower().startswith(prefix) and cand.lower() != prefix:
            return value[: m.start(2)] + cand + " "
    return None


class Composer(TextArea):
    BINDINGS = [
        # Priority: a TextArea inserts a line break on enter before bindings are looked at.
        binding("discussion.send", "submit", description="Send", priority=True),
        binding("discussion.newline", "newline", description="New line", priority=True, show=False),
        Binding("tab", "accept_suggestion", "Complete", show=False),
    ]

    class Submitted(Message):
        def __init__(self, composer: Composer, value: str) -> None:
            super().__init__()
            self.composer = composer
            self.value = value

        @property
        def control(self) -> Composer:
            return self.composer

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(placeholder="Message… (@agent asks, #artifact refers, ^j new line)", soft_wrap=True,
                         show_line_numbers=False, compact=True, tab_behavior="focus", **kwargs)
        self.handles: list[str] = []
        self.slugs: list[str] = []

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def set_completions(self, handles: list[str], slugs: list[str]) -> None:
        self.handles = handles
        self.slugs = slugs
        self.update_suggestion()

    def update_suggestion(self) -> None:
        # Only at the very end: a suggestion in the middle of the text would hide what follows.
        if self.cursor_location != self.document.end:
            self.suggestion = ""
            return
        done = complete(self.text, self.handles, self.slugs)
        self.suggestion = done[len(self.text):] if done else ""

    # Both run from priority bindings, i.e. in the app's key loop, while keys typed just before
    # them in the same burst may still wait in this widget's queue: queue the work behind them
    # (call_later posts to this widget's queue), so "abc<enter>" sends "abc", not "".
    def action_submit(self) -> None:
        self.call_later(lambda: self.post_message(self.Submitted(self, self.text)))

    def action_newline(self) -> None:
        self.call_later(self.insert, "\n")

    def action_accept_suggestion(self) -> None:
        if self.suggestion:
            self.insert(self.suggestion)
        else:
            self.screen.focus_next()
