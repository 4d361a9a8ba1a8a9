"""A long discussion in the log: 1,200 messages, of which the live tail holds the newest 100.
Moving up pages older ones in without moving the view, Home reaches message #1, moving down
from there pages newer ones in, End returns to the newest, and a message posted while the
reader is in the middle moves nothing on screen."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.backend_client.space import MessagePage
from collab.widgets.message_log import MessageLog

from .conftest import seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(120)
COUNT = 1200


def body(n: int) -> str:
    return f"message #{n:04d}"


async def _many(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    for start in range(1, COUNT + 1, 100):  # in order: one client's mutations run as sent
        await asyncio.gather(*(c.mutation(api.messages.post, {"spaceId": space_id, "body": body(n)})
                               for n in range(start, min(start + 100, COUNT + 1))))


@pytest.fixture(scope="module")
def long_space(backend: BackendProcess) -> Any:
    return seed_space(backend, _many)


class Gate:
    """The facade's paging, held until the test opens the gate: what is on screen before and
    after a page comes in can be compared."""

    def __init__(self, pages: Any) -> None:
        self.pages = pages
        self.open = asyncio.Event()
        self.asked = 0

    async def older(self, before: float, n: int = 100) -> MessagePage:
        self.asked += 1
        await self.open.wait()
        return await self.pages.older(before, n)

    async def from_start(self, cursor: str | None = None, n: int = 100) -> MessagePage:
        self.asked += 1
        await self.open.wait()
        return await self.pages.from_start(cursor, n)


def number(msg: dict[str, Any] | None) -> int:
    assert msg is not None
    return int(str(msg["body"]).rsplit("#", 1)[1])


def screen(log: MessageLog) -> list[str]:
    return [log.render_line(y).text for y in range(log.size.height)]


async def test_home_reaches_the_first_message_and_up_pages_older_ones_in(long_space: Any) -> None:
    app = long_space.app()
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False, messages=100))
        log = app.screen.query_one(MessageLog)
        newest = number(log.selected)
        assert len(log.messages) == 100 and newest >= COUNT and number(log.messages[0]) == newest - 99
        log.focus()
        gate = Gate(log.pages)
        log.pages = gate
        # Up from the newest: the page above is asked for before the reader gets there.
        presses = 0
        while not gate.asked:
            await pilot.press("up")
            presses += 1
            assert presses < 100, "no older page was asked for"
        assert number(log.selected) == newest - presses and len(log.messages) == 100
        before, scroll = screen(log), log.scroll_offset.y
        assert any(body(newest - presses) in line for line in before)
        gate.open.set()
        await wait_for(pilot, lambda: len(log.messages) == 200, what="the page above came in")
        assert number(log.messages[0]) == newest - 199 and number(log.selected) == newest - presses
        assert screen(log) == before and log.scroll_offset.y > scroll  # the view did not move
        # Further up, page after page: the highlight walks message by message.
        for _ in range(3):
            await pilot.press("pageup")
        for _ in range(40):
            await pilot.press("up")
        await wait_for(pilot, lambda: not log.pager.loading)
        shown = number(log.selected)
        assert shown < newest - presses - 40 and any(body(shown) in line for line in screen(log))

        # Home: the first message of the discussion, on screen.
        await pilot.press("home")
        await wait_for(pilot, lambda: number(log.messages[0]) == 1 and not log.pager.loading, what="the start")
        assert number(log.selected) == 1 and log.window.top_done
        top = screen(log)
        assert "start of the discussion" in top[0] and any(body(1) in line for line in top)
        await pilot.press("D")  # a mark on a message far above the live tail shows on it
        await wait_for(pilot, lambda: "✔ decision" in log.message_text(0), what="the mark on message #1")
        # Down from the start: newer pages come in below.
        for _ in range(60):
            await pilot.press("pagedown")
        await wait_for(pilot, lambda: not log.pager.loading)
        shown = number(log.selected)
        assert shown > 100 and number(log.messages[0]) <= shown <= number(log.messages[-1])
        assert any(body(shown) in line for line in screen(log))

        # End: the newest again, following the live tail.
        await pilot.press("end")
        await wait_for(pilot, lambda: number(log.selected) == newest and log.window.joined)
        assert any(body(newest) in line for line in screen(log))
        assert len(log.messages) <= 1000

        # Scrolled to the top (the wheel, the scrollbar): the page above comes in under the view.
        gate = Gate(gate.pages)
        log.pages = gate
        oldest = number(log.messages[0])
        log.scroll_home(animate=False)
        await wait_for(pilot, lambda: gate.asked, what="the page above asked for")
        before = screen(log)
        assert "loading older messages" in before[0] and any(body(oldest) in line for line in before)
        gate.open.set()
        await wait_for(pilot, lambda: number(log.messages[0]) == oldest - 100, what="the page above")
        assert screen(log)[1:] == before[1:]  # the line that said "loading" shows the message above


async def test_a_new_message_does_not_move_a_reader_in_the_middle(long_space: Any, backend: BackendProcess) -> None:
    app = long_space.app()
    async with app.run_test(size=(80, 30)) as pilot, \
            ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        await wait_for(pilot, lambda: space_ready(app, presence=False, messages=100))
        log = app.screen.query_one(MessageLog)
        log.focus()
        newest = number(log.messages[-1])

        async def post_two_and_look() -> None:
            nonlocal newest
            await wait_for(pilot, lambda: not log.pager.loading)
            before, selected = screen(log), log.selected
            for n in (1, 2):
                await c.mutation(api.messages.post, {"spaceId": long_space.space_id, "body": body(newest + n)})
            newest += 2
            await wait_for(pilot, lambda: number(log.window.tail[-1]) == newest, what="the new messages")
            await pilot.pause()
            assert screen(log) == before and log.selected is selected

        for _ in range(20):  # in the live tail, 20 messages up
            await pilot.press("up")
        await post_two_and_look()
        assert number(log.messages[-1]) == newest  # they came in below the reader
        await pilot.press("home")  # at the start of the discussion, far from the tail
        await wait_for(pilot, lambda: number(log.messages[0]) == 1)
        for _ in range(5):
            await pilot.press("down")
        await post_two_and_look()
        await pilot.press("end")
        assert number(log.selected) == newest
        assert any(body(newest) in line for line in screen(log))
