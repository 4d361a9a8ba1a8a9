"""The composition tray: the parts picked from several variations, in the order they will be
used (``#4 lines 3-10``, then ``#2 lines 1-2``...), reordered and removed with the keyboard."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from collab.backend_client.space import Part
from collab.widgets.keys import binding


def part_label(part: Part, preview: str) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{part.index} ", style="bold")
    where = f"line {part.start + 1}" if part.end == part.start + 1 else f"lines {part.start + 1}-{part.end}"
    text.append(f"{where} ", style="cyan")
    text.append(preview.strip().splitlines()[0] if preview.strip() else "(blank)", style="dim")
    return text


class ComposeTray(OptionList):
    BINDINGS = [
        binding("variations.part_up", "move(-1)", description="Up"),
        binding("variations.part_down", "move(1)", description="Down"),
        binding("variations.part_remove", "remove", description="Remove"),
    ]
    DEFAULT_CSS = "ComposeTray { height: auto; max-height: 6; border: round $accent; }"
    # Tab reaches the tray only while it shows (compose mode).
    can_focus = True

    class Changed(Message):
        def __init__(self, parts: list[Part]) -> None:
            super().__init__()
            self.parts = parts

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parts: list[Part] = []
        self.previews: list[str] = []

    def on_mount(self) -> None:
        self.border_title = "Compose"
        self._draw()

    def add(self, part: Part, preview: str) -> None:
        self.parts.append(part)
        self.previews.append(preview)
        self._draw(len(self.parts) - 1)

    def clear_parts(self) -> None:
        self.parts, self.previews = [], []
        self._draw()

    def _draw(self, keep: int | None = None) -> None:
        self.clear_options()
        if not self.parts:
            self.add_option(Option(Text("No parts yet: select lines (space) in a column, then a adds them.",
                                        style="dim"), disabled=True))
        else:
            self.add_options([Option(part_label(p, t)) for p, t in zip(self.parts, self.previews)])
            self.highlighted = keep if keep is not None else 0
        self.border_subtitle = f"{len(self.parts)} part{'s' if len(self.parts) != 1 else ''} · c composes"
        self.post_message(self.Changed(list(self.parts)))

    def action_move(self, delta: int) -> None:
        i = self.highlighted
        if i is None or not self.parts or not 0 <= i + delta < len(self.parts):
            return
        j = i + delta
        self.parts[i], self.parts[j] = self.parts[j], self.parts[i]
        self.previews[i], self.previews[j] = self.previews[j], self.previews[i]
        self._draw(j)

    def action_remove(self) -> None:
        i = self.highlighted
        if i is None or not self.parts:
            return
        del self.parts[i]
        del self.previews[i]
        self._draw(min(i, len(self.parts) - 1) if self.parts else None)
