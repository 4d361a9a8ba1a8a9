"""Every shared scenario against the embedded backend: an in-process
``collab.backend.server.Backend`` serving ``collab.backend.model``, called over a real socket
through ``collab.backend_client``.

The clock: the engine's clock is injectable (``Engine.now_ms``, the same hook the model tests'
harness uses); this runner points it at the scenario's fake clock, and ``advanceMs`` moves that
clock and runs the due scheduled functions (``Engine.run_due_jobs``, what the scheduler loop
calls). Nothing in the server is test-only: the runner sets these attributes on its own
in-process instance, which `collab serve` never does. Limits: a scenario's ``limits`` lower
``Engine.limits`` the same way (convex-test's ``transactionLimits`` on the other side).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from collab.backend.limits import TransactionLimits
from collab.backend.server import Backend, ServerOptions
from collab.backend_client import ConvexClient

from tests.scenarios._lang import T0, State, load, scenario_files
from tests.scenarios._runner import registry, run


class EmbeddedDriver:
    def __init__(self, data_dir: Path, scenario: dict[str, Any]) -> None:
        self.backend = Backend(data_dir, registry(), ServerOptions())
        self.clock = T0
        self.backend.engine.now_ms = lambda: self.clock
        if "limits" in scenario:
            self.backend.engine.limits = TransactionLimits.from_convex_test(scenario["limits"])
        self.identities: dict[str, str] = scenario.get("identities", {})
        self.clients: dict[str | None, ConvexClient] = {}

    async def start(self) -> None:
        await self.backend.start()

    async def stop(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.backend.stop()

    async def client(self, who: str | None) -> ConvexClient:
        if who not in self.clients:
            auth = None
            if who is not None:
                kind = self.identities[who]
                auth = self.backend.authority.mint(who, agent=kind == "agent")
            client = ConvexClient(self.backend.url, auth=auth)
            await client.connect(timeout=30)
            self.clients[who] = client
        return self.clients[who]

    async def advance(self, ms: float) -> None:
        self.clock += ms
        # Runs on the loop thread like the scheduler loop: every job due by the new clock, and
        # the jobs those schedule that are due too.
        self.backend.engine.run_due_jobs()


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.stem)
async def test_scenario(path: Path, tmp_path: Path) -> None:
    scenario = load(path)
    driver = EmbeddedDriver(tmp_path / "data", scenario)
    await driver.start()
    state = State(subjects={h: f"{kind}:{h}" for h, kind in scenario.get("identities", {}).items()})
    try:
        await run(scenario, driver, state)
    finally:
        await driver.stop()
