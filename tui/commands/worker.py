"""``collab worker``: the run worker next to a backend (docs/DESIGN.md 2.5).

``collab serve`` already runs one in the embedded backend's process; this command is for a
Convex deployment running ``convex/`` (docs/CONVEX.md), another machine's ``collab serve --host
--no-worker``, or a second worker beside the embedded backend. Each agent acts with its
own identity, from (first match):

1. ``--token HANDLE=JWT`` (repeatable) or ``COLLAB_AGENT_TOKEN_<HANDLE>``;
2. ``--admin-key KEY`` / ``COLLAB_ADMIN_KEY``: the admin key acting as ``agent:<handle>``;
3. the data dir's signing key (``--data-dir``): tokens minted (and refreshed) locally, for the
   embedded backend of that data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collab.tui.commands.common import add_data_dir, data_dir_of


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("worker", help="run the agents' run worker against a backend",
                            description="Claim and execute agent runs (discussion replies, revisions) "
                                        "for the configured agents, each with its own identity.")
    add_data_dir(parser)
    parser.add_argument("--url", default=argparse.SUPPRESS,
                        help="backend URL (default: the embedded backend running for the data dir)")
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    parser.add_argument("--token", action="append", default=[], metavar="HANDLE=JWT",
                        help="an agent's token (repeatable); env COLLAB_AGENT_TOKEN_<HANDLE>")
    parser.add_argument("--admin-key", default=None,
                        help="admin key, used acting as each agent (env COLLAB_ADMIN_KEY)")
    parser.add_argument("--agents", default=None, help="comma-separated handles (default: the enabled agents)")
    parser.add_argument("--max-runs", type=int, default=5, help="runs at once (default 5)")
    parser.add_argument("--run-lease-ms", type=float, default=15_000,
                        help="claim lease; a dead worker's run fails this long after its last heartbeat")
    parser.set_defaults(handler=run)


def auth_source(args: argparse.Namespace, data_dir: Path, names: dict[str, str]) -> Callable[[str], Any]:
    """``handle -> credentials`` from the flags, the environment or the data dir's key."""
    from collab.backend_client import AdminKey

    tokens: dict[str, str] = {}
    for item in args.token:
        handle, sep, token = item.partition("=")
        if not sep:
            raise SystemExit(f"collab worker: --token wants HANDLE=JWT (got {item!r})")
        tokens[handle] = token
    admin_key = args.admin_key or os.environ.get("COLLAB_ADMIN_KEY")
    authority = None

    def auth_for(handle: str) -> Any:
        nonlocal authority
        token = tokens.get(handle) or os.environ.get(f"COLLAB_AGENT_TOKEN_{handle.upper()}")
        if token:
            return token
        if admin_key:
            return AdminKey(admin_key, acting_as={"subject": f"agent:{handle}", "preferredUsername": handle,
                                                  "name": names.get(handle, handle), "collab_kind": "agent"})
        if authority is None:
            from collab.backend.auth import Authority

            authority = Authority(data_dir.resolve())
        auth = authority

        async def fetch(force_refresh: bool) -> str:
            # short-lived tokens, minted again before they expire (the client asks ahead of exp)
            return auth.mint(handle, agent=True, name=names.get(handle), ttl_s=3600)

        return fetch

    return auth_for


def run(args: argparse.Namespace) -> int:
    from collab.config import ConfigError, load_config
    from collab.flows.worker import Worker

    logging.basicConfig(level=os.environ.get("COLLAB_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    data_dir = data_dir_of(args)
    url = getattr(args, "url", None)
    if not url:
        from collab.backend.discovery import read_discovery

        found = read_discovery(data_dir.resolve())
        if found is None:
            print(f"collab worker: no --url and no backend running for {data_dir}", file=sys.stderr)
            return 1
        url = found.url
    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"collab worker: {exc}", file=sys.stderr)
        return 2
    agents = config.enabled_agents()
    if args.agents:
        wanted = [h.strip() for h in args.agents.split(",") if h.strip()]
        try:
            agents = [config.agent(h) for h in wanted]
        except KeyError as exc:
            print(f"collab worker: {exc.args[0]}", file=sys.stderr)
            return 2
    names = {a.handle: a.name for a in agents}
    worker = Worker(url, config, auth_source(args, data_dir, names), agents=agents, max_runs=args.max_runs,
                    lease_ms=args.run_lease_ms)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.start()
        print(f"collab worker: serving {', '.join('@' + a.handle for a in agents)} on {url}", flush=True)
        try:
            await stop.wait()
        finally:
            await worker.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"collab worker: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    return 0
