"""Back quickly after an outage (issue 14, finding 4).

While no server listens, the wait between attempts stops growing at ``max_unreachable_s``
(1 s by default), so clients notice a restarted server within about a second whatever the
outage lasted; a server that is up but drops the session still gets the long backoff. The
figures (100 clients x 10 subscriptions, old policy vs new) are in ``bench/reconnect.py``;
here only the schedule is checked, which does not depend on the machine's load.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from collab.backend.server import ServerOptions
from collab.backend.testing import free_port, running_backend
from collab.backend_client import ConnectionState, ConvexClient, ReconnectPolicy
from collab.backend_client.connection import Backoff, ConnectionStatus

pytestmark = pytest.mark.timeout(60)


def test_default_policy_keeps_retrying_an_unreachable_server_about_every_second() -> None:
    policy = ReconnectPolicy()
    backoff = Backoff(policy, random.Random(14))
    waits = [backoff.next_delay(False, unreachable=True) for _ in range(30)]
    cap = policy.max_unreachable_s * (1 + policy.jitter)
    assert max(waits) <= cap <= 1.5
    assert min(waits) >= policy.initial_server_s * (1 - policy.jitter)
    assert max(waits) - min(waits) > 0.3  # jitter kept: returning clients are spread out


def test_a_server_that_drops_sessions_still_gets_the_long_backoff() -> None:
    policy = ReconnectPolicy()
    backoff = Backoff(policy, random.Random(14))
    waits = [backoff.next_delay(False) for _ in range(10)]
    assert max(waits) >= policy.max_s * (1 - policy.jitter) and max(waits) <= policy.max_s * (1 + policy.jitter)


async def test_client_waits_at_most_the_unreachable_cap_and_comes_back(tmp_path: Path) -> None:
    policy = ReconnectPolicy(initial_server_s=0.05, max_s=30.0, max_unreachable_s=0.1)
    port = free_port()
    options = ServerOptions(port=port)
    data = tmp_path / "data"
    scheduled: list[float] = []  # every wait the client chose, as it chose it

    def on_state(status: ConnectionStatus) -> None:
        if status.state is ConnectionState.RECONNECTING and status.next_retry_at is not None:
            scheduled.append(status.next_retry_at - time.time())

    async with running_backend(data, options=options) as backend:
        client = ConvexClient(backend.url, reconnect=policy)
        await client.connect()
        live = client.watch("counter:get", {"name": "back"})
        assert await live.wait() == 0
        client.on_state_change(on_state)
    try:
        # The server is gone. Wait (on the client's own progress, not on a clock) until it has
        # failed to connect many times: with doubling alone it would now wait 0.05 * 2**8 s.
        while client.state.attempt < 8:
            await client.wait_for_state(ConnectionState.RECONNECTING, ConnectionState.CONNECTING)
            await asyncio.sleep(0.01)
        assert len(scheduled) >= 8
        assert max(scheduled) <= 0.1 * 1.5 + 0.05, scheduled
        async with running_backend(data, options=options) as again:
            async with ConvexClient(again.url) as writer:
                await writer.mutation("counter:inc", {"name": "back", "by": 2})
            async for value in live:
                if value == 2:
                    break
            assert client.state.state is ConnectionState.LIVE
    finally:
        await client.close()
