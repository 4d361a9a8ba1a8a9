from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.backend.server import ServerOptions
from collab.backend.sync import Limits
from collab.backend.testing import RunningBackend, running_backend
from tests.backend.strict import audit_server_output  # noqa: F401 - autouse: every frame parsed strictly


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[RunningBackend]:
    async with running_backend(tmp_path / "data") as b:
        yield b


@pytest.fixture
async def tight_backend(tmp_path: Path) -> AsyncIterator[RunningBackend]:
    """Small limits, fast pings: for limit and keepalive tests."""
    limits = Limits(max_frame_bytes=64 * 1024, max_pending_mutations=5, ping_interval_s=0.3, rate_per_s=50, rate_burst=100)
    async with running_backend(tmp_path / "data", options=ServerOptions(limits=limits)) as b:
        yield b
