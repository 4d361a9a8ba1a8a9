"""Waiting on live queries in tests: a condition over one or more LiveQuery values, checked
each time one of them changes. The timeout is only the safety net that turns a hang into a
failure; it is not a budget for a quiet machine. With no LiveQuery to follow (a worker's own
state, a server's counters) the condition is polled instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from collab.backend_client import LiveQuery

T = TypeVar("T")


async def until(check: Callable[[], T | None], *lives: LiveQuery[Any], timeout: float = 120.0,
                what: str = "the condition") -> T:
    """Return ``check()`` as soon as it is truthy, re-checking on every change of ``lives``."""
    changed = asyncio.Event()
    unsubscribe = [live.subscribe(lambda _v: changed.set(), lambda _e: changed.set()) for live in lives]

    async def loop() -> T:
        while True:
            changed.clear()
            got = check()
            if got:
                return got
            if lives:
                await changed.wait()
            else:
                await asyncio.sleep(0.05)

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout:.0f} s") from None
    finally:
        for u in unsubscribe:
            u()
