"""Fan-out: one writer, N subscriber connections on one document.

Measures, for N in {1, 10, 100}, the time from sending the mutation to the moment the *last*
subscriber has received the Transition carrying the new value. In the same run, the floor: a
plain `websockets` server that broadcasts a payload of the same size to N connections when
the writer pokes it. Both servers run in their own process; the harness is identical.

    python bench/fanout.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import websockets

from _common import summary_ms, pct  # noqa: I001
from collab.backend.testing import BackendProcess, free_port

BROADCAST_SERVER = r'''
import asyncio, sys, websockets
clients = set()
async def handler(ws):
    role = await ws.recv()
    if role == "sub":
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)
    else:
        async for payload in ws:
            websockets.broadcast(clients, payload)
            await ws.send("ok")
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None, max_size=None):
        await asyncio.Future()
asyncio.run(main())
'''


async def bench_collab(url: str, n: int, rounds: int) -> tuple[list[float], int]:
    ws_url = url.replace("http://", "ws://") + "/api/sync"

    async def connect() -> websockets.ClientConnection:
        ws = await websockets.connect(ws_url, max_size=None, compression=None)
        await ws.send(json.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0}))
        return ws

    name = f"fan{n}"  # a fresh counter per N: values start at 0
    subs = [await connect() for _ in range(n)]
    for ws in subs:
        await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "counter:get", "args": [{"name": name}]}]}))
        json.loads(await ws.recv())
    writer = await connect()
    size = 0

    async def wait_value(ws: websockets.ClientConnection, value: float) -> None:
        nonlocal size
        while True:
            raw = await ws.recv()
            msg = json.loads(raw)
            if msg["type"] == "Transition" and any(m.get("value") == value for m in msg["modifications"]):
                size = len(raw)
                return

    latencies = []
    for i in range(1, rounds + 1):
        t0 = time.perf_counter()
        waits = [asyncio.ensure_future(wait_value(ws, i)) for ws in subs]
        await writer.send(json.dumps({"type": "Mutation", "requestId": i, "udfPath": "counter:inc", "args": [{"name": name}]}))
        await asyncio.gather(*waits)
        latencies.append(time.perf_counter() - t0)
        # drain the writer's own response + transition
        while True:
            if json.loads(await writer.recv())["type"] == "Transition":
                break
    for ws in subs + [writer]:
        await ws.close()
    return latencies, size


async def bench_broadcast(port: int, n: int, rounds: int, size: int) -> list[float]:
    url = f"ws://127.0.0.1:{port}"
    subs = []
    for _ in range(n):
        ws = await websockets.connect(url, max_size=None, compression=None)
        await ws.send("sub")
        subs.append(ws)
    writer = await websockets.connect(url, max_size=None, compression=None)
    await writer.send("pub")
    await asyncio.sleep(0.2)
    latencies = []
    for i in range(rounds):
        payload = json.dumps({"type": "Transition", "i": i, "pad": "x" * max(0, size - 40)})

        async def wait(ws: websockets.ClientConnection) -> None:
            json.loads(await ws.recv())

        t0 = time.perf_counter()
        waits = [asyncio.ensure_future(wait(ws)) for ws in subs]
        await writer.send(payload)
        await asyncio.gather(*waits)
        latencies.append(time.perf_counter() - t0)
        await writer.recv()
    for ws in subs + [writer]:
        await ws.close()
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    floor_proc = subprocess.Popen([sys.executable, "-c", BROADCAST_SERVER, str(port)])
    await asyncio.sleep(0.5)
    print(f"fan-out: {args.rounds} writes per N; latency = mutation sent -> last subscriber has the new value")
    try:
        with tempfile.TemporaryDirectory() as tmp, BackendProcess(Path(tmp) / "data") as backend:
            for n in (1, 10, 100):
                collab, size = await bench_collab(backend.url, n, args.rounds)
                floor = await bench_broadcast(port, n, args.rounds, size)
                ratio = pct(collab, 99) / pct(floor, 99)
                print(f"N={n:<3} collab    {summary_ms(collab)}  ({size} B frames)")
                print(f"N={n:<3} broadcast {summary_ms(floor)}")
                print(f"N={n:<3} p99 ratio collab/broadcast = {ratio:.2f}x" + ("  (floor: <= 4x)" if n == 100 else ""))
    finally:
        floor_proc.terminate()
        floor_proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
