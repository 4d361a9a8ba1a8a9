"""Leaving the lock queue through the facade, as an agent's revision does when its run is
cancelled while it waits (``LockHold.wait_granted(cancel)``): the queue no longer holds it,
and the lock freed later goes to nobody."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collab.backend.testing import running_backend
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.backend_client.space import LeasePolicy, LockHold, Queued
from tests.live import until

pytestmark = pytest.mark.timeout(60)


async def test_a_cancelled_wait_leaves_the_queue(tmp_path: Path) -> None:
    async with running_backend(tmp_path / "data", functions="collab.backend.model") as b:
        async with ConvexClient(b.url, auth=b.mint_token("olga")) as owner, \
                ConvexClient(b.url, auth=b.mint_token("edwin", agent=True)) as agent:
            space = await owner.mutation(api.spaces.create, {"name": "s"})
            await owner.mutation(api.spaces.addMember, {"spaceId": space, "handle": "edwin", "kind": "agent",
                                                        "role": "editor"})
            art = str(await owner.mutation(api.artifacts.create, {"spaceId": space, "title": "Doc",
                                                                 "kind": "markdown", "content": "v1"}))
            me = await agent.mutation(api.actors.ensure, {})
            mine = await owner.mutation(api.locks.acquire, {"artifactId": art})
            hold = LockHold(agent, art, LeasePolicy(ttl_s=30, renew_every_s=10, stop_margin_s=2),
                            me_actor_id=str(me["_id"]), key_prefix="run:test:1")
            got = await hold.acquire(wait=True)
            assert isinstance(got, Queued) and got.position == 1
            cancel = asyncio.Event()
            waiting = asyncio.ensure_future(hold.wait_granted(cancel))
            with owner.watch(api.locks.queue, {"artifactId": art}) as queue:
                await until(lambda: queue.value and queue.value["queueLength"] == 1, queue, what="edwin queued")
                cancel.set()
                assert await waiting is False
                await until(lambda: queue.value["queueLength"] == 0, queue, what="edwin out of the queue")
            released = await owner.mutation(api.locks.release, {"artifactId": art, "token": mine["token"]})
            assert released["grantedTo"] is None  # nobody waits any more
            lock = (await owner.query(api.artifacts.get, {"artifactId": art}))["lock"]
            assert not lock["held"] and lock["queue"] == []
            audit = await owner.query(api.audit.list, {"spaceId": space, "artifactId": art})
            assert [e["data"]["handle"] for e in audit if e["type"] == "lock.left"] == ["edwin"]
