"""Frame-time log for benchmarks: ``COLLAB_FRAME_LOG=<path>`` makes the app append one line
per frame it draws.

A Textual frame is produced by the screen's update timer (``Screen._on_timer_update``: layout
if needed, compositor update, render, write to the driver) or, on resize / screen switch,
by ``Screen._refresh_layout`` directly; both end in ``Screen._compositor_refresh``, which
renders and hands the bytes to the driver (``App._display``). The outermost of these calls is
timed; a line is written only if it drew something. Each line:

    <time.monotonic() at the start> <duration ms> <layout 0/1> <ms of it in the garbage collector>

The cost of the log itself (one buffered line per frame, flushed every 0.5 s) stays outside
the measured interval. Off unless the variable is set: nothing is patched then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

_installed = False


def install(path: str) -> None:
    """Wrap the three Screen methods (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    from textual.screen import Screen

    out: IO[str] = open(path, "a", buffering=1 << 16)  # noqa: SIM115 (lives as long as the process)
    state = {"depth": 0, "drew": False, "layout": False, "flushed": time.monotonic()}
    gc_time = [0.0, 0.0]  # total seconds in collections, start of the running one

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[1] = time.monotonic()
        else:
            gc_time[0] += time.monotonic() - gc_time[1]

    import gc

    gc.callbacks.append(on_gc)

    def timed(name: str) -> None:
        original: Callable[..., Any] = getattr(Screen, name)

        def wrapper(self: Screen[Any], *args: Any, **kwargs: Any) -> Any:
            if name == "_compositor_refresh":
                state["drew"] = True
            elif name == "_refresh_layout":
                state["layout"] = True
            if state["depth"]:
                return original(self, *args, **kwargs)
            state["depth"], state["drew"], state["layout"] = 1, name == "_compositor_refresh", \
                name == "_refresh_layout"
            gc_before = gc_time[0]
            start = time.monotonic()
            try:
                return original(self, *args, **kwargs)
            finally:
                end = time.monotonic()
                state["depth"] = 0
                if state["drew"]:
                    out.write(f"{start:.6f} {(end - start) * 1000:.3f} {int(bool(state['layout']))} "
                              f"{(gc_time[0] - gc_before) * 1000:.3f}\n")
                    if end - float(state["flushed"]) > 0.5:
                        out.flush()
                        state["flushed"] = end

        wrapper.__name__ = original.__name__
        wrapper.__qualname__ = original.__qualname__
        setattr(Screen, name, wrapper)

    for name in ("_on_timer_update", "_refresh_layout", "_compositor_refresh"):
        timed(name)
    import atexit

    atexit.register(out.flush)
