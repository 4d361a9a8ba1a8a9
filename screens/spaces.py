"""The space picker (``app.switch_space``): the user's spaces (``spaces:list``, with their
role), the current one marked; enter opens the highlighted one. Where the backend lets this
user create spaces on the fly (the embedded backend), the last entry makes a new one."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

NEW = "\0new"  # the option id of "New space…" (no space name can hold a NUL)


class SpacePicker(ModalScreen[str | None]):
    """Returns the name of the space to open, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, spaces: list[dict[str, Any]], current: str, *, allow_new: bool) -> None:
        super().__init__()
        self.spaces = spaces
        self.current = current  # the id of the space on screen
        self.allow_new = allow_new

    def compose(self) -> ComposeResult:
        options = []
        for s in self.spaces:
            here = s["_id"] == self.current
            label = Text.assemble((str(s["name"]), "bold" if here else ""), (f"  {s.get('role', '')}", "dim"),
                                  ("  (open)" if here else "", "dim"))
            options.append(Option(label, id=str(s["name"]), disabled=here))
        if self.allow_new:
            options.append(Option(Text("+ New space…", style="italic"), id=NEW))
        with Vertical(classes="dialog", id="space-picker"):
            yield Label(Text("Open a space", style="bold"))
            yield OptionList(*options, id="spaces")
            yield Input(placeholder="name of the new space", id="new-space")
            yield Static(Text("enter: open   escape: cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#new-space", Input).display = False
        spaces = self.query_one(OptionList)
        spaces.focus()
        first = next((i for i, o in enumerate(spaces.options) if not o.disabled), None)
        if first is not None:
            spaces.highlighted = first

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id == NEW:
            name = self.query_one("#new-space", Input)
            name.display = True
            name.focus()
            return
        self.dismiss(event.option.id)

    @on(Input.Submitted)
    def _named(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if name:
            self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
