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
from pathlib import Path
from typing import Any

from collab.tui.commands.common import add_data_dir, data_dir_of

MODEL_APP = "collab.backend.model"


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

    companion = _worker_companion(getattr(args, "config", None)) if wants_worker(args) else None
    if companion is None and not args.stop and not args.quiet and args.functions in (None, MODEL_APP):
        print("agents' worker: off (--no-worker; run `collab worker` beside this backend)", flush=True)
    return serve_from_args(args, data_dir_of(args), companion)


def _worker_companion(config_path: Path | None) -> Any:
    async def start(backend: Any) -> Any:
        try:
            return await _start_worker(backend.local_url, backend.authority, config_path)
        except Exception as exc:  # reported by serve; the backend keeps serving
            raise RuntimeError(f"the agents' worker did not start: {exc}") from exc

    return start


class _StoppingWorker:
    def __init__(self, worker: Any) -> None:
        self.worker = worker

    def describe(self) -> str:
        """The startup line: which agents this process serves."""
        handles = " ".join(f"@{h}" for h in self.worker.agents)
        return f"agents' worker: {handles} ({len(self.worker.agents)} agent{'s' if len(self.worker.agents) != 1 else ''})"

    async def stop(self) -> None:
        await self.worker.stop(grace_s=2.0)


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
    return _StoppingWorker(worker)
