"""A virtual clock for deterministic timing tests: time moves only when the test says so."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class VirtualClock:
    """Implements ``collab.flows.clock.Clock``. ``await advance(dt)`` moves time forward, waking
    every sleeper whose deadline passes, in deadline order, and lets the woken tasks run."""

    def __init__(self, start: float = 0.0, settle_rounds: int = 8) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        # How many loop iterations to yield after each wake-up: enough for a woken task to run
        # a few awaits of already-complete work (the callbacks used in tests).
        self._settle_rounds = settle_rounds

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    async def settle(self) -> None:
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():  # a cancelled sleep
                continue
            self._now = max(self._now, deadline)
            future.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()
