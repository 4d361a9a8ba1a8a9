"""Small modal dialogs: a text prompt, a yes/no question, a lock conflict (wait in the queue?),
a pipeline holding the artifact, the pipeline flows to start one, a message."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from collab.backend_client.space import LockConflict, SpaceSession, pipeline_flows
from collab.widgets.timefmt import ago


class Prompt(ModalScreen[str | None]):
    """One line of text; enter answers, escape cancels (returns None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "", *, allow_empty: bool = False) -> None:
        """``allow_empty``: enter on an empty line answers "" (escape still answers None)."""
        super().__init__()
        self.question = question
        self.initial = value
        self.placeholder = placeholder
        self.allow_empty = allow_empty

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question)  # wraps: a question longer than the dialog stays whole
            yield Input(value=self.initial, placeholder=self.placeholder)
            yield Static(Text("enter: ok   escape: cancel", style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or ("" if self.allow_empty else None))

    def action_cancel(self) -> None:
        self.dismiss(None)


class LockConflictDialog(ModalScreen[bool]):
    """Says who holds the lock (human or agent) and since when; w waits in the queue."""

    BINDINGS = [Binding("w", "wait", "Wait in queue"), Binding("escape", "cancel", "Cancel"),
                Binding("enter", "wait", "Wait", show=False)]

    def __init__(self, title: str, conflict: LockConflict, now_s: float) -> None:
        super().__init__()
        self.art_title = title
        self.conflict = conflict
        self.now_s = now_s

    def compose(self) -> ComposeResult:
        c = self.conflict
        who = Text()
        who.append(f"{self.art_title}", style="bold")
        who.append(" is being edited by ")
        who.append(f"@{c.handle}", style="bold magenta" if c.kind == "agent" else "bold yellow")
        who.append(f" ({'an agent' if c.kind == 'agent' else 'a human'})")
        who.append(f" since {ago(c.since_ms, self.now_s)} ago.")
        if c.queue_length:
            who.append(f"\n{c.queue_length} already waiting.")
        with Vertical(classes="dialog"):
            yield Static(who)
            yield Static(Text("w: wait in the queue (you will be told when it is yours)   escape: cancel",
                              style="dim"))

    def action_wait(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class PipelineHoldsDialog(ModalScreen[bool]):
    """A pipeline holds the artifact: which stage is where, who can cancel; p opens it."""

    BINDINGS = [Binding("p", "open", "Open the pipeline"), Binding("escape", "cancel", "Close"),
                Binding("enter", "open", "Open", show=False)]

    def __init__(self, conflict: LockConflict) -> None:
        super().__init__()
        self.conflict = conflict

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.conflict.message or "A pipeline holds this artifact."))
            yield Static(Text("p: open the pipeline   escape: close", style="dim"))

    def action_open(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class MessageDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, body: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"))
            yield Static(self.body)
            yield Static(Text("escape: close", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)


class PipelineFlowPicker(ModalScreen[str | None]):
    """Pick a pipeline flow of the config (``view = "pipeline"``) to start on the artifact."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, session: SpaceSession, title: str) -> None:
        super().__init__()
        self.flows = pipeline_flows(session.config)
        self.art_title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"Send {self.art_title} through a pipeline:", style="bold"))
            options = [Option(Text.assemble((f.title, "bold"), "  ", (" -> ".join(s.name for s in f.stages), "cyan"),
                                            ("\n" + f.description if f.description else "", "dim")), id=name)
                       for name, f in self.flows.items()]
            yield OptionList(*options, id="flow-list")
            yield Static(Text("enter: start   escape: cancel", style="dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
class Confirm(ModalScreen[bool]):
    """A yes/no question: y or enter says yes, n or escape no."""

    BINDINGS = [Binding("y,enter", "yes", "Yes"), Binding("n,escape", "no", "No")]
    HINT = "y: yes   n: no"

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question, style="bold"))
            if self.detail:
                yield Static(self.detail)
            yield Static(Text(self.HINT, style="dim"))

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class ConfirmDelete(Confirm, inherit_bindings=False):
    """A yes that cannot be undone: only ``y`` says it; enter does nothing, so a key pressed
    in a hurry never deletes; ``n`` or escape keeps it."""

    BINDINGS = [Binding("y", "yes", "Delete"), Binding("n,escape", "no", "Keep")]
    HINT = "y: delete   n / escape: keep it"
