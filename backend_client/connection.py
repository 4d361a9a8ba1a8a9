"""Connection state, as the status bar and agents see it, and the reconnect backoff.

State machine (driven by ``ConvexClient._run``)::

    CONNECTING --open--> LIVE --socket lost / server silent / protocol error--> RECONNECTING
        |                  ^                                                       |
        |                  +-------------------------open--------------------------+
        +--fail--> RECONNECTING (next_retry_at = when the next attempt starts)
    any --AuthError and no fresh token--> AUTH_FAILED --set_auth()--> RECONNECTING
    any --close()--> CLOSED (final)

LIVE means the socket is open and the session (Connect, Authenticate, query set, replayed
mutations) has been handed to it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ConnectionState", "ConnectionStatus", "ReconnectPolicy", "Backoff", "StateCell"]

log = logging.getLogger(__name__)


class ConnectionState(str, enum.Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth_failed"
    CLOSED = "closed"


@dataclass(slots=True, frozen=True)
class ConnectionStatus:
    state: ConnectionState
    # Wall-clock (time.time()) of the next connection attempt while waiting in RECONNECTING.
    next_retry_at: float | None = None
    # Consecutive failed attempts since the last good connection.
    attempt: int = 0
    # Why the last socket closed or the last attempt failed (or why auth failed).
    reason: str | None = None
    # Sockets opened so far in this client's life.
    connection_count: int = 0

    @property
    def live(self) -> bool:
        return self.state is ConnectionState.LIVE


@dataclass(slots=True, frozen=True)
class ReconnectPolicy:
    """Backoff like the JS client: a base delay (short when *we* closed the socket, longer when
    the server went away), doubled per consecutive failure, capped, with +-50 % jitter so a
    restarted server is not hit by every client at once.

    Two caps. ``max_s`` applies when a server that is up refused or dropped the session
    (overloaded, rate limited, a FatalError): backing far off is what relieves it. While the
    server cannot be reached at all (connection refused, unreachable, timed out) an attempt
    costs it nothing, and what matters is noticing the moment it listens again, so the delay
    stops growing at ``max_unreachable_s``. With the JS-like single cap of 16 s, clients came
    back p95 8.3 s after a 5 s outage (issue 14; ``bench/reconnect.py`` measures both). The
    jitter still spreads the returning clients over +-50 % of the delay."""

    initial_client_s: float = 0.1
    initial_server_s: float = 1.0
    max_s: float = 16.0
    max_unreachable_s: float = 1.0
    jitter: float = 0.5
    server_inactivity_s: float = 30.0  # the server Pings at least every 15 s
    open_timeout_s: float = 10.0


class Backoff:
    def __init__(self, policy: ReconnectPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self, client_initiated: bool, *, unreachable: bool = False) -> float:
        """The wait before the next attempt. ``unreachable``: the last attempt found no server
        listening (see ReconnectPolicy)."""
        p = self.policy
        base = p.initial_client_s if client_initiated else p.initial_server_s
        cap = min(p.max_s, p.max_unreachable_s) if unreachable else p.max_s
        delay = min(cap, base * (2 ** min(self.failures, 32)))
        self.failures += 1
        return max(0.0, delay * (1 + self._rng.uniform(-p.jitter, p.jitter)))

    def reset(self) -> None:
        self.failures = 0


class StateCell:
    """An observable ConnectionStatus: read ``.status``, ``on_change(cb) -> unsubscribe``,
    ``await wait_for(state)``."""

    def __init__(self) -> None:
        self.status = ConnectionStatus(ConnectionState.CONNECTING)
        self._callbacks: list[Callable[[ConnectionStatus], object]] = []
        self._changed = asyncio.Condition()  # created lazily-safe: only awaited inside the loop

    def set(self, status: ConnectionStatus) -> None:
        if status == self.status:
            return
        if self.status.state is ConnectionState.CLOSED:
            return  # final
        self.status = status
        for cb in list(self._callbacks):
            try:
                cb(status)
            except Exception:
                log.exception("connection state callback raised")
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def on_change(self, cb: Callable[[ConnectionStatus], object]) -> Callable[[], None]:
        self._callbacks.append(cb)

        def unsubscribe() -> None:
            try:
                self._callbacks.remove(cb)
            except ValueError:
                pass

        return unsubscribe

    async def wait_for(self, *states: ConnectionState, timeout: float | None = None) -> ConnectionStatus:
        async def _wait() -> ConnectionStatus:
            async with self._changed:
                await self._changed.wait_for(lambda: self.status.state in states)
                return self.status

        return await asyncio.wait_for(_wait(), timeout)


def now() -> float:
    return time.time()
