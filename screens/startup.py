"""What shows before the space: a starting screen (the first frame, drawn at once) and an
error screen (dead backend, broken config, ...) that keeps the app running and offers a retry."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static


class StartingScreen(Screen[None]):
    def __init__(self, what: str = "Starting…") -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="centered"):
            yield Static(Text.assemble((" collab ", "bold reverse"), "  ", (self.what, "dim")), id="starting")

    def set_step(self, what: str) -> None:
        self.what = what
        for found in self.query("#starting").results(Static):  # not composed yet: compose uses .what
            found.update(Text.assemble((" collab ", "bold reverse"), "  ", (what, "dim")))


class ErrorScreen(Screen[bool]):
    """Shows what went wrong and how to fix it; r retries (after fixing the file), ctrl+q quits."""

    BINDINGS = [Binding("r", "retry", "Retry"), Binding("q", "app.quit", "Quit")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="error-box"):
            yield Static(Text(self.title_text, style="bold red"))
            yield Static(Text(self.message), id="error-message")
            yield Static(Text("r: retry   q: quit", style="dim"))
        yield Footer()

    def action_retry(self) -> None:
        self.dismiss(True)
