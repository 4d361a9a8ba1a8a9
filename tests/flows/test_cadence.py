"""The two streaming cadences, on virtual time (no timed assertions on the real clock)."""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass

import pytest
from collab.flows.cadence import Batch, Cadence, StreamBatcher
from collab.flows.llm import stream_completion
from collab.flows.testing.clock import VirtualClock
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

pytestmark = [
    pytest.mark.timeout(60),
    # litellm's own use of deprecated pydantic APIs: not ours to fix, not worth the noise.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]


@dataclass
class Recorder:
    clock: VirtualClock
    batches: list[tuple[float, Batch]]

    async def __call__(self, batch: Batch) -> None:
        self.batches.append((self.clock.now(), batch))

    @property
    def text(self) -> str:
        return "".join(b.text for _, b in self.batches)

    def times(self) -> list[float]:
        return [t for t, _ in self.batches]


def recorders(clock: VirtualClock) -> tuple[Recorder, Recorder]:
    return Recorder(clock, []), Recorder(clock, [])


async def feed(
    batcher: StreamBatcher, clock: VirtualClock, rate: float, seconds: float
) -> list[tuple[float, str]]:
    """A fake provider: ``rate`` tokens/s for ``seconds`` of virtual time."""
    pushed: list[tuple[float, str]] = []
    step = 1.0 / rate
    for i in range(int(rate * seconds)):
        token = f" t{i}"
        batcher.push(token)
        pushed.append((clock.now(), token))
        await clock.advance(step)
    return pushed


def assert_well_formed(rec: Recorder, expected: str) -> None:
    assert rec.text == expected  # nothing lost, nothing duplicated, in order
    batches = [b for _, b in rec.batches]
    assert [b.seq for b in batches] == list(range(len(batches)))
    offsets = [sum(len(x.text) for x in batches[:i]) for i in range(len(batches))]
    assert [b.offset for b in batches] == offsets
    assert all(b.text for b in batches)  # never an empty write


@pytest.mark.parametrize("rate", [20, 50, 250, 1000, 10_000])
async def test_persisted_writes_per_second_stay_at_cadence(rate: int) -> None:
    clock = VirtualClock()
    ui, persist = recorders(clock)
    cadence = Cadence(ui_interval_ms=30, persist_interval_ms=250)
    batcher = StreamBatcher(cadence, on_ui=ui, on_persist=persist, clock=clock)
    seconds = 10 if rate <= 1000 else 2
    pushed = await feed(batcher, clock, rate, seconds)
    await batcher.close()
    expected = "".join(t for _, t in pushed)
    assert_well_formed(persist, expected)
    assert_well_formed(ui, expected)

    # The bound: at most one write per interval (+1 for the leading edge, +1 for the final
    # flush), whatever the token rate.
    assert len(persist.batches) <= math.floor(seconds / 0.250) + 2
    assert len(ui.batches) <= min(rate * seconds, math.floor(seconds / 0.030) + 2)
    gaps = [b - a for a, b in itertools.pairwise(persist.times())]
    assert all(g >= 0.250 - 1e-9 for g in gaps[:-1])  # the final flush may come sooner
    if rate >= 50:
        # ...and at a fast rate the lanes really run at their cadence (not starved, not lumpy).
        assert len(persist.batches) >= math.floor(seconds / 0.250) - 1
        ui_expected = seconds / max(0.030, 1 / rate)
        assert len(ui.batches) >= 0.9 * ui_expected


async def test_every_token_is_persisted_within_one_interval() -> None:
    clock = VirtualClock()
    ui, persist = recorders(clock)
    batcher = StreamBatcher(Cadence(30, 250), on_ui=ui, on_persist=persist, clock=clock)
    pushed = await feed(batcher, clock, 333, 3)
    await batcher.close()
    for rec, interval in ((persist, 0.250), (ui, 0.030)):
        flushed_at: list[float] = []
        for t, batch in rec.batches:
            flushed_at += [t] * batch.tokens
        lags = [f - p for (p, _), f in zip(pushed, flushed_at, strict=True)]
        assert max(lags) <= interval + 1e-9


async def test_slow_tokens_go_out_at_once() -> None:
    # A slow local model (5 tokens/s): each token reaches the UI as it arrives (leading edge),
    # not 30 ms later, and never two UI chunks for one token.
    clock = VirtualClock()
    ui, persist = recorders(clock)
    batcher = StreamBatcher(Cadence(30, 250), on_ui=ui, on_persist=persist, clock=clock)
    pushed = await feed(batcher, clock, 5, 2)
    await batcher.close()
    assert ui.times() == [t for t, _ in pushed]
    assert [b.text for _, b in ui.batches] == [tok for _, tok in pushed]
    assert persist.text == ui.text


async def test_final_flush_on_close() -> None:
    clock = VirtualClock()
    ui, persist = recorders(clock)
    batcher = StreamBatcher(Cadence(30, 250), on_ui=ui, on_persist=persist, clock=clock)
    batcher.push("Hello")
    await clock.advance(0.001)
    batcher.push(",")
    batcher.push(" world")
    await clock.advance(0.010)  # well inside both intervals: nothing more flushed yet
    assert persist.text == "Hello"
    await batcher.close()  # no time passes: close itself flushes
    assert persist.text == ui.text == "Hello, world"
    last = persist.batches[-1][1]
    assert last.final and last.text == ", world" and last.tokens == 2
    assert clock.now() == pytest.approx(0.011)
    with pytest.raises(RuntimeError):
        batcher.push("late")


async def test_slow_callback_makes_batches_bigger_not_more_frequent() -> None:
    # A backend round trip (600 ms) slower than the persistence interval (250 ms): writes never
    # overlap and come at most once per round trip; nothing is lost.
    clock = VirtualClock()
    writes: list[tuple[float, float, str]] = []
    in_flight = 0

    async def slow_persist(batch: Batch) -> None:
        nonlocal in_flight
        in_flight += 1
        assert in_flight == 1
        started = clock.now()
        await clock.sleep(0.6)
        writes.append((started, clock.now(), batch.text))
        in_flight -= 1

    batcher = StreamBatcher(Cadence(30, 250), on_persist=slow_persist, clock=clock)
    pushed = await feed(batcher, clock, 500, 5)
    close = asyncio.ensure_future(batcher.close())
    while not close.done():
        await clock.advance(0.1)
    await close
    assert "".join(w[2] for w in writes) == "".join(t for _, t in pushed)
    assert len(writes) <= 5 / 0.6 + 2
    for (_, end, _), (start, _, _) in itertools.pairwise(writes):
        assert start >= end


async def test_callback_error_stops_the_stream() -> None:
    clock = VirtualClock()

    class LockLost(Exception):
        pass

    async def fenced_write(batch: Batch) -> None:
        raise LockLost("fencing token 7 is stale")

    batcher = StreamBatcher(Cadence(30, 250), on_persist=fenced_write, clock=clock)
    batcher.push("a")
    await clock.advance(0.001)
    with pytest.raises(LockLost):
        batcher.push("b")
    with pytest.raises(LockLost):
        await batcher.close()


async def test_max_chars_flushes_early() -> None:
    clock = VirtualClock()
    ui, persist = recorders(clock)
    cadence = Cadence(ui_interval_ms=30, persist_interval_ms=250, persist_max_chars=100)
    batcher = StreamBatcher(cadence, on_ui=ui, on_persist=persist, clock=clock)
    for _ in range(30):
        batcher.push("x" * 10)
        await clock.advance(0.001)
    await batcher.close()
    assert persist.text == "x" * 300
    assert all(len(b.text) <= 100 for _, b in persist.batches[1:-1])
    assert len(persist.batches) >= 3


async def test_context_manager_flushes_after_an_error() -> None:
    # A provider error mid-stream: what was received is still persisted (a partial draft is
    # kept), and the provider's error propagates.
    clock = VirtualClock()
    _, persist = recorders(clock)
    with pytest.raises(ValueError):
        async with StreamBatcher(Cadence(), on_persist=persist, clock=clock) as batcher:
            batcher.push("partial")
            batcher.push(" draft")
            raise ValueError("provider died")
    assert persist.text == "partial draft"


def test_cadence_from_config() -> None:
    assert Cadence.from_config(None) == Cadence()
    assert Cadence.from_config({"ui_interval_ms": 20, "persist_interval_ms": 100}) == Cadence(
        20, 100
    )

    class Streaming:  # what config's pydantic model looks like to us
        ui_interval_ms = 40
        persist_interval_ms = 200

    assert Cadence.from_config(Streaming()) == Cadence(40, 200)
    with pytest.raises(ValueError, match="persist_interval_ms"):
        Cadence(ui_interval_ms=100, persist_interval_ms=50)
    with pytest.raises(ValueError):
        Cadence(ui_interval_ms=0)


async def test_real_stream_through_the_batcher(openai_server: OpenAIStreamServer) -> None:
    # End to end on the real clock: litellm over HTTP/SSE at 400 tokens/s into both lanes.
    # Only counts derived from the measured duration are asserted, never a wall-clock figure.
    reply = "".join(f" w{i}" for i in range(300))
    openai_server.script("fast", Reply(text=reply, tokens_per_second=400))
    ui: list[Batch] = []
    persist: list[Batch] = []

    async def on_ui(batch: Batch) -> None:
        ui.append(batch)

    async def on_persist(batch: Batch) -> None:
        persist.append(batch)

    loop = asyncio.get_running_loop()
    started = loop.time()
    async with StreamBatcher(Cadence(30, 250), on_ui=on_ui, on_persist=on_persist) as batcher:
        async for chunk in stream_completion(
            "openai/fast",
            [{"role": "user", "content": "go"}],
            api_base=openai_server.base_url,
            api_key="k",
        ):
            batcher.push(chunk.text)
    elapsed = loop.time() - started
    assert "".join(b.text for b in persist) == "".join(b.text for b in ui) == reply
    assert len(persist) <= elapsed / 0.250 + 2
    assert len(ui) <= elapsed / 0.030 + 2
    assert len(persist) < 300 / 10  # never one write per token
