"""Diffs on screen: a unified diff (history, narrow terminals) or two columns side by side
(wide terminals), from the facade's diff data."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from collab.backend_client.space import DiffLine, diff_lines, side_by_side
from collab.widgets.keys import binding

DIFF_STYLE = {"add": "green", "del": "red", "hunk": "cyan", "head": "bold", "same": ""}
SIDE_BY_SIDE_MIN = 100  # columns: below this a unified diff reads better


def diff_text(a: str, b: str, label_a: str, label_b: str) -> Text:
    """A unified diff, coloured."""
    lines = diff_lines(a, b, label_a, label_b)
    if not lines:
        return Text("(no differences)", style="dim")
    out = Text()
    for line in lines:
        style = ("green" if line.text.startswith("+") else "red") if line.kind == "head" else DIFF_STYLE[line.kind]
        out.append(line.text + "\n", style=style)
    return out


def _cell(line: DiffLine | None) -> Text:
    if line is None:
        return Text("")
    return Text(line.text, style={"add": "green", "del": "red"}.get(line.kind, ""))


def side_by_side_table(a: str, b: str, label_a: str, label_b: str) -> Table | Text:
    rows = side_by_side(a, b)
    if all(left is not None and right is not None and left.kind == "same" for left, right in rows):
        return Text("(no differences)", style="dim")
    table = Table(show_header=True, header_style="bold", box=None, expand=True, pad_edge=False)
    table.add_column(label_a, ratio=1, overflow="fold")
    table.add_column(label_b, ratio=1, overflow="fold")
    for left, right in rows:
        table.add_row(_cell(left), _cell(right))
    return table


class DiffScreen(Screen[None]):
    """``a`` -> ``b``: side by side when the terminal is wide, unified when it is narrow."""

    BINDINGS = [binding("app.back", "back", description="Back")]

    def __init__(self, title: str, a: str, b: str, label_a: str, label_b: str) -> None:
        super().__init__()
        self.title_text, self.a, self.b, self.label_a, self.label_b = title, a, b, label_a, label_b

    def compose(self) -> ComposeResult:
        yield Static(Text(f" {self.title_text}", style="bold"), id="diff-title")
        with VerticalScroll(id="diff-view"):
            yield Static(id="diff-body")
        yield Footer()

    def on_mount(self) -> None:
        self._draw()
        self.query_one("#diff-view").focus()

    def on_resize(self) -> None:
        self._draw()

    @property
    def side_by_side(self) -> bool:
        return self.size.width >= SIDE_BY_SIDE_MIN

    def _draw(self) -> None:
        body = (side_by_side_table(self.a, self.b, self.label_a, self.label_b) if self.side_by_side
                else diff_text(self.a, self.b, self.label_a, self.label_b))
        self.query_one("#diff-body", Static).update(body)

    def action_back(self) -> None:
        self.dismiss(None)
