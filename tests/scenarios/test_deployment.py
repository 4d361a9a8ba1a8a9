"""Opt-in: the shared scenarios against a real Convex deployment running ``convex/``
(docs/CONVEX.md). Skipped unless ``COLLAB_SCENARIO_URL`` is set.

    COLLAB_SCENARIO_URL=https://<name>.convex.cloud \\
    COLLAB_SCENARIO_ADMIN_KEY='<deploy or admin key>' \\
    .venv/bin/python -m pytest tests/scenarios/test_deployment.py

Identities: the admin key acting as each scenario identity (what ``collab worker --admin-key``
does for agents), with the subject ``<kind>:<handle>:<run id>`` so runs and scenarios never see
each other's actors, notifications or runs on a shared deployment (expectations name subjects
with ``$subject``). The deployment's clock is real: scenarios with ``limits`` are skipped (a
deployment's limits cannot be lowered), ``advanceMs`` sleeps for real when a scenario advances
5 s or less in all (longer ones are skipped), and ``$now`` accepts values within a few seconds
of this machine's clock. CI never sets the variable: it proves convex/ on convex-test only.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from collab.backend_client import AdminKey, ConvexClient

from tests.scenarios._lang import State, load, scenario_files
from tests.scenarios._runner import run

URL = os.environ.get("COLLAB_SCENARIO_URL", "")
ADMIN_KEY = os.environ.get("COLLAB_SCENARIO_ADMIN_KEY", "")
MAX_REAL_WAIT_MS = 5_000
RUN_ID = uuid.uuid4().hex[:8]

pytestmark = pytest.mark.skipif(not URL, reason="set COLLAB_SCENARIO_URL to run the scenarios on a deployment")


class DeploymentDriver:
    def __init__(self, scenario_name: str, scenario: dict[str, Any]) -> None:
        self.identities: dict[str, str] = scenario.get("identities", {})
        self.tag = f"{RUN_ID}.{scenario_name}"
        self.clients: dict[str | None, ConvexClient] = {}

    def subject(self, handle: str) -> str:
        # the kind prefix is what the functions read the kind from (custom claims do not
        # travel with an acting-as identity)
        return f"{self.identities[handle]}:{handle}:{self.tag}"

    async def client(self, who: str | None) -> ConvexClient:
        if who not in self.clients:
            auth = None
            if who is not None:
                auth = AdminKey(ADMIN_KEY, acting_as={"subject": self.subject(who), "issuer": "https://collab.scenarios",
                                                      "preferredUsername": who, "name": who})
            client = ConvexClient(URL, auth=auth)
            await client.connect(timeout=60)
            self.clients[who] = client
        return self.clients[who]

    async def advance(self, ms: float) -> None:
        await asyncio.sleep(ms / 1000)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


class WallClockState(State):
    """``$now`` is this machine's clock at the step, give or take a few seconds."""

    def match(self, expected: Any, actual: Any, where: str = "result") -> None:
        self.now = time.time() * 1000
        super().match(expected, actual, where)


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.stem)
async def test_scenario_on_deployment(path: Path) -> None:
    if not ADMIN_KEY:
        pytest.fail("COLLAB_SCENARIO_URL is set: set COLLAB_SCENARIO_ADMIN_KEY too (docs/CONVEX.md)")
    scenario = load(path)
    if "limits" in scenario:
        pytest.skip("a deployment's transaction limits cannot be lowered for one scenario")
    waited = sum(float(s.get("advanceMs", 0)) for s in scenario["steps"])
    if waited > MAX_REAL_WAIT_MS:
        pytest.skip(f"the scenario advances the clock {waited / 1000:g} s; a deployment's clock is real")
    driver = DeploymentDriver(path.stem, scenario)
    state = WallClockState(subjects={h: driver.subject(h) for h in driver.identities}, clock_slack=(10_000.0, 10_000.0))
    try:
        await run(scenario, driver, state)
    finally:
        await driver.close()
