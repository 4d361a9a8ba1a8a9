"""Run the app in the terminal.

Kept light at import (no Textual, no pydantic): ``collab.tui.cli`` calls :func:`pause_gc`
from here before it imports anything heavy."""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collab.tui.bootstrap import LaunchOptions

_gc_paused = False


def pause_gc() -> None:
    """Stop automatic garbage collection for the start-up.

    A cold start creates ~100k long-lived objects (Textual, pydantic's schemas, the client, the
    widgets) and almost no garbage, yet the collector keeps walking them as they pile up:
    ~40 ms of a ~450 ms start on the 2-core machines, for nothing. :func:`resume_gc` turns it
    back on once the space screen is drawn (the app calls it; a timer guarantees it)."""
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def resume_gc() -> None:
    """Undo :func:`pause_gc` (no-op if it was not paused, e.g. in tests): freeze what the
    start-up built, so later collections (while agents stream, every frame allocates) never
    walk those objects again, and collect normally from here on."""
    global _gc_paused
    if not _gc_paused:
        return
    _gc_paused = False
    gc.freeze()
    gc.enable()


def run(options: LaunchOptions) -> int:
    from collab.tui.bootstrap import BootstrapError, load

    # litellm must never load in the TUI process (2 s import); if some import ever pulls it in,
    # at least it must not go to the network for its cost map.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        config = load(options)
    except BootstrapError:
        config = None  # the app loads it again and shows the message (file, line) with a retry
    from collab.tui.app import CollabApp

    app = CollabApp(options, config=config)
    try:
        app.run(mouse=config.ui.mouse if config else True)
    finally:
        resume_gc()
    return app.return_code or 0
