"""Reconnect after an outage: how long until every client is live again once the server listens.

100 clients (``ConvexClient``, one process, one event loop) each watch 10 queries of a backend
running in its own process. For each outage length the backend is killed with SIGKILL, kept
down for the outage, and started again on the same port and data dir. For every client we take
the time from the moment the restarted server listens (its discovery file appears: it is
written right after the socket is bound; polled every 5 ms) to the moment the client has applied
its first Transition on the new socket (that Transition carries all 10 of its queries: the
client is live again). Then one write per client checks that updates flow.

Both reconnect policies run in the same run, with fresh clients each: ``old`` (one cap of 16 s
for every failure, the JS client's rule and ours before issue 14) and ``new`` (the default:
1 s cap while no server listens).

    flock /tmp/collab-heavy.lock python bench/reconnect.py [--clients 100] [--subs 10] [--outages 0,5,10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import pct  # noqa: I001
from collab.backend.discovery import read_discovery
from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient, ReconnectPolicy

POLICIES: dict[str, ReconnectPolicy] = {
    "old": ReconnectPolicy(max_unreachable_s=16.0),  # one cap for everything, as before
    "new": ReconnectPolicy(),
}
ROUND_LIMIT_S = 90.0


class Watcher:
    """One client and the moment it was live again after the last restart."""

    def __init__(self, client: ConvexClient, names: list[str]) -> None:
        self.client = client
        self.names = names
        self.lives = [client.watch("counter:get", {"name": n}) for n in names]
        self.back_at: float | None = None
        self._armed_after = 0
        handle = client.handle_frame

        def timed(raw: str | bytes) -> None:  # the client's own frame handler, timed
            before = client.stats["transitions"]
            handle(raw)
            if (self.back_at is None and client.stats["transitions"] > before
                    and client.state.connection_count > self._armed_after):
                self.back_at = time.monotonic()

        client.handle_frame = timed  # type: ignore[method-assign]

    def arm(self) -> None:
        self.back_at = None
        self._armed_after = self.client.state.connection_count


def restart_and_time(backend: BackendProcess) -> float:
    """Start the (killed) backend again; return the monotonic time its discovery file, written
    right after it binds, names the new process. Runs in a thread: the clients keep running."""
    cmd = [sys.executable, "-m", "collab.backend", "--data-dir", str(backend.data_dir), "--port",
           str(backend.port), "--functions", backend.functions, "--quiet"]
    backend.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while True:
        found = read_discovery(backend.data_dir)
        if found is not None and found.pid == backend.proc.pid:
            return time.monotonic()
        if backend.proc.poll() is not None:
            err = backend.proc.stderr.read().decode() if backend.proc.stderr else ""
            raise RuntimeError(f"backend exited while starting: {err}")
        time.sleep(0.005)


async def run_policy(name: str, policy: ReconnectPolicy, backend: BackendProcess, clients: int, subs: int,
                     outages: list[float]) -> list[tuple[str, float, list[float], int]]:
    watchers: list[Watcher] = []
    for i in range(clients):
        client = ConvexClient(backend.url, reconnect=policy)
        await client.connect()
        watchers.append(Watcher(client, [f"{name}-{i}-{j}" for j in range(subs)]))
    for w in watchers:
        for live in w.lives:
            await live.wait()
    rows: list[tuple[str, float, list[float], int]] = []
    try:
        for round_no, outage in enumerate(outages, start=1):
            for w in watchers:
                w.arm()
            backend.kill()
            await asyncio.sleep(outage)
            listening_at = await asyncio.to_thread(restart_and_time, backend)
            deadline = time.monotonic() + ROUND_LIMIT_S
            while any(w.back_at is None for w in watchers) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            back = [w.back_at - listening_at for w in watchers if w.back_at is not None]
            missing = sum(1 for w in watchers if w.back_at is None)
            # Updates flow again: one write per client, each seen by its watcher.
            async with ConvexClient(backend.url) as writer:
                for w in watchers:
                    await writer.mutation("counter:inc", {"name": w.names[0]})
            for w in watchers:
                async for value in w.lives[0]:
                    if value == round_no:
                        break
            rows.append((name, outage, back, missing))
            print(f"  {name:>3} outage {outage:4.1f} s: {line(back, missing)}", flush=True)
    finally:
        for w in watchers:
            await w.client.close()
    return rows


def line(back: list[float], missing: int) -> str:
    if not back:
        return f"no client came back ({missing} missing)"
    return (f"p50 {pct(back, 50):5.2f} s  p95 {pct(back, 95):5.2f} s  max {max(back):5.2f} s  "
            f"mean {statistics.fmean(back):5.2f} s  n={len(back)}" + (f"  MISSING {missing}" if missing else ""))


async def main_async(args: argparse.Namespace) -> None:
    outages = [float(x) for x in args.outages.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        backend = BackendProcess(Path(tmp) / "data")
        backend.start()
        try:
            print(f"{args.clients} clients x {args.subs} subscriptions; time from the restarted server "
                  f"listening to each client live again (first Transition on its new socket)", flush=True)
            results: list[tuple[str, float, list[float], int]] = []
            for name in args.policies.split(","):
                results += await run_policy(name, POLICIES[name], backend, args.clients, args.subs, outages)
        finally:
            backend.stop()
    print("\npolicy  outage   p50     p95     max    (seconds after the server listens again)")
    for name, outage, back, missing in results:
        if back:
            print(f"{name:>6}  {outage:5.1f}  {pct(back, 50):6.2f}  {pct(back, 95):6.2f}  {max(back):6.2f}"
                  + (f"  missing {missing}" if missing else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--subs", type=int, default=10)
    parser.add_argument("--outages", default="0,5,10", help="seconds the server stays down, comma separated")
    parser.add_argument("--policies", default="old,new")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

