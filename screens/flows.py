"""The flow picker: every flow of the config (presets and the user's ``[flows.<name>]``) with
its description and view, to run one on an artifact."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from collab.config import Config

VIEW_LABEL = {"discussion": "discussion", "variations": "side by side", "pipeline": "stages"}


def flow_label(name: str, flow: Any) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(str(flow.title), style="bold")
    text.append(f"  {VIEW_LABEL.get(flow.view, flow.view)}", style="cyan")
    if flow.agents:
        text.append("  " + " ".join(f"@{h}" for h in flow.agents), style="magenta")
    text.append(f"\n  {flow.description or name}", style="dim")
    return text


class FlowPicker(ModalScreen[str | None]):
    """Answers the chosen flow's name (None: cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, config: Config, subject: str) -> None:
        super().__init__()
        self.flows = config.visible_flows()
        self.subject = subject

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"Run a flow on {self.subject}", style="bold"))
            yield OptionList(*[Option(flow_label(n, f), id=n) for n, f in self.flows.items()], id="flows")
            yield Static(Text("enter: run   escape: cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
