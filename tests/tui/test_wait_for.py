"""``wait_for`` (tests/tui/conftest.py) waits through "not there yet" and nothing else: an
error its condition raises is raised at once, and a timeout says what was awaited."""

from __future__ import annotations

import time

import pytest
from textual.app import App

from .conftest import wait_for


async def test_a_condition_that_raises_fails_at_once() -> None:
    def broken() -> bool:
        return {"version": None}["version"] + 1 > 0  # a TypeError: a bug, not "not yet"

    async with App().run_test() as pilot:
        started = time.monotonic()
        with pytest.raises(TypeError):
            await wait_for(pilot, broken, timeout=30)
        assert time.monotonic() - started < 25  # raised at the first check, not at the timeout


async def test_not_there_yet_is_retried_until_it_is() -> None:
    seen: list[int] = []

    def later() -> bool:
        seen.append(1)
        if len(seen) < 3:
            raise AttributeError("'NoneType' object has no attribute 'artifacts'")  # the screen is not up
        return True

    async with App().run_test() as pilot:
        await wait_for(pilot, later)
    assert len(seen) == 3


async def test_a_timeout_says_what_was_awaited() -> None:
    async with App().run_test() as pilot:
        with pytest.raises(AssertionError, match=r"the lock to show free did not happen within 1 s.*KeyError"):
            await wait_for(pilot, lambda: {}["lock"], timeout=1, what="the lock to show free")
