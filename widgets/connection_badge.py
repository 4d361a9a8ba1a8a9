"""The connection badge: live / connecting / reconnecting in Ns / offline / auth failed.

While reconnecting the client keeps every last value on screen; the badge is what says they
may be stale. A 1 s timer runs only while a countdown is shown, so an idle live app has none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.timer import Timer
from textual.widgets import Static

from collab.backend_client import ConnectionState, ConnectionStatus
from collab.backend_client.space import SpaceSession
from collab.widgets.timefmt import until


def badge_text(status: ConnectionStatus | None, now_s: float) -> Text:
    if status is None or status.state is ConnectionState.CONNECTING:
        return Text(" ◌ connecting ", style="bold black on yellow")
    if status.state is ConnectionState.LIVE:
        return Text(" ● live ", style="bold black on green")
    if status.state is ConnectionState.RECONNECTING:
        if status.next_retry_at:
            return Text(f" ◌ reconnecting in {until(status.next_retry_at, now_s)}s ", style="bold black on yellow")
        return Text(" ◌ reconnecting ", style="bold black on yellow")
    if status.state is ConnectionState.AUTH_FAILED:
        return Text(" ✗ sign-in refused ", style="bold white on red")
    return Text(" ✗ offline ", style="bold white on red")


class ConnectionBadge(Static):
    """Follows the session's connection state by itself (``session=None``: set by hand)."""

    def __init__(self, clock: Callable[[], float], session: SpaceSession | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.session = session
        self.status: ConnectionStatus | None = None
        self._timer: Timer | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def set_status(self, status: ConnectionStatus) -> None:
        self.status = status
        self._draw()
        counting = status.state is ConnectionState.RECONNECTING and status.next_retry_at is not None
        if counting and self._timer is None:
            self._timer = self.set_interval(1, self._draw)
        elif not counting and self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_mount(self) -> None:
        if self.session is not None:
            self._unsubscribe = self.session.on_connection_change(lambda st: self.call_next(self.set_status, st))
            self.set_status(self.session.connection)
        self._draw()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _draw(self) -> None:
        self.update(badge_text(self.status, self.clock()))

    @property
    def live(self) -> bool:
        return self.status is not None and self.status.state is ConnectionState.LIVE
