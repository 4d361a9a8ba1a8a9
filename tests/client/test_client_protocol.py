"""The client against a scripted server: exact frames, version chain, optimistic timing."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest

from collab.backend_client import (
    ConnectionLost,
    ConnectionState,
    ConvexClient,
    ConvexError,
    FunctionError,
    Int64,
    ReconnectPolicy,
)
from collab.wire.values import encode_ts

from .fake_server import FakeConn, FakeServer, updated

pytestmark = pytest.mark.timeout(20)

FAST = ReconnectPolicy(initial_client_s=0.01, initial_server_s=0.02, max_s=0.1)


async def open_client(server: FakeServer, **kw: Any) -> tuple[ConvexClient, FakeConn]:
    client = ConvexClient(server.url, reconnect=kw.pop("reconnect", FAST), **kw)
    await client.connect()
    conn = await server.next_conn()
    return client, conn


async def test_handshake_watch_and_dedupe() -> None:
    async with FakeServer() as server:
        client, conn = await open_client(server)
        try:
            first = await conn.recv()
            assert first["type"] == "Connect"
            assert first["sessionId"] == client.session_id
            assert first["connectionCount"] == 0
            assert conn.path == "/api/sync"
            empty = await conn.recv()
            assert empty == {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []}

            a = client.watch("counter:get", {"name": "x", "n": 1})
            b = client.watch("counter.js:get", {"n": 1.0, "name": "x"})  # same subscription
            mqs = await conn.recv()
            assert mqs["baseVersion"] == 1 and mqs["newVersion"] == 2
            assert mqs["modifications"] == [
                {"type": "Add", "queryId": 0, "udfPath": "counter:get", "args": [{"name": "x", "n": 1}], "journal": None}
            ]
            assert client.subscription_count == 1
            assert a.loading and b.loading
            await conn.transition([updated(0, 5)], qs=2, ts=100)
            assert await asyncio.wait_for(a.wait(), 2) == 5
            assert b.value == 5 and not b.loading
            a.close()
            assert client.subscription_count == 1
            b.close()
            rm = await conn.recv()
            assert rm["modifications"] == [{"type": "Remove", "queryId": 0}]
            assert (rm["baseVersion"], rm["newVersion"]) == (2, 3)
            assert not server.errors
        finally:
            await client.close()
        assert client.state.state is ConnectionState.CLOSED


async def test_values_are_convex_json_decoded() -> None:
    async with FakeServer() as server:
        client, conn = await open_client(server)
        try:
            live = client.watch("x:y", {"i": Int64(7), "b": b"\x00\x01"})
            add = (await conn.recv("ModifyQuerySet"))
            add = await conn.recv("ModifyQuerySet") if not add["modifications"] else add
            assert add["modifications"][0]["args"] == [{"i": {"$integer": "BwAAAAAAAAA="}, "b": {"$bytes": "AAE="}}]
            await conn.transition([updated(0, {"n": {"$integer": "AQAAAAAAAAA="}, "f": 1.5})], qs=2, ts=1)
            v = await live.wait()
            assert v == {"n": 1, "f": 1.5} and isinstance(v["n"], Int64)
        finally:
            await client.close()


async def _ready_counter(server: FakeServer, initial: Any = 0) -> tuple[ConvexClient, FakeConn, Any, list[Any]]:
    client, conn = await open_client(server)
    live = client.watch("counter:get", {"name": "c"})
    await conn.recv("ModifyQuerySet")
    await conn.recv("ModifyQuerySet")
    await conn.transition([updated(0, initial)], qs=2, ts=10)
    await live.wait()
    seen: list[Any] = []
    live.subscribe(seen.append)
    return client, conn, live, seen


async def _marker(client: ConvexClient, conn: FakeConn) -> Any:
    """A second subscription (query id 1) whose value the test sets: once the client shows a
    marker sent after some frame, it has handled that frame. A negative check ("the mutation
    is still pending") made after the marker holds however slow the machine is."""
    mark = client.watch("marker:get", {})
    await conn.recv("ModifyQuerySet")
    return mark


async def _seen(mark: Any, value: Any) -> None:
    await asyncio.wait_for(mark.wait(), 5)
    while mark.value != value:
        await asyncio.wait_for(anext(aiter(mark)), 5)


def bump(store: Any) -> None:
    store.set_query("counter:get", {"name": "c"}, store.get_query("counter:get", {"name": "c"}, 0) + 1)


async def test_optimistic_dropped_exactly_at_commit_ts() -> None:
    async with FakeServer() as server:
        client, conn, live, seen = await _ready_counter(server)
        mark = await _marker(client, conn)
        try:
            task = asyncio.create_task(client.mutation("counter:inc", {"name": "c", "by": 1}, optimistic=bump))
            await asyncio.sleep(0)
            assert live.value == 1 and seen == [1]  # at once, before any network
            m = await conn.recv("Mutation")
            assert m["requestId"] == 0 and m["args"] == [{"name": "c", "by": 1}]
            await conn.send({"type": "MutationResponse", "requestId": 0, "success": True, "result": 1, "ts": encode_ts(50), "logLines": []})
            # A Transition below the commit ts (the server's value changed, the marker too):
            # once the client shows the marker, it has applied it, and the optimistic value
            # is still on top.
            await conn.transition([updated(0, 0), updated(1, "ts 40")], qs=3, ts=40)
            await _seen(mark, "ts 40")
            assert not task.done() and live.value == 1
            # The Transition that includes the write (server now says 2: someone else also
            # incremented): dropped and replaced in the same frame, the mutation resolves.
            await conn.transition([updated(0, 2)], ts=50)
            assert await asyncio.wait_for(task, 2) == 1
            assert live.value == 2
            assert seen == [1, 2]  # never back to 0 in between
        finally:
            await client.close()


async def test_failed_mutation_rolls_back_and_raises_convex_error() -> None:
    async with FakeServer() as server:
        client, conn, live, seen = await _ready_counter(server, 3)
        try:
            task = asyncio.create_task(client.mutation("counter:fail", {"name": "c"}, optimistic=bump))
            await asyncio.sleep(0)
            assert live.value == 4
            await conn.recv("Mutation")
            await conn.send({"type": "MutationResponse", "requestId": 0, "success": False,
                             "result": "Uncaught ConvexError: nope", "logLines": [], "errorData": {"code": "LOCKED"}})
            with pytest.raises(ConvexError) as ei:
                await asyncio.wait_for(task, 2)
            assert ei.value.data == {"code": "LOCKED"}
            assert "counter:fail" in str(ei.value)
            assert live.value == 3 and seen == [4, 3]
            # plain failure
            t2 = asyncio.create_task(client.mutation("counter:crash", {}))
            await conn.recv("Mutation")
            await conn.send({"type": "MutationResponse", "requestId": 1, "success": False, "result": "boom", "logLines": []})
            with pytest.raises(FunctionError) as e2:
                await t2
            assert not isinstance(e2.value, ConvexError) and e2.value.message == "boom"
        finally:
            await client.close()


async def test_reconnect_replays_session_queries_and_mutations() -> None:
    async with FakeServer() as server:
        client, conn, live, seen = await _ready_counter(server, 1)
        states: list[ConnectionState] = []
        client.on_state_change(lambda s: states.append(s.state))
        try:
            task = asyncio.create_task(client.mutation("counter:inc", {"name": "c", "by": 1}, optimistic=bump))
            await conn.recv("Mutation")
            await conn.abort()
            conn2 = await server.next_conn()
            c = await conn2.recv()
            assert c["type"] == "Connect" and c["sessionId"] == client.session_id
            assert c["connectionCount"] == 1
            assert c["maxObservedTimestamp"] == encode_ts(10)
            q = await conn2.recv()
            assert q["baseVersion"] == 0 and q["newVersion"] == 1
            assert [m["queryId"] for m in q["modifications"]] == [0]
            m = await conn2.recv()
            assert m["type"] == "Mutation" and m["requestId"] == 0
            assert live.value == 2  # stale-but-optimistic while reconnecting, no flash to loading
            await conn2.send({"type": "MutationResponse", "requestId": 0, "success": True, "result": 2, "ts": encode_ts(60), "logLines": []})
            await conn2.transition([updated(0, 2)], qs=1, ts=60)  # a fresh chain from 0/0/0
            assert await asyncio.wait_for(task, 2) == 2
            assert seen == [2]
            # lost, then live again once the replayed requests were answered (attempts may repeat
            # the reconnecting state with a new retry time; nothing else comes in between)
            assert states[0] is ConnectionState.RECONNECTING and states[-1] is ConnectionState.LIVE
            assert set(states[:-1]) <= {ConnectionState.RECONNECTING, ConnectionState.CONNECTING}
            assert not server.errors
        finally:
            await client.close()


async def test_completed_but_unreflected_mutation_is_replayed() -> None:
    async with FakeServer() as server:
        client, conn, live, seen = await _ready_counter(server, 1)
        mark = await _marker(client, conn)
        try:
            task = asyncio.create_task(client.mutation("counter:inc", {"name": "c", "by": 1}))
            await conn.recv("Mutation")
            await conn.send({"type": "MutationResponse", "requestId": 0, "success": True, "result": 2, "ts": encode_ts(60), "logLines": []})
            # the marker (ts 55, below the commit) says the client has the response: answered
            # but not reflected yet
            await conn.transition([updated(1, "ts 55")], qs=3, ts=55)
            await _seen(mark, "ts 55")
            assert not task.done()
            await conn.abort()
            conn2 = await server.next_conn()
            m = await conn2.recv("Mutation")
            assert m["requestId"] == 0
            assert not task.done()
            await conn2.transition([updated(0, 2)], qs=1, ts=60)
            assert await asyncio.wait_for(task, 2) == 2
        finally:
            await client.close()


async def test_version_gap_forces_reconnect() -> None:
    async with FakeServer() as server:
        client, conn, live, seen = await _ready_counter(server, 1)
        try:
            await conn.send({"type": "Transition", "startVersion": conn.version(5, 0, 10),
                             "endVersion": conn.version(5, 0, 11), "modifications": []})
            conn2 = await server.next_conn()
            c = await conn2.recv("Connect")
            assert c["lastCloseReason"].startswith("ProtocolError")
            assert live.value == 1
        finally:
            await client.close()


async def test_silent_server_forces_reconnect() -> None:
    policy = ReconnectPolicy(initial_client_s=0.01, initial_server_s=0.02, max_s=0.1, server_inactivity_s=0.3)
    async with FakeServer() as server:
        client, conn = await open_client(server, reconnect=policy)
        try:
            for _ in range(3):  # pings keep it alive
                await asyncio.sleep(0.15)
                await conn.send({"type": "Ping"})
            assert server.conns.empty()
            conn2 = await server.next_conn(timeout=3)
            assert (await conn2.recv("Connect"))["lastCloseReason"] == "InactiveServer"
        finally:
            await client.close()


async def test_action_in_flight_fails_on_disconnect() -> None:
    async with FakeServer() as server:
        client, conn = await open_client(server)
        try:
            task = asyncio.create_task(client.action("slow:sleep", {"ms": 1000}))
            await conn.recv("Action")
            await conn.abort()
            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(task, 3)
            conn2 = await server.next_conn()
            await conn2.recv("ModifyQuerySet")
            t2 = asyncio.create_task(client.action("slow:sleep", {"ms": 1}))
            a = await conn2.recv("Action")
            assert a["requestId"] == 1
            await conn2.send({"type": "ActionResponse", "requestId": 1, "success": True, "result": "ok", "logLines": []})
            assert await t2 == "ok"
        finally:
            await client.close()


def _jwt(exp: float, iat: float, sub: str = "u") -> str:
    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return f"{b64({'alg': 'none'})}.{b64({'sub': sub, 'exp': exp, 'iat': iat})}.sig"


async def test_token_refreshed_before_expiry_on_live_socket() -> None:
    calls: list[bool] = []

    async def fetch(force: bool) -> str:
        calls.append(force)
        now = time.time()
        return _jwt(now + 1.0, now, sub=f"t{len(calls)}")

    async with FakeServer() as server:
        client, conn = await open_client(server, auth=fetch)
        try:
            await conn.recv("Connect")
            auth = await conn.recv()
            assert auth["type"] == "Authenticate" and auth["baseVersion"] == 0 and auth["tokenType"] == "User"
            await conn.recv("ModifyQuerySet")
            await conn.transition([], qs=1, identity=1, ts=5)  # confirms the token
            nxt = await conn.recv("Authenticate", timeout=3)  # refreshed at half its 1 s life
            assert nxt["baseVersion"] == 1 and nxt["value"] != auth["value"]
            assert calls == [False, True]
            await conn.transition([], identity=2)
            assert client.state.state is ConnectionState.LIVE
        finally:
            await client.close()


async def test_auth_error_refetches_and_reconnects() -> None:
    calls: list[bool] = []

    async def fetch(force: bool) -> str:
        calls.append(force)
        now = time.time()
        return _jwt(now + 3600, now, sub=f"t{len(calls)}")

    async with FakeServer() as server:
        client, conn = await open_client(server, auth=fetch)
        try:
            await conn.recv("ModifyQuerySet")
            await conn.transition([], qs=1, identity=1, ts=5)
            await conn.send({"type": "AuthError", "error": "token expired", "baseVersion": 1, "authUpdateAttempted": False})
            conn2 = await server.next_conn()
            await conn2.recv("Connect")
            a2 = await conn2.recv("Authenticate")
            assert calls == [False, True] and a2["baseVersion"] == 0
            # Fresh tokens refused again and again (no confirmation in between): after
            # MAX_AUTH_ATTEMPTS refetches, give up with AUTH_FAILED instead of looping.
            await conn2.send({"type": "AuthError", "error": "bad", "baseVersion": 0, "authUpdateAttempted": True})
            conn3 = await server.next_conn()
            await conn3.recv("Authenticate")
            await conn3.send({"type": "AuthError", "error": "bad", "baseVersion": 0, "authUpdateAttempted": True})
            st = await client.wait_for_state(ConnectionState.AUTH_FAILED, timeout=3)
            assert st.reason == "bad"
        finally:
            await client.close()


async def test_one_shot_query_and_close_fails_pending() -> None:
    async with FakeServer() as server:
        client, conn = await open_client(server)
        task = asyncio.create_task(client.query("messages:list", {"channel": "a"}))
        add = await conn.recv("ModifyQuerySet")
        add = add if add["modifications"] else await conn.recv("ModifyQuerySet")
        await conn.transition([updated(0, ["hi"])], qs=2, ts=3)
        assert await task == ["hi"]
        rm = await conn.recv("ModifyQuerySet")
        assert rm["modifications"] == [{"type": "Remove", "queryId": 0}]
        pending = asyncio.create_task(client.mutation("counter:inc", {"name": "x", "by": 1}))
        await conn.recv("Mutation")
        await client.close()
        from collab.backend_client import ClientClosed
        with pytest.raises(ClientClosed):
            await pending
