"""Fixtures for the TUI tests: a real embedded backend (``collab serve`` in a child process,
so snapshot tests, which run the app in their own event loop, can share it), spaces seeded
through the real client, and apps whose clock is frozen so "2m ago" never changes."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.css.query import NoMatches

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.config import Config, load_config_text
from collab.tui.app import CollabApp
from collab.tui.bootstrap import LaunchOptions

_names = itertools.count()


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    proc = BackendProcess(tmp_path_factory.mktemp("tui-backend"), functions="collab.backend.model")
    with proc:
        yield proc


@pytest.fixture
def fresh_backend(tmp_path: Path) -> Iterator[BackendProcess]:
    """One backend per test, for snapshots: the space can have the same name every time."""
    with BackendProcess(tmp_path / "backend", functions="collab.backend.model") as proc:
        yield proc


def make_config(data_dir: Path, handle: str = "alice", extra: str = "") -> Config:
    text = f'[identity]\nhandle = "{handle}"\n[backend]\ndata_dir = "{data_dir}"\n{extra}'
    return load_config_text(text, data_dir / "config.toml")


@dataclass
class Seeded:
    space: str
    space_id: str
    ids: dict[str, str]
    frozen_now: float
    backend: BackendProcess

    def app(self, handle: str = "alice", extra_config: str = "") -> CollabApp:
        config = make_config(self.backend.data_dir, handle, extra_config)
        now = self.frozen_now
        return CollabApp(LaunchOptions(space=self.space), config=config, clock=lambda: now)


Seeder = Callable[[ConvexClient, str, dict[str, str], BackendProcess], Awaitable[None]]


def seed_space(backend: BackendProcess, seeder: Seeder | None = None, name: str | None = None) -> Seeded:
    """A fresh space owned by alice (one per test: presence rows never leak between tests)."""
    name = name or f"space-{next(_names)}"

    async def go() -> tuple[str, dict[str, str]]:
        async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
            await c.mutation(api.actors.ensure, {"name": "alice"})
            space_id = str(await c.mutation(api.spaces.create, {"name": name}))
            ids: dict[str, str] = {}
            if seeder is not None:
                await seeder(c, space_id, ids, backend)
            return space_id, ids

    space_id, ids = asyncio.run(go())
    # Every timestamp on screen is within the seeding window; 150 s later they all read "2m".
    return Seeded(name, space_id, ids, time.time() + 150, backend)


async def add_doc(c: ConvexClient, space_id: str, title: str, content: str, **kw: Any) -> str:
    return str(await c.mutation(api.artifacts.create, {"spaceId": space_id, "title": title, "kind": kw.pop("kind", "markdown"),
                                                        "content": content, **kw}))


async def wait_for(pilot: Any, cond: Callable[[], Any], timeout: float = 30.0, *, what: str | None = None) -> None:
    """Let the app run until ``cond()`` holds (live data arrived), re-checking between frames.

    While the screen or widget ``cond`` looks at is not there yet, ``cond`` may raise an
    AttributeError, a LookupError or Textual's NoMatches (a ``query_one`` on a screen still
    being composed): that counts as "not yet". Anything else it raises is a bug in the app or
    the test, and is raised at once. The
    timeout only turns a hang into a failure that says what was awaited (and the last "not
    yet" error); it is not a budget for a quiet machine."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if cond():
                await pilot.pause()
                return
            last = None
        except (AttributeError, LookupError, NoMatches) as exc:
            last = exc
        await pilot.pause(0.05)
    label = what or getattr(cond, "__qualname__", "the condition")
    raise AssertionError(f"{label} did not happen within {timeout:.0f} s"
                         + (f" (last check raised {last!r})" if last is not None else ""))


def space_ready(app: CollabApp, *, presence: bool = True, messages: int = 0) -> bool:
    from collab.screens.space import SpaceScreen
    from collab.widgets.document_view import DocumentView
    from collab.widgets.message_log import MessageLog
    from collab.widgets.presence_bar import PresenceBar

    screen = app.screen
    if not isinstance(screen, SpaceScreen):
        return False
    bar = screen.query_one(PresenceBar)
    if len(bar.members) < 6 or (presence and not bar.presence):
        return False
    artifacts = screen.artifacts.artifacts
    if artifacts and screen.query_one(DocumentView).artifact is None:
        return False
    if presence and artifacts and not any(r.get("artifactId") for r in bar.presence):
        return False  # the heartbeat naming the viewed artifact has not come back yet
    return len(screen.query_one(MessageLog).messages) >= messages
