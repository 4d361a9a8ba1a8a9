"""Idle CPU of the collab app with 20 live queries open: the space screen's own (artifact
list, locks, members, presence, messages, notifications, the shown document) plus 13 more
documents watched, against a backend in another process. The app runs headless in this
process; CPU is this process's time over the window, so the backend is not counted.
Floor: < 1 % of a core.

    python bench/tui_idle_cpu.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT  # noqa: F401

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.config import load_config_text


async def run(seconds: float) -> None:
    from collab.screens.space import SpaceScreen
    from collab.tui.app import CollabApp
    from collab.tui.bootstrap import LaunchOptions

    tmp = Path(tempfile.mkdtemp(prefix="collab-idle-"))
    with BackendProcess(tmp / "b", functions="collab.backend.model") as backend:
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
            await c.mutation(api.actors.ensure, {})
            space = await c.mutation(api.spaces.create, {"name": "idle"})
            ids = [await c.mutation(api.artifacts.create, {"spaceId": space, "title": f"doc {i}", "kind": "markdown",
                                                           "content": f"# doc {i}\n" * 20}) for i in range(14)]
        config = load_config_text(f'[identity]\nhandle = "alice"\n[backend]\ndata_dir = "{backend.data_dir}"\n')
        app = CollabApp(LaunchOptions(space="idle"), config=config)
        async with app.run_test(size=(80, 24)) as pilot:
            while not isinstance(app.screen, SpaceScreen) or app.session is None:
                await pilot.pause(0.05)
            extra = [app.session.watch_artifact(i) for i in ids[1:]]
            for q in extra:
                await q.wait()
            await pilot.pause(1.0)
            n = app.session.client.subscription_count
            c0, t0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            c1, t1 = time.process_time(), time.perf_counter()
            pct = (c1 - c0) / (t1 - t0) * 100
            print(f"live queries: {n}; idle {t1 - t0:.1f} s; CPU {pct:.2f} % of a core "
                  f"(floor < 1 %: {'met' if pct < 1 else 'NOT met'})")
            for q in extra:
                q.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    asyncio.run(run(args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
