"""Client overhead: Transition frame in -> LiveQuery callbacks done, with 1,000 subscriptions.

Measures the client alone (no backend): frames are built here and fed to the client the way its
socket reader does (``ConvexClient.handle_frame``: JSON parse + pydantic validation + version
chain check + Convex-JSON decode + optimistic layer + callbacks), then once more over a real
loopback WebSocket (frame sent by a local server -> last callback). Also memory per subscription.

    /tmp/venv/bin/python bench/client_overhead.py [--subs 1000] [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import tracemalloc
from typing import Any

from websockets.asyncio.server import serve

from collab.backend_client import ConvexClient, LiveQuery
from collab.wire.values import encode_ts


class Chain:
    """Builds a valid Transition chain (startVersion = previous endVersion)."""

    def __init__(self) -> None:
        self.qs, self.identity, self.ts = 0, 0, 0

    def frame(self, mods: list[dict[str, Any]], qs: int | None = None) -> str:
        start = {"querySet": self.qs, "identity": self.identity, "ts": encode_ts(self.ts)}
        self.ts += 1000
        if qs is not None:
            self.qs = qs
        end = {"querySet": self.qs, "identity": self.identity, "ts": encode_ts(self.ts)}
        return json.dumps({"type": "Transition", "startVersion": start, "endVersion": end, "modifications": mods})


def value(i: int, rev: int) -> dict[str, Any]:
    # A realistic small document: an artifact header row.
    return {"_id": f"k97{i:029d}", "title": f"artifact {i}", "version": rev, "locked": rev % 2 == 0,
            "tags": ["a", "b"], "updatedAt": 1.7e12 + rev}


def upd(qid: int, rev: int) -> dict[str, Any]:
    return {"type": "QueryUpdated", "queryId": qid, "value": value(qid, rev), "logLines": [], "journal": None}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def fmt_us(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1e6:8.1f} us   p99 {pct(xs, 0.99) * 1e6:8.1f} us"


def setup(n: int) -> tuple[ConvexClient, list[LiveQuery[Any]], list[int], Chain]:
    client = ConvexClient("http://127.0.0.1:1")
    hits = [0]
    lives = []
    for i in range(n):
        live = client.watch("artifacts:get", {"id": f"a{i}"})
        live.subscribe(lambda v: hits.__setitem__(0, hits[0] + 1))
        lives.append(live)
    chain = Chain()
    client.handle_frame(chain.frame([upd(i, 0) for i in range(n)], qs=1))
    return client, lives, hits, chain


def bench_frames(n: int, rounds: int) -> None:
    client, lives, hits, chain = setup(n)
    assert all(not lv.loading for lv in lives)
    rev = 0
    for label, k in (("1 query changed", 1), ("10 queries changed", 10), (f"all {n} changed", n)):
        times: list[float] = []
        for r in range(rounds if k < n else max(20, rounds // 10)):
            rev += 1
            frame = chain.frame([upd((r * k + j) % n, rev) for j in range(k)])
            before = hits[0]
            t0 = time.perf_counter()
            client.handle_frame(frame)
            times.append(time.perf_counter() - t0)
            assert hits[0] - before == k
        print(f"  {label:<28} {fmt_us(times)}   ({k / statistics.median(times):,.0f} callbacks/s)")
    # Empty transitions (the server's answer to Ping-free heartbeats / other clients' commits).
    times = []
    for _ in range(rounds):
        frame = chain.frame([])
        t0 = time.perf_counter()
        client.handle_frame(frame)
        times.append(time.perf_counter() - t0)
    print(f"  {'empty Transition':<28} {fmt_us(times)}")

    # Slow path: an optimistic update pending -> the view is rebuilt over all n queries.
    client._optimistic.apply(10_000, lambda store: store.set_query("artifacts:get", {"id": "a0"}, {"x": 1}))
    times = []
    for r in range(max(50, rounds // 3)):
        frame = chain.frame([upd(1 + r % (n - 1), 10_000 + r)])
        t0 = time.perf_counter()
        client.handle_frame(frame)
        times.append(time.perf_counter() - t0)
    print(f"  {'1 changed, optimistic pending':<28} {fmt_us(times)}   (dict copy + replay)")


def bench_memory(n: int) -> None:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    client = ConvexClient("http://127.0.0.1:1")
    lives = [client.watch("artifacts:get", {"id": f"a{i}"}) for i in range(n)]
    empty = tracemalloc.take_snapshot()
    chain = Chain()
    client.handle_frame(chain.frame([upd(i, 0) for i in range(n)], qs=1))
    gc.collect()
    full = tracemalloc.take_snapshot()
    tracemalloc.stop()

    def size(a: Any, b: Any) -> int:
        return sum(s.size_diff for s in b.compare_to(a, "filename"))

    values = sum(len(json.dumps(value(i, 0))) for i in range(n)) / n
    print(f"  per subscription, no result yet:       {size(base, empty) / n:8.0f} bytes")
    print(f"  per subscription, with its result:     {size(base, full) / n:8.0f} bytes"
          f"   (result JSON ~{values:.0f} bytes)")
    del lives


async def bench_socket(n: int, rounds: int) -> None:
    """Frame written by a loopback server -> last LiveQuery callback in the client."""
    send_q: asyncio.Queue[str] = asyncio.Queue()
    ready = asyncio.Event()

    async def handler(ws: Any) -> None:
        ready.set()

        async def pump() -> None:
            while True:
                await ws.send(await send_q.get())

        task = asyncio.get_running_loop().create_task(pump())
        async for _ in ws:  # until the client closes
            pass
        task.cancel()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = ConvexClient(f"http://127.0.0.1:{port}")
        await client.connect()
        await ready.wait()
        got = asyncio.Event()
        last = [0.0]
        lives = []
        for i in range(n):
            live = client.watch("artifacts:get", {"id": f"a{i}"})
            lives.append(live)
        def cb(_: Any) -> None:
            last[0] = time.perf_counter()
            got.set()
        lives[n - 1].subscribe(cb)
        chain = Chain()
        await send_q.put(chain.frame([upd(i, 0) for i in range(n)], qs=n + 1))
        await got.wait()
        for label, k in (("1 query changed", 1), (f"all {n} changed", n)):
            times = []
            for r in range(rounds if k == 1 else max(20, rounds // 10)):
                got.clear()
                frame = chain.frame([upd(n - 1 - j, r + 1 + (k > 1) * 100_000) for j in range(k)])
                t0 = time.perf_counter()
                await send_q.put(frame)
                await got.wait()
                times.append(last[0] - t0)
            print(f"  {label:<28} {fmt_us(times)}")
        await client.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=300)
    a = ap.parse_args()
    print(f"client overhead with {a.subs} subscriptions (Transition frame -> callbacks)")
    print(" in-process (parse + validate + apply + notify):")
    asyncio.run(_in_loop(bench_frames, a.subs, a.rounds))
    print(" over a loopback WebSocket (server send -> last callback):")
    asyncio.run(bench_socket(a.subs, a.rounds))
    print(" memory:")
    asyncio.run(_in_loop(bench_memory, a.subs))


async def _in_loop(fn: Any, *args: Any) -> None:
    fn(*args)


if __name__ == "__main__":
    main()
