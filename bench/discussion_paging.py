"""A long discussion in the TUI: memory and paging latency of the discussion log at 10,000 and
100,000 messages (the log pages them in and keeps a bounded window, so both should be flat).

For each size: a space is created through the API, the messages are written straight into the
backend's SQLite file with its own storage layer (``Storage.write``, one transaction: 100,000
messages in seconds, where 100,000 ``messages:post`` would take minutes), and the backend is
started again on it. The real ``collab`` app then runs in a pty (100x50), focused on the
discussion log, and sweeps it: page-up x N from the newest, ``Home`` (the first message on
screen), page-down x 1.5N, ``End`` (the newest on screen), twice. Printed per size:

- seeding time (messages/s);
- RSS of the app process (``VmRSS``) after it shows the newest message, after each sweep, and
  its peak (``VmHWM``);
- key-to-screen latency: from writing the key to the pty to the first bytes of the redraw
  (page-up p50/p95/max over every press; Home and End to the frame that shows their message);
- how far the sweeps went: the oldest message page-up reached, the newest page-down reached
  (the discussion pane is 8 rows: a page is ~2-3 messages, so 500 page-ups go ~1,250
  messages, past the ~1,000 the log holds at most; page-downs go a little less far each).

    python bench/discussion_paging.py [--counts 10000 100000] [--presses 500] [--sweeps 2]

Run from a checkout that is not installed (a worktree): put it first on PYTHONPATH; the app in
the pty gets the same PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from _common import pct
from agents_stream import TuiInPty

from collab.backend.functions import App
from collab.backend.ids import new_id
from collab.backend.server import DB_FILE
from collab.backend.storage import Storage, creation_time_ms
from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api

KEYS = {"home": b"\x1b[H", "end": b"\x1b[F", "pageup": b"\x1b[5~", "pagedown": b"\x1b[6~",
        "f4": b"\x1bOS", "shift+tab": b"\x1b[Z"}
WORDS = ("lease", "lock", "draft", "review", "merge", "agent", "budget", "token", "stream", "queue",
         "version", "artifact", "decision", "question", "thread")
NUMBER = re.compile(rb"message #(\d{6})")


def body(i: int) -> str:
    return f"message #{i:06d} " + " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(4 + i % 12))


def seed(data_dir: Path, space_id: str, actor_id: str, n: int) -> float:
    """``n`` messages of alice in the space, written in one transaction; returns seconds."""
    t0 = time.perf_counter()
    storage = Storage(data_dir / DB_FILE, App.from_package("collab.backend.model").schema)
    try:
        ts = storage.begin()
        number = storage.table_number("messages")
        for i in range(1, n + 1):
            doc_id = new_id(number)
            doc = {"spaceId": space_id, "authorId": actor_id, "authorKind": "human", "authorHandle": "alice",
                   "body": body(i), "mentions": [], "mentionsAll": False, "refs": [], "state": "done",
                   "decision": False, "openQuestion": False,
                   "_id": doc_id, "_creationTime": creation_time_ms(ts + (i - 1) * 1000)}
            storage.write("messages", doc_id, None, doc, ts)
        storage.commit(ts + n * 1000)  # later commits get later creation times
    finally:
        storage.close()
    return time.perf_counter() - t0


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def quiet(tui: TuiInPty, ms: float = 40, limit: float = 5.0) -> None:
    """Until the app has written nothing for ``ms``."""
    deadline = time.monotonic() + limit
    last, since = tui.bytes_out, time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.005)
        if tui.bytes_out != last:
            last, since = tui.bytes_out, time.monotonic()
        elif time.monotonic() - since >= ms / 1000:
            return


async def press(tui: TuiInPty, key: str, timeout: float = 2.0) -> float | None:
    """Key-to-screen latency in seconds (None: the screen did not change)."""
    await quiet(tui)
    before = tui.bytes_out
    t0 = time.perf_counter()
    os.write(tui.fd, KEYS[key])
    while time.perf_counter() - t0 < timeout:
        if tui.bytes_out != before:
            return time.perf_counter() - t0
        await asyncio.sleep(0.001)
    return None


async def to_marker(tui: TuiInPty, key: str, marker: bytes, timeout: float = 30.0) -> float:
    """Seconds from ``key`` to ``marker`` on screen."""
    await quiet(tui)
    tui.tail = b""
    t0 = time.perf_counter()
    os.write(tui.fd, KEYS[key])
    while marker not in tui.tail:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{key}: {marker!r} never showed: {tui.tail[-1500:]!r}")
        await asyncio.sleep(0.002)
    return time.perf_counter() - t0


async def one_size(n: int, presses: int, sweeps: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="collab-paging-"))
    backend = BackendProcess(tmp / "data", functions="collab.backend.model").start()
    tui: TuiInPty | None = None
    try:
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
            await c.mutation(api.actors.ensure, {})
            space_id = str(await c.mutation(api.spaces.create, {"name": "long"}))
            actor_id = str((await c.query(api.actors.me, {}))["_id"])
        backend.stop()
        seconds = seed(backend.data_dir, space_id, actor_id, n)
        backend.start()
        tui = TuiInPty(backend.url, backend.mint_token("alice"), "long", tmp / "alice", cols=100, rows=50)
        newest = f"message #{n:06d}".encode()
        if not await tui.wait_for([b"Discussion", newest], timeout=60):
            raise RuntimeError(f"the app did not show the newest message: {tui.tail[-2000:]!r}")
        await quiet(tui, 300)
        for key in ("f4", "shift+tab"):  # the composer, then the log above it
            await press(tui, key)
        rss = [rss_mb(tui.pid)[0]]
        ups: list[float] = []
        homes: list[float] = []
        ends: list[float] = []
        reached, down = n, 0
        for _ in range(sweeps):
            tui.tail = b""
            for _ in range(presses):
                lat = await press(tui, "pageup")
                if lat is not None:
                    ups.append(lat)
            await quiet(tui)
            seen = [int(m) for m in NUMBER.findall(tui.tail)]
            reached = min([reached, *seen])
            homes.append(await to_marker(tui, "home", b"message #000001 "))
            tui.tail = b""
            for _ in range(presses * 3 // 2):  # a page down moves ~2 messages, a page up ~3
                await press(tui, "pagedown")
            await quiet(tui)
            down = max([down, *(int(m) for m in NUMBER.findall(tui.tail))])
            ends.append(await to_marker(tui, "end", newest))
            await quiet(tui, 200)
            rss.append(rss_mb(tui.pid)[0])
        return {"n": n, "seed_s": seconds, "rss": rss, "hwm": rss_mb(tui.pid)[1], "ups": ups,
                "homes": homes, "ends": ends, "reached": reached, "down": down}
    finally:
        if tui is not None:
            tui.stop()
        backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--presses", type=int, default=500, help="page-ups (and page-downs) per sweep")
    ap.add_argument("--sweeps", type=int, default=2)
    args = ap.parse_args()
    results = []
    for n in args.counts:
        r = await one_size(n, args.presses, args.sweeps)
        results.append(r)
        ups = [x * 1000 for x in r["ups"]]  # type: ignore[union-attr]
        rss = r["rss"]
        print(f"{n:>7,} messages: seeded in {r['seed_s']:.1f} s ({n / r['seed_s']:,.0f}/s)")
        print(f"  app RSS (MB): at the newest {rss[0]:.1f}; after each sweep "  # type: ignore[index]
              f"{' '.join(f'{x:.1f}' for x in rss[1:])}; peak {r['hwm']:.1f}")  # type: ignore[union-attr]
        print(f"  page-up key-to-screen: p50 {pct(ups, 50):.1f} ms  p95 {pct(ups, 95):.1f} ms  "
              f"max {max(ups, default=float('nan')):.1f} ms  n={len(ups)}")
        print(f"  page-up from the newest reached message #{r['reached']}; page-down from #1 reached #{r['down']}")
        print(f"  Home to message #1 on screen: {' '.join(f'{x * 1000:.0f}' for x in r['homes'])} ms; "  # type: ignore[union-attr]
              f"End to the newest: {' '.join(f'{x * 1000:.0f}' for x in r['ends'])} ms")  # type: ignore[union-attr]
    if len(results) > 1:
        a, b = results[0], results[-1]
        ra, rb = a["rss"][-1], b["rss"][-1]  # type: ignore[index]
        print(f"RSS after the sweeps: {ra:.1f} MB at {a['n']:,} vs {rb:.1f} MB at {b['n']:,} messages "
              f"({rb - ra:+.1f} MB, {(rb / ra - 1) * 100:+.0f} %)")


if __name__ == "__main__":
    asyncio.run(main())
