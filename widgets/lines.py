"""Shared by the line-drawn widgets (the discussion log, a streaming text): keeping the
virtual size up to date without a layout of the whole screen on every tick."""

from __future__ import annotations

from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.widget import Widget


def set_virtual_size(view: ScrollView, size: Size) -> None:
    """Set ``view``'s scrollable size. Textual lays the whole screen out again whenever a
    virtual size changes (``virtual_size`` is a layout reactive); a line-drawn widget whose
    width and gutter never depend on its content (``overflow-x: hidden``, ``scrollbar-gutter:
    stable``) only needs its scrollbar updated, so a text growing by a row every few ticks costs
    a row, not a screen."""
    if size == view.virtual_size:
        return
    view.set_reactive(Widget.virtual_size, size)
    if view.styles.scrollbar_visibility == "hidden":
        # Nothing to draw, and a repainted scrollbar that is not on screen makes Textual
        # rebuild its map of every widget on the next frame; the view updates its scrollbar
        # when it shows it again (StreamText._mark_following).
        return
    view._scroll_update(size)  # scrollbar position and length (Textual's own update path)


def refresh_rows(view: ScrollView, first: int, end: int, scroll_before: float) -> None:
    """Draw rows ``first`` to ``end`` (virtual rows) again, or everything if the view scrolled:
    a growing text changes only its last rows, and re-rendering a whole column of text on
    every tick is most of a frame's cost."""
    if view.scroll_offset.y != scroll_before:
        view.refresh()
    elif end > first:
        view.refresh_lines(first, end - first)
