"""A message of the discussion log as text: its header (who, marks, cost), its body (with a
streaming reply's live tail) and, wrapped to the log's width, its :class:`Block` of lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from collab.backend_client.space import merge
from collab.widgets.usage import run_cost
from collab.widgets.wrap import IncrementalWrap

__all__ = ["CURSOR", "CURSOR_STYLE", "Block", "body_of", "header_key", "header_text", "message_prompt", "note_of"]

CURSOR = "▌"  # no blink: terminals differ, snapshots flake
CURSOR_STYLE = Style(color="yellow", bold=True)


def header_text(msg: dict[str, Any], me: str = "", note: str | None = None) -> Text:
    """Who wrote it and its marks: ``@quinn agent ✔ decision … replying``. A streaming reply's
    ``note`` (from its live row: "waiting for the provider ...") replaces "replying"."""
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
        text.append(f" … {note or 'replying'}", style="italic yellow")
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
    text = header_text(msg, me, note_of(msg, live))
    text.append("\n")
    text.append(body_of(msg, live))
    if msg.get("state", "done") == "streaming":
        text.append(CURSOR, style="bold yellow")
    return text


def note_of(msg: dict[str, Any], live: dict[str, Any] | None) -> str | None:
    return (live or {}).get("note") if msg.get("state", "done") == "streaming" else None


def header_key(msg: dict[str, Any], note: str | None) -> tuple[Any, ...]:
    return (*(msg.get(k) for k in ("authorHandle", "authorKind", "decision", "openQuestion", "state", "error")),
            repr(msg.get("usage")), note)


@dataclass(eq=False)
class Block:
    """One message wrapped to the log's width: its header lines and its body's lines (the
    cursor of a streaming reply is drawn after the last one, or on a line of its own)."""

    header_key: tuple[Any, ...]
    header: list[Strip]
    body: IncrementalWrap
    streaming: bool
    mid: str = ""  # the message's id

    @property
    def cursor_line(self) -> bool:
        return self.streaming and cell_len(self.body.lines[-1]) >= self.body.width

    @property
    def height(self) -> int:
        return len(self.header) + len(self.body.lines) + (1 if self.cursor_line else 0)
