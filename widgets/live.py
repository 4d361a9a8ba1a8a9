"""Bind a widget to a LiveQuery: every new value (or error) calls back on the app's loop, and
the subscription ends with the widget. Widgets never poll; the client pushes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widget import Widget

from collab.backend_client import LiveQuery


class LiveBinding:
    """Owns one LiveQuery for a widget; ``rebind`` swaps it (e.g. another artifact selected)."""

    def __init__(self, widget: Widget, on_value: Callable[[Any], None],
                 on_error: Callable[[Exception], None] | None = None) -> None:
        self.widget = widget
        self.on_value = on_value
        self.on_error = on_error
        self.live: LiveQuery[Any] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def bind(self, live: LiveQuery[Any] | None) -> None:
        self.close()
        self.live = live
        if live is None:
            return
        # The client calls back synchronously while applying a Transition; defer to the
        # widget's message loop so one Transition never re-renders inside another callback.
        self._unsubscribe = live.subscribe(
            lambda value: self.widget.call_next(self._deliver),
            lambda err: self.widget.call_next(self._deliver_error, err),
        )
        if not live.loading:
            self._deliver()

    def _deliver(self) -> None:
        live = self.live
        if live is None or live.closed:
            return
        if live.error is not None:
            self._deliver_error(live.error)
            return
        if not live.loading:
            self.on_value(live.value)

    def _deliver_error(self, err: Exception) -> None:
        if self.on_error is not None:
            self.on_error(err)

    def close(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self.live is not None:
            self.live.close()
            self.live = None
