"""``collab serve``: run the embedded backend in the foreground until SIGINT / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from collab.backend.auth import InsecureKeyFile
from collab.backend.discovery import AlreadyRunning, acquire_lock, read_discovery, remove_discovery, write_discovery
from collab.backend.functions import App
from collab.backend.server import Backend, ServerOptions


class Companion(Protocol):
    """Something that runs beside the backend in its process (the agents' worker)."""

    async def stop(self) -> None: ...


# Started once the backend listens; returns the companion to stop before the backend stops.
StartCompanion = Callable[[Backend], Awaitable[Companion]]


async def _serve(data_dir: Path, app: App | None, options: ServerOptions, quiet: bool,
                 companion: StartCompanion | None = None) -> None:
    backend = Backend(data_dir, app, options)
    await backend.start()
    write_discovery(data_dir, backend.url)
    if not quiet:
        print(f"collab backend listening on {backend.url} (data: {data_dir}, pid {os.getpid()})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: Companion | None = None
    try:
        if companion is not None:
            try:
                running = await companion(backend)
            except Exception as exc:  # the backend is useful without its companion: say why, go on
                print(f"collab serve: {exc}", file=sys.stderr, flush=True)
            describe = getattr(running, "describe", None)
            if describe is not None and not quiet:
                print(describe(), flush=True)
        await stop.wait()
    finally:
        if running is not None:
            await running.stop()
        remove_discovery(data_dir)
        await backend.stop()


def run_server(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    functions: str | None = None,
    allowed_origins: tuple[str, ...] = (),
    durability: str = "normal",
    quiet: bool = False,
    companion: StartCompanion | None = None,
) -> int:
    """Returns the process exit code; every failure is one clear line on stderr."""
    data_dir = data_dir.expanduser().resolve()
    logging.basicConfig(level=os.environ.get("COLLAB_LOG_LEVEL", "WARNING"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        lock = acquire_lock(data_dir)
    except AlreadyRunning as exc:
        print(f"collab serve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"collab serve: cannot use data dir {data_dir}: {exc}", file=sys.stderr)
        return 1
    try:
        app = App.from_package(functions) if functions else None
        options = ServerOptions(host=host, port=port, allowed_origins=allowed_origins, durability=durability)
        asyncio.run(_serve(data_dir, app, options, quiet, companion))
        return 0
    except InsecureKeyFile as exc:
        print(f"collab serve: refusing to start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"collab serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        lock.close()


def stop_server(data_dir: Path, timeout_s: float = 10.0) -> int:
    import time

    data_dir = data_dir.expanduser().resolve()
    found = read_discovery(data_dir)
    if found is None:
        print(f"collab serve --stop: no backend is running for {data_dir}", file=sys.stderr)
        return 1
    os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_discovery(data_dir) is None:
            print(f"stopped the backend of {data_dir} (pid {found.pid})")
            return 0
        time.sleep(0.05)
    print(f"collab serve --stop: pid {found.pid} did not stop within {timeout_s:.0f} s", file=sys.stderr)
    return 1


def add_serve_arguments(parser: "argparse.ArgumentParser") -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port; see the discovery file)")
    parser.add_argument("--stop", action="store_true", help="stop the backend running for the data dir")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="let a browser page from ORIGIN connect (refused by default)")
    parser.add_argument("--durability", choices=["normal", "full"], default="normal",
                        help="full: fsync every commit (survives power loss, slower)")
    parser.add_argument("--functions", default=None, help=argparse.SUPPRESS)  # tests: another app package
    parser.add_argument("--quiet", action="store_true", help="no startup line")


def serve_from_args(args: "argparse.Namespace", data_dir: Path, companion: StartCompanion | None = None) -> int:
    if args.stop:
        return stop_server(data_dir)
    return run_server(
        data_dir, host=args.host, port=args.port, functions=args.functions,
        allowed_origins=tuple(args.allow_origin), durability=args.durability, quiet=args.quiet,
        companion=companion,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collab.backend", description="Run the embedded collab backend.")
    parser.add_argument("--data-dir", required=True, type=Path)
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    return serve_from_args(args, args.data_dir)
