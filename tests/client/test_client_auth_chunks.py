"""The client against the scripted server: the way out of AUTH_FAILED (``set_auth``), and a
Transition that arrives in ``TransitionChunk`` parts (what real deployments send for results
over ~5 MB), joined in order, or refused out of order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from collab.backend_client import ConnectionState, ConvexClient, ReconnectPolicy
from collab.wire.values import encode_ts

from .fake_server import FakeConn, FakeServer, updated

pytestmark = pytest.mark.timeout(20)

FAST = ReconnectPolicy(initial_client_s=0.01, initial_server_s=0.02, max_s=0.1)


async def _watching(server: FakeServer, **kw: Any) -> tuple[ConvexClient, FakeConn, Any]:
    client = ConvexClient(server.url, reconnect=FAST, **kw)
    await client.connect()
    conn = await server.next_conn()
    live = client.watch("counter:get", {"name": "c"})
    return client, conn, live


async def test_set_auth_after_an_auth_failure_goes_live_again() -> None:
    async with FakeServer() as server:
        client, conn, live = await _watching(server, auth="refused-token")
        try:
            auth = await conn.recv("Authenticate")
            assert auth["value"] == "refused-token"
            await conn.send({"type": "AuthError", "error": "token rejected", "baseVersion": 0,
                             "authUpdateAttempted": True})
            status = await client.wait_for_state(ConnectionState.AUTH_FAILED, timeout=5)
            assert status.reason == "token rejected"
            # a mutation made meanwhile waits: nothing goes out while the credentials are bad
            pending = asyncio.create_task(client.mutation("counter:inc", {"name": "c", "by": 1}))
            await client.set_auth("good-token")
            conn2 = await server.next_conn()
            assert (await conn2.recv())["type"] == "Connect"
            again = await conn2.recv()
            assert (again["type"], again["tokenType"], again["value"], again["baseVersion"]) == (
                "Authenticate", "User", "good-token", 0)
            query_set = await conn2.recv("ModifyQuerySet")
            assert [m["udfPath"] for m in query_set["modifications"]] == ["counter:get"]
            m = await conn2.recv("Mutation")
            await conn2.transition([updated(0, 1)], qs=1, identity=1, ts=5)  # the token confirmed
            await conn2.send({"type": "MutationResponse", "requestId": m["requestId"], "success": True,
                              "result": 1, "ts": encode_ts(5), "logLines": []})
            await conn2.transition([], ts=5)
            assert await asyncio.wait_for(pending, 5) == 1
            assert live.value == 1
            assert client.state.state is ConnectionState.LIVE
            assert not server.errors
        finally:
            await client.close()


def _chunks(transition: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    text = json.dumps(transition)
    size = -(-len(text) // parts)
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    return [{"type": "TransitionChunk", "chunk": p, "partNumber": n, "totalParts": len(pieces),
             "transitionId": str(len(text))} for n, p in enumerate(pieces)]


def _transition(conn: FakeConn, value: Any, *, qs: int, ts: int) -> dict[str, Any]:
    start = conn.version(conn.qs, conn.identity, conn.ts)
    conn.qs, conn.ts = qs, ts
    return {"type": "Transition", "startVersion": start, "endVersion": conn.version(qs, conn.identity, ts),
            "modifications": [updated(0, value)]}


async def test_a_transition_in_chunks_is_joined() -> None:
    big = {"rows": ["x" * 1000 for _ in range(50)], "n": {"$integer": "AQAAAAAAAAA="}}
    async with FakeServer() as server:
        client, conn, live = await _watching(server)
        try:
            await conn.recv("ModifyQuerySet")
            await conn.recv("ModifyQuerySet")
            parts = _chunks(_transition(conn, big, qs=2, ts=10), 4)
            assert len(parts) == 4
            seen = client.stats["frames"]
            for part in parts[:-1]:
                await conn.send(part)
            while client.stats["frames"] < seen + 3:  # the client has read the three parts
                await asyncio.sleep(0.01)
            assert live.loading  # and applied nothing before the last part
            await conn.send(parts[-1])
            value = await asyncio.wait_for(live.wait(), 5)
            assert value["rows"] == big["rows"] and value["n"] == 1  # special values decoded too
            # the next plain Transition continues the version chain from the joined one
            await conn.transition([updated(0, {"rows": [], "n": 2.0})], ts=11)
            await asyncio.wait_for(anext(aiter(live)), 5)
            assert live.value == {"rows": [], "n": 2.0}
            assert client.state.state is ConnectionState.LIVE and client.state.connection_count == 1
        finally:
            await client.close()


async def test_chunks_out_of_order_force_a_reconnect() -> None:
    async with FakeServer() as server:
        client, conn, live = await _watching(server)
        try:
            await conn.recv("ModifyQuerySet")
            await conn.recv("ModifyQuerySet")
            parts = _chunks(_transition(conn, "v", qs=2, ts=10), 3)
            await conn.send(parts[1])  # part 1 before part 0: a protocol error
            conn2 = await server.next_conn()
            connect = await conn2.recv("Connect")
            assert connect["lastCloseReason"].startswith("ProtocolError") and "out of order" in connect["lastCloseReason"]
            assert live.loading
        finally:
            await client.close()
