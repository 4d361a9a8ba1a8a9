"""The UI cadence for every stream of a worker: one ``streams:push`` per tick for all of them.

Each stream an agent writes (a discussion reply, a draft) registers a :class:`LiveStream`.
Tokens go in with :meth:`LiveStream.add` (synchronous, never waits). A single task flushes the
new text of *all* registered streams in one mutation every ``ui_interval_ms`` (leading edge:
the first text after a quiet period goes out at once), so the backend sees ~33 commits/s for
the whole worker whether it serves one agent or five. A push waits for the previous one (one
in flight): a slow round trip makes the next push bigger, not more frequent.

With the UI lane off (``streaming.ui_lane = false``, e.g. to save function calls on a Convex
deployment) the pusher is disabled: registered streams drop their text and nothing is pushed,
so readers see the persistence cadence only.

``base`` (the durable length the persistence lane has had *acknowledged*) rides on each chunk;
the backend drops the part of the tail it covers (docs/API.md, streams). Because it is only
raised after the durable write's ack, every snapshot a reader sees has ``len(durable) >= base``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.flows.clock import Clock, LoopClock

if TYPE_CHECKING:
    from collab.flows.cadence import StreamBatcher
    from collab.flows.llm import TokenChunk

__all__ = ["LivePusher", "LiveStream", "new_stream_key", "prepend", "pump", "until_text"]

log = logging.getLogger(__name__)


def new_stream_key() -> str:
    """The stream's write capability (kept by the worker, never shown to readers)."""
    return secrets.token_urlsafe(18)


@dataclass(eq=False)
class LiveStream:
    stream_id: str
    key: str
    pending: list[str] = field(default_factory=list)
    seq: int = 0
    base: int = 0  # acknowledged durable length
    sent_base: int = 0
    closed: bool = False
    _pusher: LivePusher | None = None

    def add(self, text: str) -> None:
        if text and not self.closed:
            self.pending.append(text)
            if self._pusher is not None:
                self._pusher.wake()

    def persisted(self, length: int) -> None:
        """The durable text now has ``length`` characters (its write was acknowledged)."""
        self.base = max(self.base, length)


class LivePusher:
    """Flushes every registered stream's new text in one mutation per UI tick."""

    def __init__(self, client: ConvexClient, interval_ms: float = 30.0, clock: Clock | None = None,
                 *, enabled: bool = True) -> None:
        self.client = client
        self.enabled = enabled
        self.interval = interval_ms / 1000
        self.clock = clock or LoopClock()
        self.streams: dict[str, LiveStream] = {}
        self.pushes = 0
        self.errors = 0
        self._data = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last = float("-inf")

    def start(self) -> LivePusher:
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-pusher")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def register(self, stream_id: str, key: str, base: int = 0) -> LiveStream:
        if not self.enabled:  # the UI lane is off: a stream that takes text and pushes nothing
            return LiveStream(stream_id, key, base=base, sent_base=base, closed=True)
        stream = LiveStream(stream_id, key, base=base, sent_base=base, _pusher=self)
        self.streams[stream_id] = stream
        return stream

    def unregister(self, stream: LiveStream) -> None:
        """The stream ended (its final durable write is done): nothing more is pushed for it."""
        stream.closed = True
        stream.pending.clear()
        self.streams.pop(stream.stream_id, None)

    def wake(self) -> None:
        self._data.set()

    def _take(self) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for s in list(self.streams.values()):
            if not s.pending:
                continue
            s.seq += 1
            chunk: dict[str, Any] = {"streamId": s.stream_id, "key": s.key, "text": "".join(s.pending),
                                     "seq": s.seq}
            if s.base > s.sent_base:
                chunk["base"] = s.base
                s.sent_base = s.base
            s.pending.clear()
            chunks.append(chunk)
        return chunks

    async def _run(self) -> None:
        while True:
            self._data.clear()
            if not any(s.pending for s in self.streams.values()):
                await self._data.wait()
                continue
            wait = self._last + self.interval - self.clock.now()
            if wait > 0:
                await self.clock.sleep(wait)
            chunks = self._take()
            if not chunks:
                continue
            self._last = self.clock.now()
            try:
                await self.client.mutation(api.streams.push, {"chunks": chunks})
                self.pushes += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed transaction applied nothing: put the text back
                self.errors += 1
                log.warning("streams:push failed", exc_info=True)
                for chunk in chunks:
                    s = self.streams.get(chunk["streamId"])
                    if s is not None:
                        s.pending.insert(0, chunk["text"])
                        s.sent_base = 0  # resend the base with the next push (idempotent)
                await self.clock.sleep(self.interval)


async def pump(chunks: AsyncIterator[TokenChunk], batcher: StreamBatcher, live: LiveStream) -> str:
    """Feed a model stream to both cadences (the durable batcher and the live UI stream) and
    flush at the end; returns the whole text."""
    async with batcher:
        async for chunk in chunks:
            if chunk.text:
                batcher.push(chunk.text)
                live.add(chunk.text)
    return batcher.text



async def until_text(stream: AsyncIterator[TokenChunk]) -> list[TokenChunk]:
    """Read a model stream up to its first text (or its end): what arrived so far. A flow that
    must take something (a lock, a proposal's stream) takes it when there is something to write:
    a cold local model, or one busy with other agents' runs, can take minutes to start."""
    seen: list[TokenChunk] = []
    async for chunk in stream:
        seen.append(chunk)
        if chunk.text or chunk.done:
            break
    return seen


async def prepend(first: list[TokenChunk], rest: AsyncIterator[TokenChunk]) -> AsyncIterator[TokenChunk]:
    """The chunks :func:`until_text` read, then the rest of the stream."""
    for chunk in first:
        yield chunk
    async for chunk in rest:
        yield chunk
