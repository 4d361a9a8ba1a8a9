"""End-to-end mutation throughput with 10 subscribers.

A `collab serve` process; 10 subscriber connections watch the counter being written; writers
pipeline `counter:inc` mutations (a bounded window in flight, as a real client's queue does).
Throughput = mutations acknowledged per second, measured until every subscriber has seen
the final value (so the fan-out work is inside the figure).

    python bench/throughput.py [--mutations 20000] [--writers 1] [--window 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import websockets

from _common import ROOT  # noqa: F401
from collab.backend.testing import BackendProcess


async def connect(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url, max_size=None, compression=None)
    await ws.send(json.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0}))
    return ws


async def run(url: str, total: int, writers: int, window: int, subscribers: int) -> None:
    ws_url = url.replace("http://", "ws://") + "/api/sync"
    subs = [await connect(ws_url) for _ in range(subscribers)]
    for ws in subs:
        await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "counter:get", "args": [{"name": "tp"}]}]}))
        await ws.recv()
    transitions = [0] * subscribers

    async def watch(i: int, ws: websockets.ClientConnection) -> None:
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "Transition":
                transitions[i] += 1
                if any(m.get("value") == total for m in msg["modifications"]):
                    return

    async def write(ws: websockets.ClientConnection, count: int) -> None:
        sem = asyncio.Semaphore(window)
        done = asyncio.Event()
        acked = 0

        async def reader() -> None:
            nonlocal acked
            while acked < count:
                msg = json.loads(await ws.recv())
                if msg["type"] == "MutationResponse":
                    assert msg["success"], msg
                    acked += 1
                    sem.release()
            done.set()

        task = asyncio.ensure_future(reader())
        for i in range(count):
            await sem.acquire()
            await ws.send(json.dumps({"type": "Mutation", "requestId": i, "udfPath": "counter:inc", "args": [{"name": "tp"}]}))
        await done.wait()
        await task

    writer_conns = [await connect(ws_url) for _ in range(writers)]
    watchers = [asyncio.ensure_future(watch(i, ws)) for i, ws in enumerate(subs)]
    per = total // writers
    t0 = time.perf_counter()
    await asyncio.gather(*(write(ws, per) for ws in writer_conns))
    t_acked = time.perf_counter() - t0
    await asyncio.gather(*watchers)
    t_all = time.perf_counter() - t0
    print(f"  writers={writers} window={window}: {total} mutations acknowledged in {t_acked:.2f} s, "
          f"all {subscribers} subscribers current after {t_all:.2f} s")
    print(f"  throughput: {total / t_all:,.0f} mutations/s end to end (floor: >= 2,500/s); "
          f"{sum(transitions) / subscribers:,.0f} Transitions per subscriber (coalesced)")
    for ws in subs + writer_conns:
        await ws.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mutations", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--subscribers", type=int, default=10)
    args = parser.parse_args()
    print(f"throughput: counter:inc with {args.subscribers} subscribers")
    for writers in sorted({1, args.writers}):
        with tempfile.TemporaryDirectory() as tmp, BackendProcess(Path(tmp) / "data") as backend:
            await run(backend.url, args.mutations, writers, args.window, args.subscribers)


if __name__ == "__main__":
    asyncio.run(main())
