"""The discussion log's drawing: incremental wrapping equals wrapping the whole text, and a
streaming reply's tick goes through only its end, however long the reply is."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collab.widgets.message_log import MessageLog
from collab.widgets.wrap import IncrementalWrap, wrap


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab c\n  中x")), max_size=200), st.integers(1, 30),
       st.lists(st.integers(1, 20), max_size=30))
def test_incremental_wrap_equals_wrapping_the_whole(text: str, width: int, cuts: list[int]) -> None:
    inc, at = IncrementalWrap(width), 0
    for n in cuts:
        at = min(len(text), at + n)
        inc.set(text[:at])
    inc.set(text)
    assert inc.lines == wrap(text, width)


def test_wrap_rules() -> None:
    assert wrap("hello world this is a test", 10) == ["hello", "world this", "is a test"]
    assert wrap("a\n\nb", 5) == ["a", "", "b"]
    assert wrap("abcdefghij", 4) == ["abcd", "efgh", "ij"]  # a word wider than the line is folded
    assert wrap("  two", 8) == ["  two"]  # indentation kept
    assert wrap("", 5) == [""]


def test_a_tick_of_a_long_reply_wraps_only_its_end() -> None:
    inc = IncrementalWrap(78, "w0001 " * 20_000)  # 120,000 characters
    inc.append("w0002 ")
    assert inc.wrapped < 78 + 6  # the open last line and the new token, not the reply
    inc.set(inc.text + "w0003 ")
    assert inc.wrapped < 78 + 6



def _msg(i: int, body: str, state: str = "done", **kw: Any) -> dict[str, Any]:
    return {"_id": f"m{i}", "authorHandle": "quinn" if i else "ann", "authorKind": "agent" if i else "human",
            "body": body, "state": state, **kw}


async def test_log_follows_a_growing_reply_and_keeps_other_messages() -> None:
    from textual.app import App, ComposeResult

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield MessageLog("ann", id="log")

    app = One()
    async with app.run_test(size=(40, 8)) as pilot:
        log = app.query_one(MessageLog)
        log.set_messages([_msg(0, "hi @quinn"), _msg(1, "", "streaming")])
        for n in range(1, 60):
            log.set_live([{"kind": "message", "messageId": "m1", "base": 0, "text": "word " * n}])
            await pilot.pause()
        first = log._by_id["m0"]
        assert first.body.lines == ["hi @quinn"] and first.body.wrapped == len("hi @quinn")  # wrapped once
        reply = log._by_id["m1"]
        assert reply.body.wrapped < 40 + 5 and len(reply.body.lines) > 5
        assert log.scroll_y == log.max_scroll_y > 0  # the reader at the newest message stays at the end
        assert "word word" in log.message_text(1) and log.message_text(1).endswith("▌")
        shown = "\n".join(str(log.render_line(y).text) for y in range(log.size.height))
        assert "▌" in shown
        log.set_messages([_msg(0, "hi @quinn"), _msg(1, "word " * 59, decision=True)])
        await pilot.pause()
        assert "✔ decision" in log.message_text(1) and "▌" not in log.message_text(1)
        await pilot.press("up")  # moving up lets the reader stay where they are
        assert log.selected is not None and log.selected["_id"] == "m0"


async def test_the_wheel_leaves_the_end_and_new_messages_move_nothing() -> None:
    from textual.app import App, ComposeResult

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield MessageLog("ann", id="log")

    def shown(log: MessageLog) -> list[str]:
        return [log.render_line(y).text for y in range(log.size.height)]

    msgs = [_msg(i, f"line {i}", _creationTime=float(i)) for i in range(1, 41)]
    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(MessageLog)
        log.set_messages(msgs)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y > 0 and log.selected is msgs[-1]
        for _ in range(5):
            log.scroll_up(animate=False)  # what the wheel does
        await pilot.pause()
        y, before = log.scroll_y, shown(log)
        assert y < log.max_scroll_y
        new = _msg(41, "line 41", _creationTime=41.0)
        log.set_messages(msgs[1:] + [new])  # the tail moves on: its first message leaves it
        await pilot.pause()
        assert log.scroll_y == y and shown(log) == before and log.selected is msgs[-1]
        assert len(log.messages) == 41 and log.messages[0] is msgs[0]  # nothing above the reader went
        log.scroll_end(animate=False)  # back at the end: following again
        await pilot.pause()
        newer = _msg(42, "line 42", _creationTime=42.0)
        log.set_messages(msgs[2:] + [new, newer])
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y and log.selected is newer and "line 42" in shown(log)[-1]
