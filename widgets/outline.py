"""The discussion sidebar: decisions and open questions of the space (``messages:outline``),
shown beside the log on ``discussion.toggle_sidebar``. Each entry is one line (the first line
of the message, clipped by the pane), newest last, so the list reads like the thread."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static


def outline_text(outline: dict[str, Any] | None) -> Text:
    outline = outline or {}
    text = Text(no_wrap=True, overflow="ellipsis")
    for title, key, mark, style in (("Decisions", "decisions", "✔", "bold cyan"),
                                     ("Open questions", "openQuestions", "?", "bold yellow")):
        rows = list(outline.get(key) or [])
        text.append(f"{title} ({len(rows)})\n", style=style)
        if not rows:
            text.append("  none yet\n", style="dim")
        for msg in rows:
            first = str(msg.get("body", "")).strip().splitlines()[:1]
            text.append(f"{mark} ", style=style)
            text.append(f"{first[0] if first else ''}\n")
    text.rstrip()
    return text


class OutlinePanel(VerticalScroll):
    def compose(self) -> Any:
        yield Static(Text("…", style="dim"), id="outline-body")

    def on_mount(self) -> None:
        self.border_title = "Outline"

    def set_outline(self, outline: dict[str, Any] | None) -> None:
        self.query_one("#outline-body", Static).update(outline_text(outline))
