"""Time as the streaming code sees it: injectable, so tests run on virtual time."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Clock(Protocol):
    """A monotonic clock in seconds and a matching sleep."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The running event loop's monotonic clock (the default)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
