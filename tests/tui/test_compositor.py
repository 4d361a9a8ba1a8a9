"""The row-cropping compositor (collab.tui.compositor) yields, for every row an update draws,
exactly what Textual's compositor yields: same strips, same cuts, on a screen with borders,
titles, docks, scrolled views and the app's own widgets. And the app's screens use it."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from textual._compositor import Compositor
from textual._context import visible_screen_stack
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.geometry import Region
from textual.widgets import Footer, OptionList, Static, TextArea

from collab.tui.compositor import RowCroppedCompositor, use_row_cropping
from collab.widgets.stream_text import StreamText

from .conftest import seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(60)


class Grid(App[None]):
    CSS = """
    #top { dock: top; height: 1; background: $primary; }
    .col { border: round $accent; width: 1fr; }
    .col > Static { height: 1; }
    OptionList { height: 6; }
    """
    BINDINGS = [("s", "noop", "Star"), ("p", "noop", "Pick")]

    def compose(self) -> ComposeResult:
        yield Static("top bar", id="top")
        with Horizontal():
            for i in range(3):
                with Vertical(classes="col") as col:
                    col.border_title = f"#{i + 1}"
                    yield Static(f"head {i}")
                    yield StreamText()
        yield OptionList(*[f"option {i}" for i in range(30)])
        yield TextArea("some text\nin an editor")
        yield Footer()


def _chops(compositor: Compositor, kind: type[Compositor], crop: Region, rows: set[int]) -> list[dict[int, Any]]:
    compositor.__class__ = kind
    try:
        chops = compositor._render_chops(crop, rows.__contains__)
    finally:
        compositor.__class__ = RowCroppedCompositor
    return [{cut: None if strip is None else list(strip) for cut, strip in line.items()} for line in chops]


class Dialog(ModalScreen[None]):
    """A translucent screen: the grid shows through it (Textual draws the screens below)."""

    CSS = "Dialog { align: center middle; } #box { width: 40; height: 7; border: thick $accent; }"

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static("Pick #2 as v3 of Story?")
            yield StreamText("a dialog's own text")


@pytest.mark.parametrize("modal", [False, True])
async def test_row_cropped_renders_match_textual(modal: bool) -> None:
    app = Grid()
    async with app.run_test(size=(90, 30)) as pilot:
        for i, view in enumerate(app.query(StreamText)):
            view.set_text("".join(f"w{k:04d} " for k in range(150 * (i + 1))), streaming=i != 1)
        app.query_one(OptionList).scroll_to(y=7, animate=False)
        await pilot.pause()
        if modal:
            await app.push_screen(Dialog())
            await pilot.pause()
        screen = app.screen
        use_row_cropping(screen)
        compositor = screen._compositor
        assert type(compositor) is RowCroppedCompositor
        size = screen.size.region
        rng = random.Random(7)
        cases = [[Region(1, 3, 28, 1), Region(61, 3, 28, 1)], [Region(0, 0, 90, 1)], [Region(0, 29, 90, 1)],
                 [Region(31, 5, 5, 20)]]
        for _ in range(40):
            regions = []
            for _ in range(rng.randint(1, 5)):
                x, y = rng.randrange(90), rng.randrange(30)
                regions.append(Region(x, y, rng.randint(1, 90 - x), rng.randint(1, 30 - y)))
            cases.append(regions)
        for regions in cases:
            crop = Region.from_union(regions).intersection(size)
            rows = {y for y, _, _ in compositor._regions_to_spans(regions)}
            visible_screen_stack.set(app._background_screens)  # what Textual sets before a render
            ours = _chops(compositor, RowCroppedCompositor, crop, rows)
            theirs = _chops(compositor, Compositor, crop, rows)
            for y in rows:
                assert ours[y] == theirs[y], (regions, y)


async def test_the_apps_screens_draw_through_it(backend: Any) -> None:
    seeded = await asyncio.to_thread(seed_space, backend)
    app = seeded.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False))
        assert type(app.screen._compositor) is RowCroppedCompositor
        await pilot.press("ctrl+p")  # a screen of Textual's own (the command palette) as well
        await wait_for(pilot, lambda: app.screen is not None and app.screen.id != app.screen_stack[0].id
                       and type(app.screen).__name__ == "CommandPalette")
        assert type(app.screen._compositor) is RowCroppedCompositor
