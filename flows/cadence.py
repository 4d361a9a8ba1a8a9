"""The two streaming cadences (DESIGN.md 2.5): never one write per token.

A model streams tokens at whatever rate it likes (a local model ~50/s, a fast provider several
hundred/s). Two consumers want them at their own pace:

- the **UI cadence** (~30 ms, small chunks): the terminal that shows the stream as it grows;
- the **persistence cadence** (~250 ms, 2-5x coarser): the backend mutation (``drafts:append`` /
  message deltas) that everyone else's subscription sees. Its rate bounds backend commits/s, so
  it must not grow with the token rate.

``StreamBatcher`` takes tokens with ``push()`` (synchronous, never blocks the token loop) and
runs one small task per cadence. Each lane throttles with a leading edge and a trailing flush:
the first token after a quiet period goes out at once (low latency), later ones are collected
and flushed when ``interval`` has passed since the previous flush, so a lane flushes at most once
per interval whatever the token rate. A flush awaits its callback before the next one starts:
writes of a lane are ordered and never overlap, and a slow callback (a mutation round trip
longer than the interval) makes batches larger, not more frequent. ``close()`` flushes what is
left (the final flush) and returns when both lanes are done.

Config (another module owns it): ``streaming.ui_interval_ms`` and
``streaming.persist_interval_ms``; ``Cadence.from_config`` reads those names from any object or
mapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from collab.flows.clock import Clock, LoopClock

__all__ = ["Batch", "BatchCallback", "Cadence", "LaneStats", "StreamBatcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cadence:
    """Both cadences. ``*_max_chars`` (off by default) flushes a lane early once its buffer holds
    that many characters, bounding payload size at the price of the rate bound."""

    ui_interval_ms: float = 30.0
    persist_interval_ms: float = 250.0
    ui_max_chars: int | None = None
    persist_max_chars: int | None = None

    def __post_init__(self) -> None:
        if self.ui_interval_ms <= 0 or self.persist_interval_ms <= 0:
            raise ValueError("streaming intervals must be positive")
        if self.persist_interval_ms < self.ui_interval_ms:
            raise ValueError(
                "streaming.persist_interval_ms must not be finer than streaming.ui_interval_ms"
            )
        for size in (self.ui_max_chars, self.persist_max_chars):
            if size is not None and size <= 0:
                raise ValueError("streaming max_chars must be positive")

    @classmethod
    def from_config(cls, streaming: object | Mapping[str, Any] | None) -> Cadence:
        """From the config's ``streaming`` section (a pydantic model, dataclass or dict);
        missing fields keep their defaults."""
        if streaming is None:
            return cls()
        names = ("ui_interval_ms", "persist_interval_ms", "ui_max_chars", "persist_max_chars")
        values: dict[str, Any] = {}
        for name in names:
            if isinstance(streaming, Mapping):
                if name in streaming:
                    values[name] = streaming[name]
            elif hasattr(streaming, name):
                values[name] = getattr(streaming, name)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Batch:
    """One flush of one lane: ``text`` starts at character ``offset`` of the whole stream;
    ``seq`` counts this lane's flushes from 0 (an idempotency key for the write); ``final`` marks
    the flush made by ``close()``."""

    text: str
    seq: int
    offset: int
    tokens: int
    final: bool = False


BatchCallback = Callable[[Batch], Awaitable[None]]


@dataclass(slots=True)
class LaneStats:
    flushes: int = 0
    chars: int = 0
    tokens: int = 0


class _Lane:
    def __init__(
        self,
        name: str,
        interval: float,
        max_chars: int | None,
        callback: BatchCallback,
        clock: Clock,
    ) -> None:
        self.name = name
        self.interval = interval
        self.max_chars = max_chars
        self.callback = callback
        self.clock = clock
        self.stats = LaneStats()
        self.error: BaseException | None = None
        self._parts: list[str] = []
        self._size = 0
        self._offset = 0
        # -inf: the very first token is flushed at once.
        self._last_flush = float("-inf")
        self._closing = False
        self._data = asyncio.Event()  # the buffer became non-empty
        self._urgent = asyncio.Event()  # close() or the size cap: stop waiting for the deadline
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"cadence-{name}")

    def push(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        self._data.set()
        if self.max_chars is not None and self._size >= self.max_chars:
            self._urgent.set()

    async def close(self) -> None:
        self._closing = True
        self._data.set()
        self._urgent.set()
        await self._task

    async def abort(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        try:
            while True:
                if not self._parts:
                    if self._closing:
                        return
                    self._data.clear()
                    await self._data.wait()
                    continue
                if not self._urgent.is_set():
                    wait = self._last_flush + self.interval - self.clock.now()
                    if wait > 0:
                        await self._sleep_unless_urgent(wait)
                        continue
                await self._flush()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the callback failed: surfaced by push() / close()
            self.error = exc

    async def _sleep_unless_urgent(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        urgent = asyncio.ensure_future(self._urgent.wait())
        try:
            await asyncio.wait({sleeper, urgent}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            urgent.cancel()

    async def _flush(self) -> None:
        text = "".join(self._parts)
        batch = Batch(
            text=text,
            seq=self.stats.flushes,
            offset=self._offset,
            tokens=len(self._parts),
            final=self._closing,
        )
        self._parts.clear()
        self._size = 0
        self._offset += len(text)
        if not self._closing:
            self._urgent.clear()
        self._last_flush = self.clock.now()
        self.stats.flushes += 1
        self.stats.chars += len(text)
        self.stats.tokens += batch.tokens
        await self.callback(batch)


class StreamBatcher:
    """Batches a token stream into UI-cadence and persistence-cadence callbacks.

    Either callback may be None (that lane is then off). Create it inside the running loop::

        async with StreamBatcher(cadence, on_ui=show, on_persist=append_draft) as batcher:
            async for chunk in stream_completion(...):
                batcher.push(chunk.text)
        # leaving the block made the final flush of both lanes

    If a callback raises, that lane stops and the next ``push()`` or ``close()`` re-raises the
    error (e.g. a fenced write after the lock was lost ends the stream).
    """

    def __init__(
        self,
        cadence: Cadence | None = None,
        *,
        on_ui: BatchCallback | None = None,
        on_persist: BatchCallback | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.cadence = cadence or Cadence()
        clock = clock or LoopClock()
        self._lanes: dict[str, _Lane] = {}
        if on_ui is not None:
            self._lanes["ui"] = _Lane(
                "ui", self.cadence.ui_interval_ms / 1000, self.cadence.ui_max_chars, on_ui, clock
            )
        if on_persist is not None:
            self._lanes["persist"] = _Lane(
                "persist",
                self.cadence.persist_interval_ms / 1000,
                self.cadence.persist_max_chars,
                on_persist,
                clock,
            )
        self._closed = False
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        """Everything pushed so far."""
        return "".join(self.text_parts)

    def stats(self, lane: str) -> LaneStats:
        return self._lanes[lane].stats

    def push(self, text: str) -> None:
        """Add a token. Never awaits: the token loop is never held up by a slow write."""
        if self._closed:
            raise RuntimeError("push() after close()")
        self._raise_lane_error()
        if not text:
            return
        self.text_parts.append(text)
        for lane in self._lanes.values():
            lane.push(text)

    async def close(self) -> None:
        """Final flush of both lanes; returns when their last callbacks have returned."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(lane.close() for lane in self._lanes.values()))
        self._raise_lane_error()

    async def abort(self) -> None:
        """Stop both lanes without flushing (the writes would be refused anyway)."""
        self._closed = True
        await asyncio.gather(*(lane.abort() for lane in self._lanes.values()))

    def _raise_lane_error(self) -> None:
        for lane in self._lanes.values():
            if lane.error is not None:
                raise lane.error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: object, tb: object
    ) -> None:
        if exc_type is None:
            await self.close()
            return
        # The stream failed or was cancelled: still persist what was received (a partial draft
        # is kept, never dropped), but let the original error propagate.
        try:
            await self.close()
        except Exception:
            log.warning("final flush failed after a stream error", exc_info=True)
