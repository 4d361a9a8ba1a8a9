"""The log's window of a long discussion, without a screen: it is always a run of consecutive
messages, bounded, and every page it dropped comes back when the reader returns, whatever
the reader does (up, down, Home, End) while messages keep coming."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from collab.backend_client.space import MessagePage
from collab.widgets.message_window import LIVE, Edit, MessageWindow

TAIL = 100


class Store:
    """The discussion as the backend pages it (``messages:page``), in memory."""

    def __init__(self, n: int) -> None:
        self.msgs: list[dict[str, Any]] = []
        self.asked = 0
        self.post(n)

    def post(self, k: int) -> None:
        for _ in range(k):
            i = len(self.msgs) + 1
            self.msgs.append({"_id": f"m{i}", "_creationTime": float(i), "body": f"#{i}"})

    def tail(self) -> list[dict[str, Any]]:
        return self.msgs[-TAIL:]

    async def older(self, before: float, n: int = 100) -> MessagePage:
        self.asked += 1
        rows = [m for m in self.msgs if m["_creationTime"] < before]
        return MessagePage(rows[-n:], "c", len(rows) <= n)

    async def from_start(self, cursor: str | None = None, n: int = 100) -> MessagePage:
        self.asked += 1
        i = int(cursor or 0)
        page = self.msgs[i:i + n]
        return MessagePage(page, str(i + len(page)), i + n >= len(self.msgs))


def numbers(w: MessageWindow) -> list[int]:
    return [int(m["_creationTime"]) for m in w.messages]


def check(w: MessageWindow) -> list[int]:
    got = numbers(w)
    assert got == list(range(got[0], got[0] + len(got))), "a gap in the window"
    assert sum(count for _, count in w.segments) == len(got)
    assert len(got) <= w.max_size + 200
    assert not w.top_done or got[0] == 1
    return got


async def down(w: MessageWindow, s: Store, reader: int) -> Edit | None:
    ref = w.below_ref()
    assert ref is not None
    if ref == LIVE:
        tail = w.tail
        return w.join(await w.walk(s), tail, reader)
    return w.add_below(ref, await ref.fetch(s), reader)


async def wander(seed: int) -> None:
    rnd = random.Random(seed)
    s = Store(rnd.choice([50, 150, 1200, 3000]))
    w = MessageWindow(max_size=rnd.choice([300, 1000]))
    w.set_tail(s.tail(), True, 0)
    r = len(w.messages) - 1
    for _ in range(200):
        op = rnd.choice(["up", "up", "down", "down", "post", "home", "end"])
        edit: Edit | None = None
        if op == "up":
            r = max(0, r - rnd.randint(1, 80))
            ref = w.older_ref()
            if r < 50 and ref is not None:
                edit = w.add_older(ref, await ref.fetch(s), r)
        elif op == "down":
            r = min(len(w.messages) - 1, r + rnd.randint(1, 80))
            if r >= len(w.messages) - 50 and w.below_ref() is not None:
                edit = await down(w, s, r)
        elif op == "post":
            at = w.messages[r]
            s.post(rnd.choice([1, 3, 120, 400]))
            follow = w.joined and r == len(w.messages) - 1
            edit = w.set_tail(s.tail(), follow, r)
            if not follow:
                assert w.messages[r - edit.top_removed] is at  # the reader's message stays put
        elif op == "home":
            if not w.top_done:
                w.reset_start(await s.from_start())
            r = 0
        else:
            if not w.joined:
                w.reset_tail()
            r = len(w.messages) - 1
        if edit is not None and edit.reset:
            r = len(w.messages) - 1
        elif edit is not None:
            r += edit.top_added - edit.top_removed
        r = max(0, min(r, len(w.messages) - 1))
        got = check(w)
        if w.joined:
            assert got[-1] == len(s.msgs)
    while w.below_ref() is not None:  # all the way down: every dropped page comes back
        await down(w, s, len(w.messages) - 1)
        check(w)
    assert numbers(w)[-1] == len(s.msgs) and w.joined
    while (ref := w.older_ref()) is not None:  # and all the way up
        w.add_older(ref, await ref.fetch(s), 0)
        check(w)
    assert numbers(w)[0] == 1


def test_the_window_stays_consecutive_and_bounded_whatever_the_reader_does() -> None:
    for seed in range(120):
        asyncio.run(wander(seed))


def test_messages_pushed_out_of_the_tail_stay_and_the_top_is_trimmed() -> None:
    s = Store(150)
    w = MessageWindow(max_size=300)
    w.set_tail(s.tail(), True, 0)
    assert numbers(w) == list(range(51, 151)) and not w.top_done and w.joined
    s.post(10)  # the reader is at message 60: nothing above them leaves
    edit = w.set_tail(s.tail(), False, 9)
    assert edit.bottom_added == 10 and not edit.top_removed and numbers(w) == list(range(51, 161))
    for _ in range(30):  # following: the window keeps the newest, at most 300 of them
        s.post(10)
        edit = w.set_tail(s.tail(), True, len(w.messages) - 1)
    assert numbers(w) == list(range(161, 461)) and edit.top_removed == 10 and edit.bottom_added == 10


def test_a_burst_longer_than_the_tail_waits_below_a_reader_in_the_middle() -> None:
    async def go() -> None:
        s = Store(300)
        w = MessageWindow()
        w.set_tail(s.tail(), True, 0)
        s.post(450)  # more than the tail holds: the messages in between are not in any value
        edit = w.set_tail(s.tail(), False, 10)
        assert not edit and w.below == [LIVE] and numbers(w)[-1] == 300
        while w.below_ref() is not None:
            await down(w, s, len(w.messages) - 1)
            check(w)
        assert numbers(w)[-1] == 750 and w.joined
        s.post(450)  # the same for a reader at the newest message: the window is the new tail
        assert w.set_tail(s.tail(), True, len(w.messages) - 1).reset
        assert numbers(w) == list(range(1101, 1201))

    asyncio.run(go())


def test_home_walks_down_by_cursor_and_joins_the_tail() -> None:
    async def go() -> None:
        s = Store(1050)
        w = MessageWindow(max_size=300)
        w.set_tail(s.tail(), True, 0)
        w.reset_start(await s.from_start())
        assert numbers(w) == list(range(1, 101)) and w.top_done and not w.joined
        while w.below_ref() is not None:
            await down(w, s, len(w.messages) - 1)
            assert len(check(w)) <= 300 + 100  # the reader's page and its margin kept
        assert numbers(w)[-1] == 1050 and w.joined and not w.top_done
        asked = s.asked
        assert asked <= 12  # one page per 100 messages, and the tail needs none

    asyncio.run(go())
