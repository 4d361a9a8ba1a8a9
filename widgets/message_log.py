"""The discussion log: messages of the space, live, including agents' replies while they
stream. Two inputs: ``messages:list`` (durable bodies, ~250 ms steps) and ``streams:forSpace``
(the not-yet-persisted tails, ~30 ms); a streaming reply shows ``merge(body, tail)`` with a
cursor. Decisions are marked. Only changed messages are re-rendered, so replies streaming at
~30 ms do not rebuild the whole log."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from collab.backend_client.space import merge, rows_by_message
from collab.widgets.keys import binding


def message_prompt(msg: dict[str, Any], me: str = "", live: dict[str, Any] | None = None) -> Text:
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
    elif state == "failed" and str(msg.get("error") or "").startswith("cancelled"):
        text.append(f" ■ stopped: {msg.get('error')}", style="bold yellow")  # ctrl+g, not a fault
    elif state == "failed":
        text.append(f" ✗ failed: {msg.get('error') or ''}", style="bold red")
    text.append("\n")
    body = str(msg.get("body", ""))
    # Only a streaming reply has a tail; a finished one's row is deleted in the same commit.
    text.append(merge(body, live) if state == "streaming" else body)
    if state == "streaming":
        text.append("▌", style="bold yellow")  # no blink: terminals differ, snapshots flake
    return text


class MessageLog(OptionList):
    BINDINGS = [
        binding("discussion.mark_decision", "act('mark_decision')", description="Decision"),
        binding("discussion.reply", "act('reply')", description="Reply"),
        binding("discussion.copy", "act('copy')", show=False),
        binding("discussion.export", "act('export')", show=False),
        binding("discussion.toggle_sidebar", "act('toggle_sidebar')", description="Outline"),
    ]

    class Act(Message):
        """A key of the log: ``action`` on the selected ``message`` (handled by the pane)."""

        def __init__(self, action: str, message: dict[str, Any] | None) -> None:
            super().__init__()
            self.action = action
            self.message = message

    def action_act(self, action: str) -> None:
        self.post_message(self.Act(action, self.selected))

    def __init__(self, me: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.me = me
        self.messages: list[dict[str, Any]] = []
        self.live: dict[str, dict[str, Any]] = {}  # messageId -> its live row (streams:forSpace)

    def on_mount(self) -> None:
        self.border_title = "Discussion"

    @property
    def selected(self) -> dict[str, Any] | None:
        idx = self.highlighted
        if idx is None or idx >= len(self.messages):
            return None
        return self.messages[idx]

    def _prompt(self, msg: dict[str, Any]) -> Text:
        return message_prompt(msg, self.me, self.live.get(str(msg["_id"])))

    def set_live(self, rows: list[dict[str, Any]] | None) -> None:
        """New tails (every ~30 ms while agents stream): re-render the messages whose row changed."""
        old, self.live = self.live, rows_by_message(rows)
        changed = False
        for i, msg in enumerate(self.messages):
            mid = str(msg["_id"])
            if old.get(mid) != self.live.get(mid) and i < self.option_count:
                self.replace_option_prompt_at_index(i, self._prompt(msg))
                changed = True
        if changed:
            self._follow()

    def _follow(self) -> None:
        # A growing reply at the bottom stays in view while the reader is at the end.
        if self.highlighted is not None and self.highlighted >= len(self.messages) - 1:
            self.scroll_end(animate=False)

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
            changed = [i for i, (a, b) in enumerate(zip(old, messages)) if a != b]
            for i in changed:
                self.replace_option_prompt_at_index(i, self._prompt(messages[i]))
            if changed:
                self._follow()
            return
        keep = self.highlighted
        self.clear_options()
        self.add_options([Option(self._prompt(m), id=str(m["_id"])) for m in messages])
        if at_end or keep is None:
            self.highlighted = len(messages) - 1
            self.scroll_end(animate=False)
        else:
            self.highlighted = min(keep, len(messages) - 1)
