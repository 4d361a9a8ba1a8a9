"""The rounds of an artifact's variations, newest first, to open one (round browser)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option


def round_label(rnd: dict[str, Any]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"round {rnd['number']:g}", style="bold")
    text.append(f"  {rnd['n']:g} by @{rnd.get('createdByHandle', '?')}", style="dim")
    counts = rnd.get("counts") or {}
    text.append("  " + " ".join(f"{n} {s}" for s, n in counts.items()), style="dim")
    if rnd.get("stars"):
        text.append(f"  ★{rnd['stars']}", style="yellow")
    if rnd.get("picked"):
        text.append(f"  ✔v{rnd['picked']['version']:g}", style="green")
    text.append(f"\n  {rnd['instruction']}" + (f" (note: {rnd['note']})" if rnd.get("note") else ""), style="italic")
    return text


class RoundsDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, rounds: list[dict[str, Any]], current: str | None) -> None:
        super().__init__()
        self.rounds = rounds
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("Rounds (newest first)", style="bold"))
            yield OptionList(*[Option(round_label(r), id=str(r["_id"])) for r in self.rounds], id="rounds")
            yield Static(Text("enter: open   escape: cancel", style="dim"))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [str(r["_id"]) for r in self.rounds]
        if self.current in ids:
            options.highlighted = ids.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
