"""Agents streaming: 5 agents x 50 tokens/s revising 5 artifacts (or, ``--task reply``,
replying in the discussion), 3 clients watching.

Real processes: the embedded backend (collaboration functions) in one, the run worker
(``collab worker``, 5 agents, each its own identity) in another; the fake provider (loopback
OpenAI-compatible SSE server) and 3 watching clients in this one. Each watcher subscribes to
``drafts:get`` + ``streams:forArtifact`` of the 5 artifacts and shows ``merge(draft, tail)``,
as a document view does.

Figures:
- backend commits/s over the streaming window (floor: <= 100), and for reference what one
  write per token would be;
- token-to-pane latency: from the moment the fake server writes a token to the moment that
  token is visible in a watcher's LiveQuery value (every token of every stream, every watcher;
  floor p99 <= 100 ms), and the same per update (the oldest token each update revealed);
- CPU of the backend and of the worker process;
- one of the watching clients is the real ``collab`` app in a pty (80x24), joined to the
  bench's backend (``--url``, ``COLLAB_TOKEN``) on the bench's space, on the space screen:
  the document view shows "Piece 1" as its draft grows, the discussion the five requests.
  Its frame times come from ``COLLAB_FRAME_LOG`` (collab.tui.frame_log: layout + compositor
  + render + hand-off to the driver, per frame; floor p99 <= 16.7 ms), its CPU from /proc.
  The pty is drained continuously by a thread, as a terminal would.

With ``--task reply`` the agents answer in the discussion instead: the watchers follow
``messages:list`` + ``streams:forSpace`` (the discussion log's two inputs) and the TUI's
discussion log shows the five replies growing; the TUI's frame times are printed per second
too, so a frame cost that grows with the replies' length shows.

    python bench/agents_stream.py [--agents 5] [--tps 50] [--seconds 10] [--watchers 3] [--no-tui]
                                  [--task revise|reply]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

from _common import pct, summary_ms
from collab.backend.auth import Authority
from collab.backend.model._live import merge
from collab.backend.testing import free_port
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

HANDLES = ["rhea", "dara", "edwin", "quinn", "polly"]
TOKEN_CHARS = 6  # every token is "w0123 ": a visible length says how many tokens are shown

BACKEND = r'''
import asyncio, json, os, sys, time
from pathlib import Path
from collab.backend.functions import App
from collab.backend.server import Backend, ServerOptions

async def main(data_dir, port, stats_path):
    backend = Backend(Path(data_dir), App.from_package("collab.backend.model"), ServerOptions(port=int(port)))
    await backend.start()
    print(backend.url, flush=True)
    while True:
        t = os.times()
        Path(stats_path + ".tmp").write_text(json.dumps({
            "commits": backend.engine.stats["commits"], "query_runs": backend.engine.stats["query_runs"],
            "cpu": t.user + t.system, "t": time.monotonic()}))
        os.replace(stats_path + ".tmp", stats_path)
        await asyncio.sleep(0.1)

asyncio.run(main(*sys.argv[1:]))
'''


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config_toml(base_url: str, handles: list[str]) -> str:
    lines = ["[models]", 'default = "local"', ""]
    for h in handles:
        lines += [f"[models.aliases.m_{h}]", f'model = "openai/{h}"', f'api_base = "{base_url}"', ""]
    for h in handles:
        lines += ["[[agents]]", f'handle = "{h}"', f'model = "m_{h}"', ""]
    lines += ["[streaming]", "ui_interval_ms = 30", "persist_interval_ms = 250", ""]
    return "\n".join(lines)


ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")


def spawn_backend(prefix: str) -> tuple[Path, Path, Path, subprocess.Popen[str], str]:
    """The embedded backend in its own process on a fresh data folder (``BACKEND``): the temp
    folder, the data folder, its stats file, the process and the URL it printed."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    data_dir, stats = tmp / "data", tmp / "stats.json"
    backend = subprocess.Popen([sys.executable, "-c", BACKEND, str(data_dir), str(free_port()), str(stats)],
                               stdout=subprocess.PIPE, text=True)
    url = backend.stdout.readline().strip() if backend.stdout else ""
    return tmp, data_dir, stats, backend, url


async def bench_space(url: str, authority: Authority, handles: list[str]) -> tuple[ConvexClient, str]:
    """The owner's client (olga, connected) and a space "bench" with ``handles`` as editor agents."""
    owner = ConvexClient(url, auth=authority.mint("olga"))
    await owner.connect()
    space = await owner.mutation(api.spaces.create, {"name": "bench"})
    for h in handles:
        await owner.mutation(api.spaces.addMember, {"spaceId": space, "handle": h, "kind": "agent", "role": "editor"})
    return owner, str(space)


class TuiInPty:
    """The ``collab`` app in a pty, as a user would run it against this backend."""

    def __init__(self, url: str, token: str, space: str, home: Path, cols: int = 80, rows: int = 24) -> None:
        self.frame_log = home / "frames.log"
        home.mkdir(parents=True, exist_ok=True)
        env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
               "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"), "USER": home.name,
               "TERM": "xterm-256color", "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
               "COLLAB_TOKEN": token, "COLLAB_FRAME_LOG": str(self.frame_log)}
        if os.environ.get("PYTHONPATH"):  # a checkout run without installing it (a worktree)
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        collab = str(Path(sys.executable).with_name("collab"))
        # BENCH_TUI_WRAP runs the app under a profiler, e.g.
        # "python -m pyinstrument -r text -o /tmp/tui.txt" (the frame figures then include its cost).
        cmd = [*os.environ.get("BENCH_TUI_WRAP", "").split(), collab, "--url", url, "--space", space]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.execvpe(cmd[0], cmd, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.tail = b""  # the last output, escape sequences stripped
        self.bytes_out = 0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # Drain the pty like a terminal (a full pty buffer would stall the app's writer).
        while not self._stop.is_set():
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            self.bytes_out += len(chunk)
            if b"\x1b[6n" in chunk:  # cursor position query
                os.write(self.fd, b"\x1b[1;1R")
            self.tail = (self.tail + ANSI.sub(b"", chunk))[-20000:]

    async def wait_for(self, markers: list[bytes], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(m in self.tail for m in markers):
                return True
            await asyncio.sleep(0.05)
        return False

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def frames(self, t0: float, t1: float) -> list[tuple[float, float, bool, float]]:
        """(start, seconds, with layout, seconds in GC) of every frame that started in [t0, t1]."""
        out = []
        try:
            lines = self.frame_log.read_text().splitlines()
        except OSError:
            return []
        for line in lines:
            start, ms, layout, gc_ms = line.split()
            if t0 <= float(start) <= t1:
                out.append((float(start), float(ms) / 1000, layout == "1", float(gc_ms) / 1000))
        return out

    def stop(self) -> None:
        try:
            os.write(self.fd, b"\x11")  # ctrl+q: quit (flushes the frame log)
            for _ in range(40):
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.05)
            else:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except (OSError, ChildProcessError):
            pass
        self._stop.set()
        self._reader.join(1)
        os.close(self.fd)


class ReplyWatcher:
    """One watching terminal of the discussion: each agent's reply as the log shows it
    (``merge(body, tail)``), and when each token appeared."""

    def __init__(self, client: ConvexClient, space: str, handles: list[str],
                 emitted: dict[str, dict[int, float]]) -> None:
        self.emitted = emitted
        self.shown: dict[str, int] = {h: 0 for h in handles}
        self.token_lat: list[float] = []
        self.timeline: list[tuple[float, float]] = []
        self.update_lat: list[float] = []
        self.messages = client.watch(api.messages.list, {"spaceId": space})
        self.tails = client.watch(api.streams.forSpace, {"spaceId": space})
        self.messages.subscribe(self._changed)
        self.tails.subscribe(self._changed)

    def _changed(self, _: Any) -> None:
        now = time.monotonic()
        rows = {r.get("messageId"): r for r in self.tails.value or []}
        for m in self.messages.value or []:
            h = m["authorHandle"]
            if h not in self.shown:
                continue
            visible = len(merge(m["body"], rows.get(m["_id"]))) // TOKEN_CHARS
            times = self.emitted.get(h, {})
            first = True
            for i in range(self.shown[h], visible):
                if i in times:
                    self.token_lat.append(now - times[i])
                    self.timeline.append((times[i], now - times[i]))
                    if first:
                        self.update_lat.append(now - times[i])
                        first = False
            self.shown[h] = max(self.shown[h], visible)


class Watcher:
    """One watching terminal: what it shows per artifact, and when each token appeared."""

    def __init__(self, client: ConvexClient, artifacts: dict[str, str], emitted: dict[str, dict[int, float]]) -> None:
        self.client = client
        self.emitted = emitted
        self.shown: dict[str, int] = {a: 0 for a in artifacts}
        self.token_lat: list[float] = []
        self.timeline: list[tuple[float, float]] = []
        self.update_lat: list[float] = []
        self.updates = 0
        for art, model in artifacts.items():
            draft = client.watch(api.drafts.get, {"artifactId": art})
            tail = client.watch(api.streams.forArtifact, {"artifactId": art})
            cb = self._callback(art, model, draft, tail)
            draft.subscribe(cb)
            tail.subscribe(cb)

    def _callback(self, art: str, model: str, draft: Any, tail: Any) -> Any:
        def on_change(_: Any) -> None:
            now = time.monotonic()
            d = draft.value
            text = merge(d["content"] if d else "", tail.value)
            visible = len(text) // TOKEN_CHARS
            times = self.emitted.get(model, {})
            first = True
            for i in range(self.shown[art], visible):
                if i in times:
                    self.token_lat.append(now - times[i])
                    self.timeline.append((times[i], now - times[i]))
                    if first:
                        self.update_lat.append(now - times[i])
                        first = False
            self.updates += 1
            self.shown[art] = max(self.shown[art], visible)
        return on_change


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=5)
    ap.add_argument("--tps", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--watchers", type=int, default=3, help="watching clients, the TUI included")
    ap.add_argument("--no-tui", action="store_true", help="no TUI: every watcher is a plain client")
    ap.add_argument("--task", choices=["revise", "reply"], default="revise",
                    help="revise artifacts (document view) or reply in the discussion (log)")
    args = ap.parse_args()
    n_plain = args.watchers if args.no_tui else args.watchers - 1
    handles = HANDLES[: args.agents]
    tokens = int(args.tps * args.seconds)
    emitted: dict[str, dict[int, float]] = {h: {} for h in handles}

    def on_token(model: str, i: int, _text: str) -> None:
        emitted[model][i] = time.monotonic()

    tmp, data_dir, stats, backend, url = spawn_backend("bench-agents-")
    worker: subprocess.Popen[bytes] | None = None
    tui: TuiInPty | None = None
    tui_cpu0 = tui_cpu1 = 0.0
    clients: list[ConvexClient] = []
    with OpenAIStreamServer.in_thread(on_token=on_token) as server:
        try:
            for h in handles:
                server.script(h, Reply([f"w{i:04d} " for i in range(tokens)], tokens_per_second=args.tps))
            authority = Authority(data_dir)
            owner, space = await bench_space(url, authority, handles)
            clients.append(owner)
            artifacts = {}
            for i, h in enumerate(handles):
                art = await owner.mutation(api.artifacts.create, {"spaceId": space, "title": f"Piece {i + 1}",
                                                                  "kind": "document", "content": "draft me\n"})
                artifacts[art] = h
            watchers = []
            for n in range(n_plain):
                handle = f"watcher{n}"
                await owner.mutation(api.spaces.addMember, {"spaceId": space, "handle": handle, "kind": "human",
                                                            "role": "viewer"})
                c = ConvexClient(url, auth=authority.mint(handle))
                await c.connect()
                clients.append(c)
                watchers.append(Watcher(c, artifacts, emitted) if args.task == "revise"
                                else ReplyWatcher(c, space, handles, emitted))
            cfg = tmp / "config.toml"
            cfg.write_text(config_toml(server.base_url, handles))
            worker = subprocess.Popen(
                [sys.executable, "-m", "collab.tui.cli", "worker", "--url", url, "--data-dir", str(data_dir),
                 "--config", str(cfg), "--agents", ",".join(handles)],
                stdout=subprocess.DEVNULL, env={**os.environ, "XDG_CONFIG_HOME": str(tmp / "xdg")})
            if not args.no_tui:
                await owner.mutation(api.spaces.addMember, {"spaceId": space, "handle": "tui", "kind": "human",
                                                            "role": "viewer"})
                tui = TuiInPty(url, authority.mint("tui"), "bench", tmp / "tui")
                # On the space screen, live, showing Piece 1 (the tree's first, highlighted).
                if not await tui.wait_for([b"Artifacts", b"live", b"draft me"], timeout=30):
                    raise RuntimeError(f"the TUI did not reach the space screen: {tui.tail[-2000:]!r}")
            await asyncio.sleep(3.0)  # worker start-up (imports, connections) outside the window
            art_slugs = {a: (await owner.query(api.artifacts.get, {"artifactId": a}))["slug"] for a in artifacts}
            for art, h in artifacts.items():
                if args.task == "revise":
                    await owner.mutation(api.messages.post, {"spaceId": space, "task": "revise",
                                                             "body": f"@{h} rewrite #{art_slugs[art]}"})
                else:
                    await owner.mutation(api.messages.post, {"spaceId": space,
                                                             "body": f"@{h} tell us all about #{art_slugs[art]}"})
            # the window: from the first token to the last one of every stream
            while not any(emitted[h] for h in handles):
                await asyncio.sleep(0.01)
            s0, w0 = json.loads(stats.read_text()), proc_cpu(worker.pid)
            tui_cpu0 = tui.cpu() if tui else 0.0
            while not all(len(emitted[h]) == tokens for h in handles):
                await asyncio.sleep(0.05)
            s1, w1 = json.loads(stats.read_text()), proc_cpu(worker.pid)
            tui_cpu1 = tui.cpu() if tui else 0.0
            window = s1["t"] - s0["t"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                runs = await owner.query(api.runs.list, {"spaceId": space})
                if len(runs) == len(handles) and all(r["status"] in ("done", "failed") for r in runs):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
        finally:
            if tui is not None:
                tui.stop()
            if worker is not None:
                worker.terminate()
                worker.wait(10)
            for c in clients:
                await c.close()
            backend.kill()
            backend.wait()
    commits = s1["commits"] - s0["commits"]
    token_lat = [x for w in watchers for x in w.token_lat]
    update_lat = [x for w in watchers for x in w.update_lat]
    shown = sum(sum(w.shown.values()) for w in watchers)
    into = f"{len(handles)} artifacts" if args.task == "revise" else f"{len(handles)} discussion replies"
    print(f"agents streaming: {len(handles)} agents x {args.tps:g} tokens/s x {args.seconds:g} s into "
          f"{into}, {args.watchers} watching clients ({n_plain} plain"
          f"{'' if args.no_tui else ' + the TUI in a pty'}; window {window:.2f} s)")
    print(f"  runs: {sorted(r['status'] for r in runs)}")
    print(f"  backend commits/s      {commits / window:7.1f}   (floor <= 100; one write per token would be "
          f"{len(handles) * args.tps:.0f}/s + heartbeats)")
    print(f"  query re-runs/s        {(s1['query_runs'] - s0['query_runs']) / window:7.1f}")
    print(f"  token-to-pane (tokens) {summary_ms(token_lat)}   (floor p99 <= 100 ms)")
    print(f"  token-to-pane (updates){summary_ms(update_lat)}")
    t_first = min((t for w in watchers for t, _ in w.timeline), default=0.0)
    steady = [x for w in watchers for t, x in w.timeline if t - t_first >= 1.0]
    print(f"  ... after the 1st s    {summary_ms(steady)}   (start-up: 5 runs set up while the first streams)")
    print(f"  tokens shown           {shown} of {len(handles) * tokens * n_plain} (plain watchers)")
    print(f"  CPU backend            {100 * (s1['cpu'] - s0['cpu']) / window:6.1f} %")
    print(f"  CPU worker             {100 * (w1 - w0) / window:6.1f} %")
    frame_p99 = float("nan")
    if tui is not None:
        frames = tui.frames(s0["t"], s1["t"])
        secs = [f for _, f, _, _ in frames]
        frame_p99 = pct([x * 1000 for x in secs], 99)
        print(f"  TUI frame time         {summary_ms(secs)}   max {max(secs, default=0) * 1000:.2f} ms   "
              f"(floor p99 <= 16.7 ms; {len(frames) / window:.1f} frames/s, "
              f"{sum(1 for _, _, lay, _ in frames if lay)} with layout, "
              f"{sum(1 for *_, g in frames if g)} with a GC pass)")
        print(f"  CPU TUI                {100 * (tui_cpu1 - tui_cpu0) / window:6.1f} %   "
              f"({tui.bytes_out / 1024:.0f} KiB written to the pty in all)")
        per_second = []
        for sec in range(int(window) + 1):
            ms = [f * 1000 for t, f, _, _ in frames if sec <= t - s0["t"] < sec + 1]
            if ms:
                per_second.append(f"{pct(ms, 50):.1f}/{pct(ms, 99):.1f}")
        print(f"  TUI frame p50/p99 per second (ms): {' '.join(per_second)}")
    else:
        print("  TUI in a pty           not run (--no-tui)")
    if os.environ.get("BENCH_DEBUG"):
        t0 = min(t for w in watchers for t, _ in w.timeline)
        for sec in range(int(args.seconds) + 1):
            lat = [x * 1000 for w in watchers for t, x in w.timeline if sec <= t - t0 < sec + 1]
            if lat:
                print(f"    second {sec}: p50 {pct(lat, 50):6.1f} p99 {pct(lat, 99):6.1f} max {max(lat):6.1f} n={len(lat)}")
    ok = commits / window <= 100 and pct([x * 1000 for x in token_lat], 99) <= 100
    if tui is not None:
        ok = ok and frame_p99 <= 16.7
    print(f"  floors: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
