"""An edit that lasts longer than the lease: the editor renews it (``locks.renew_every_s``)
while the user types, so the save after several lease lengths still lands."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.screens.editor import EditorScreen
from collab.screens.space import SpaceScreen

from .conftest import add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(90)

SHORT_LEASE = "[locks]\nlease_ttl_s = 5\nrenew_every_s = 1\nstop_margin_s = 1\n"


async def _one_doc(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    ids["doc"] = await add_doc(c, space_id, "Plan", "first text\n")


async def test_a_long_edit_keeps_its_lease_and_saves(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _one_doc)
    app = seeded.app(extra_config=SHORT_LEASE)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: space_ready(app, presence=False), what="the space")
        pane = app.screen.artifacts
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.hold is not None,
                       what="the lock")
        editor = app.screen
        await wait_for(pilot, lambda: (pane.current["lock"]["holder"] or {}).get("handle") == "alice",
                       what="the document to show the lock")
        first_end = pane.current["lock"]["holder"]["expiresAt"]
        ends: list[float] = [first_end]

        def outlived() -> bool:
            # the lease end as every terminal sees it (artifacts:get), moved by the renewals
            end = (pane.current["lock"]["holder"] or {}).get("expiresAt", 0)
            if end != ends[-1]:
                ends.append(end)
            return end >= first_end + 2 * 5_000  # two whole lease lengths past the first end
        await wait_for(pilot, outlived, timeout=60, what="the lease to be renewed past two lease lengths")
        assert len(ends) >= 3 and ends == sorted(ends)  # renewed again and again, never shortened
        assert editor.hold.lost_reason is None and editor.hold.token == 1
        await pilot.press("end", *"kept alive")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SpaceScreen), what="the save")
    async with ConvexClient(backend.url, auth=backend.mint_token("alice")) as c:
        art = await c.query(api.artifacts.get, {"artifactId": seeded.ids["doc"]})
        history = await c.query(api.artifacts.history, {"artifactId": seeded.ids["doc"]})
    assert art["content"] == "first textkept alive\n" and art["version"] == 2 and not art["lock"]["held"]
    assert history[0]["lockEpoch"] == 1  # saved under the first and only grant
