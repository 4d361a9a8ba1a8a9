"""The discussion log: messages of the space, live, including agents' replies while they
stream (``state: streaming``, body growing). Decisions are marked. Only changed messages are
re-rendered, so a reply streaming at ~30 ms does not rebuild the whole log."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from collab.widgets.keys import binding


def message_prompt(msg: dict[str, Any], me: str = "") -> Text:
    kind = msg.get("authorKind", "human")
    handle = str(msg.get("authorHandle", "?"))
    text = Text()
    text.append("you" if handle == me else f"@{handle}",
                style="bold magenta" if kind == "agent" else "bold green")
    if kind == "agent":
        text.append(" agent", style="magenta")
    if msg.get("decision"):
        text.append(" ✔ decision", style="bold cyan")
    if msg.get("openQuestion"):
        text.append(" ? open", style="bold yellow")
    state = msg.get("state", "done")
    if state == "streaming":
        text.append(" … replying", style="italic yellow")
    elif state == "failed":
        text.append(f" ✗ failed: {msg.get('error') or ''}", style="bold red")
    text.append("\n")
    body = str(msg.get("body", ""))
    text.append(body)
    if state == "streaming":
        text.append("▌", style="bold yellow")  # no blink: terminals differ, snapshots flake
    return text


class MessageLog(OptionList):
    BINDINGS = [
        binding("discussion.mark_decision", "screen.mark_decision", description="Decision"),
        binding("discussion.reply", "screen.reply", description="Reply"),
        binding("discussion.copy", "screen.copy_message", show=False),
        binding("discussion.export", "screen.export_discussion", show=False),
    ]
    def __init__(self, me: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.me = me
        self.messages: list[dict[str, Any]] = []
        self.extra: dict[str, str] = {}  # messageId -> live text from a fast stream

    def on_mount(self) -> None:
        self.border_title = "Discussion"

    @property
    def selected(self) -> dict[str, Any] | None:
        idx = self.highlighted
        if idx is None or idx >= len(self.messages):
            return None
        return self.messages[idx]

    def set_messages(self, messages: list[dict[str, Any]]) -> None:
        old = self.messages
        at_end = self.highlighted is None or self.highlighted >= len(old) - 1
        same_ids = [m["_id"] for m in old] == [m["_id"] for m in messages]
        self.messages = list(messages)
        if not messages:
            self.clear_options()
            self.add_option(Option(Text("No messages yet. Write below; @agent asks an agent.", style="dim"),
                                   disabled=True))
            return
        if same_ids:
            for i, (a, b) in enumerate(zip(old, messages)):
                if a != b:
                    self.replace_option_prompt_at_index(i, message_prompt(b, self.me))
            return
        keep = self.highlighted
        self.clear_options()
        self.add_options([Option(message_prompt(m, self.me), id=str(m["_id"])) for m in messages])
        if at_end or keep is None:
            self.highlighted = len(messages) - 1
            self.scroll_end(animate=False)
        else:
            self.highlighted = min(keep, len(messages) - 1)
