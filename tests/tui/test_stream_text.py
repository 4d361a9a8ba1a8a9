"""StreamText draws what Textual would draw, but only what changed: a growing paragraph repaints
its last rows, a row that scrolled comes back as the same strip, and the scrollbar hidden while
the text follows its end is right again when the reader scrolls away."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget

from collab.widgets.stream_text import StreamText

pytestmark = pytest.mark.timeout(60)

WORDS = "".join(f"w{i:04d} " for i in range(400))  # one paragraph, no line break


class Host(App[None]):
    CSS = "StreamText { height: 10; width: 30; }"

    def compose(self) -> ComposeResult:
        yield StreamText()


def _styles_cache_render(view: StreamText, crop: Region) -> list[list[Any]]:
    """Textual's own path (the styles cache) for the same rows, for comparison."""
    view._styles_cache.clear()
    return [list(strip) for strip in Widget.render_lines(view, crop)]


async def test_a_growing_paragraph_repaints_only_its_last_rows() -> None:
    async with Host().run_test(size=(40, 14)) as pilot:
        view = pilot.app.query_one(StreamText)
        view.set_text(WORDS[:120], streaming=True)  # 4 full rows of 5 words (+ the open one)
        await pilot.pause()
        rows_before = view.row_count
        assert view.scroll_offset.y == 0 and rows_before < view.size.height
        view._repaint_regions.clear()
        view.set_text(WORDS[:132], streaming=True)  # two more words: the open row changes
        dirty = list(view._repaint_regions)
        assert dirty, "nothing was marked for repaint"
        assert min(region.y for region in dirty) >= rows_before - 1, dirty  # not the whole text
        await pilot.pause()
        assert view.text == WORDS[:132]


async def test_the_plain_path_draws_what_the_styles_cache_draws() -> None:
    async with Host().run_test(size=(40, 14)) as pilot:
        view = pilot.app.query_one(StreamText)
        crop = Region(0, 0, 30, 10)

        async def same() -> None:
            await pilot.pause()
            ours = [list(strip) for strip in view.render_lines(crop)]
            assert ours == _styles_cache_render(view, crop)
            part = Region(3, 2, 20, 5)  # a crop inside the widget
            assert [list(s) for s in view.render_lines(part)] == _styles_cache_render(view, part)

        view.placeholder = "No output."
        await same()  # the placeholder
        view.set_text(WORDS[:600], streaming=True)
        await same()  # following a streaming text (scrolled, cursor on the last row)
        view.set_text(WORDS[:600] + "\nend", streaming=False)
        view.focus()
        view.show_cursor_line = True
        view.move_to_line(0)
        view.toggle_selection()
        view.move_to_line(1)
        await same()  # compose mode: the cursor line and a selection, focused


async def test_a_scrolled_row_is_drawn_from_the_same_strip() -> None:
    async with Host().run_test(size=(40, 14)) as pilot:
        view = pilot.app.query_one(StreamText)
        view.set_text(WORDS[:900], streaming=True)
        await pilot.pause()
        top = int(view.scroll_offset.y)
        before = view.render_lines(Region(0, 1, 30, 1))[0]  # virtual row top + 1
        view.set_text(WORDS[:1100], streaming=True)  # scrolls by several rows
        await pilot.pause()
        assert int(view.scroll_offset.y) > top + 1
        view.scroll_rows_to(top)  # the reader goes back: the row is drawn from the same strip
        await pilot.pause()
        assert view.render_lines(Region(0, 1, 30, 1))[0] is before


async def test_the_scrollbar_is_right_when_the_reader_leaves_the_end() -> None:
    async with Host().run_test(size=(40, 14)) as pilot:
        view = pilot.app.query_one(StreamText)
        view.set_text(WORDS[:300], streaming=True)
        await pilot.pause()
        assert view.has_class("-following")
        for end in range(300, 2400, 60):  # streams on, many rows, the scrollbar hidden
            view.set_text(WORDS[:end], streaming=True)
            await pilot.pause()
        assert view.has_class("-following")
        await pilot.press("up")  # the reader scrolls up a row: no longer following
        await pilot.pause()
        assert not view.has_class("-following")
        bar = view.vertical_scrollbar
        assert bar.window_virtual_size == view.virtual_size.height >= view.row_count
        assert bar.position == view.scroll_y == view.max_scroll_y - 1


async def test_a_followed_stream_jump_scrolls_and_its_end_stays_on_screen() -> None:
    async with Host().run_test(size=(40, 14)) as pilot:
        view = pilot.app.query_one(StreamText)
        height = view.scrollable_content_region.height
        tops: list[int] = []
        for end in range(24, 2400, 24):  # a row (four words) at a time
            view.set_text(WORDS[:end], streaming=True)
            await pilot.pause()
            top = int(view.scroll_offset.y)
            last = view.row_count - 1
            assert top <= last < top + height, (end, top, last)  # the end is on screen
            tops.append(top)
        moves = sum(1 for a, b in zip(tops, tops[1:]) if a != b)
        grown = view.row_count - height
        assert 0 < moves <= grown // (height // 3) + 1, (moves, grown)  # jumps, not one per row
        view.set_text(WORDS[:2400], streaming=False)  # finished: no space left below the end
        await pilot.pause()
        assert view.virtual_size.height == view.row_count
        assert int(view.scroll_offset.y) == view.row_count - height
