"""Textual's compositor, drawing each widget only on the rows an update touches.

For a partial update Textual takes the box around every changed region and asks each widget
that overlaps it for *all* of its rows, then keeps the rows that changed. A streaming text that
grows by a row in five columns at once changes five short runs of one row, yet every column,
its border, the grid and the screen are drawn whole: with the rows cached that is still most of
such a frame (bench/variations.py: 3.8 ms of a 4.2 ms frame at 130x32). Here a widget is asked
only for the rows inside the box; the rows it returns, their positions and the cuts between
widgets are exactly what Textual's own path yields for those rows
(tests/tui/test_compositor.py compares the two). A full update is left to Textual.

Only the rows are narrowed, never the columns: Textual cuts a row at widget edges, and a
render that started between two cuts would be split at the wrong places.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual._compositor import Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip

__all__ = ["RowCroppedCompositor", "use_row_cropping"]


class RowCroppedCompositor(Compositor):
    def _get_renders(self, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
        if crop is None or crop == self.size.region:
            yield from super()._get_renders(crop)
            return
        top, height = crop.y, crop.height
        overlaps = crop.overlaps
        for widget, (region, clip) in self.visible_widgets.items():
            if not overlaps(clip):
                continue
            clip = clip.intersection(Region(clip.x, top, clip.width, height))
            x, y, width, rows = region.intersection(clip)
            if width and rows:
                yield region, clip, widget.render_lines(Region(x - region.x, y - region.y, width, rows))


def use_row_cropping(screen: Screen[Any]) -> None:
    """Give ``screen`` the row-cropping compositor (its state is kept: only the class changes).
    A compositor of another kind (a later Textual, a subclass) is left alone."""
    if type(screen._compositor) is Compositor:
        screen._compositor.__class__ = RowCroppedCompositor
