"""``collab serve``: the embedded backend in the foreground, with the run worker in the same
process (DESIGN 2.5: "the embedded backend process runs a worker").

``backend/`` never imports ``flows/``, so the two are composed here: the backend starts, then
a :class:`collab.flows.worker.Worker` connects to it over loopback with the agents' own
identities (tokens minted by the backend's authority, refreshed before they expire). The
worker only runs with the collaboration functions (not with ``--functions`` test apps), and
``--no-worker`` leaves it out (e.g. when a separate ``collab worker`` serves the agents). A
worker that cannot start (bad config) is reported on stderr; the backend keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from collab.tui.commands.common import add_data_dir, data_dir_of

MODEL_APP = "collab.backend.model"
log = logging.getLogger("collab.serve")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from collab.backend.serve import add_serve_arguments

    parser = sub.add_parser("serve", help="run the embedded backend (and the agents' worker) in the foreground",
                            description="Run the embedded backend (SQLite, Convex sync protocol) in the foreground, "
                                        "with the run worker that executes the agents' runs.")
    add_data_dir(parser)
    add_serve_arguments(parser)
    parser.add_argument("--no-worker", action="store_true", help="do not run the agents' worker in this process")
    parser.set_defaults(handler=run)


def wants_worker(args: argparse.Namespace) -> bool:
    return not args.stop and not getattr(args, "no_worker", False) and args.functions in (None, MODEL_APP)


def run(args: argparse.Namespace) -> int:
    from collab.backend.serve import serve_from_args

    if not wants_worker(args):
        return serve_from_args(args, data_dir_of(args))
    return run_with_worker(args, data_dir_of(args))


async def _start_worker(url: str, authority: Any, config_path: Path | None) -> Any:
    from collab.config import load_config
    from collab.flows.worker import Worker

    config = load_config(config_path)
    names = {a.handle: a.name for a in config.enabled_agents()}

    def auth_for(handle: str) -> Any:
        async def fetch(force_refresh: bool) -> str:
            return str(authority.mint(handle, agent=True, name=names.get(handle), ttl_s=3600))
        return fetch

    worker = Worker(url, config, auth_for)
    await worker.start()
    return worker


async def _serve(data_dir: Path, options: Any, quiet: bool, config_path: Path | None) -> None:
    from collab.backend.discovery import remove_discovery, write_discovery
    from collab.backend.server import Backend

    backend = Backend(data_dir, None, options)
    await backend.start()
    write_discovery(data_dir, backend.url)
    if not quiet:
        print(f"collab backend listening on {backend.url} (data: {data_dir}, pid {os.getpid()})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = None
    try:
        try:
            worker = await _start_worker(backend.url, backend.authority, config_path)
        except Exception as exc:  # the backend is useful without agents: say why and go on
            print(f"collab serve: the agents' worker did not start: {exc}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        if worker is not None:
            await worker.stop(grace_s=2.0)
        remove_discovery(data_dir)
        await backend.stop()


def run_with_worker(args: argparse.Namespace, data_dir: Path) -> int:
    """``backend.serve.run_server`` plus the worker (same checks, same messages)."""
    from collab.backend.auth import InsecureKeyFile
    from collab.backend.discovery import AlreadyRunning, acquire_lock
    from collab.backend.server import ServerOptions

    data_dir = data_dir.expanduser().resolve()
    logging.basicConfig(level=os.environ.get("COLLAB_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        lock = acquire_lock(data_dir)
    except AlreadyRunning as exc:
        print(f"collab serve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"collab serve: cannot use data dir {data_dir}: {exc}", file=sys.stderr)
        return 1
    try:
        options = ServerOptions(host=args.host, port=args.port, allowed_origins=tuple(args.allow_origin),
                                durability=args.durability)
        asyncio.run(_serve(data_dir, options, args.quiet, getattr(args, "config", None)))
        return 0
    except InsecureKeyFile as exc:
        print(f"collab serve: refusing to start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"collab serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        lock.close()
