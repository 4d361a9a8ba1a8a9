"""One variation in the grid: a header line (number, author, temperature, status, tokens, cost,
star, picked) over its text, streaming live."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from collab.widgets.stream_text import StreamText

STATUS = {"queued": ("◌ queued", "dim"), "streaming": ("● writing", "yellow"), "done": ("✓ done", "green"),
          "failed": ("✗ failed", "bold red"), "cancelled": ("■ stopped", "yellow")}


def header_text(row: dict[str, Any]) -> Text:
    """``#2 ★ @dara t0.9 ● writing 120 tok $0.0012 ✔ picked``: what a column's head says."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{row['index']:g}", style="bold")
    if row.get("starred"):
        text.append(" ★", style="bold yellow")
    if row.get("picked"):
        text.append(" ✔picked", style="bold green")
    text.append(f" @{row.get('author') or '?'}", style="magenta" if row.get("authorKind") == "agent" else "green")
    if row.get("composed"):
        text.append(" composed", style="cyan")
    if row.get("temperature") is not None:
        text.append(f" t{row['temperature']:g}", style="dim")
    label, style = STATUS.get(str(row.get("status")), (str(row.get("status")), ""))
    text.append(f" {label}", style=style)
    usage = row.get("usage") or {}
    if usage.get("completionTokens"):
        text.append(f" {usage['completionTokens']}tok", style="dim")
    if row.get("costUsd"):
        text.append(f" ${row['costUsd']:.4f}", style="dim")
    return text


class VariationColumn(Vertical):
    DEFAULT_CSS = """
    VariationColumn { width: 1fr; height: 1fr; border: round $primary 50%; }
    VariationColumn:focus-within { border: round $accent; }
    VariationColumn > .variation-head { height: 1; }
    VariationColumn > .variation-error { height: auto; max-height: 3; color: $error; }
    VariationColumn > StreamText { height: 1fr; }
    """

    def __init__(self, variation_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variation_id = variation_id
        self.row: dict[str, Any] = {}
        # Built here, not in compose: the screen updates a just-mounted column (its row, live
        # tails, focus) before the column has composed its children.
        self.head = Static(classes="variation-head")
        self.error = Static(classes="variation-error")
        self.text = StreamText()

    def compose(self) -> ComposeResult:
        yield self.head
        yield self.error
        yield self.text

    def show(self, row: dict[str, Any], shown: str) -> None:
        """The variation's row and the text to show (durable content + live tail)."""
        self.row = row
        self.border_title = f"#{row['index']:g}" + (" ★" if row.get("starred") else "")
        self.head.update(header_text(row))
        error = self.error
        error.display = row.get("status") in ("failed", "cancelled") and bool(row.get("error"))
        if error.display:
            error.update(Text(str(row.get("error")), style="red" if row.get("status") == "failed" else "yellow"))
        placeholder = "(queued: waiting for a free worker slot)" if row.get("status") == "queued" else ""
        self.text.placeholder = placeholder
        self.text.set_text(shown, streaming=row.get("status") == "streaming")
