"""A client survives a frame it cannot read (issue 14, finding 1).

A Transition carrying ``"\\ud800"`` (JSON, but not valid Unicode: the client's strict parser
refuses it) used to end the socket; the server sent the same Transition on the next one and
the client looped with every other subscription and write stalled. Now the query whose result
cannot be read fails (its LiveQuery shows the error), it is logged once, and the connection,
the other queries and the writes go on.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from collab.backend_client import ConvexClient, ConvexError, FunctionError, ReconnectPolicy
from collab.backend.testing import running_backend
from collab.wire.values import encode_ts

from .fake_server import FakeConn, FakeServer, updated

pytestmark = pytest.mark.timeout(30)

FAST = ReconnectPolicy(initial_client_s=0.01, initial_server_s=0.02, max_s=0.1)
POISON = {"body": "\ud800"}  # json.dumps writes it as the escape "\ud800": the poison frame


async def eventually(pred: Any, what: str) -> None:
    while not pred():  # bounded by the test timeout; no wall-clock budget of our own
        await asyncio.sleep(0.005)


def decode_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot read" in r.getMessage()]


async def _two_queries(server: FakeServer) -> tuple[ConvexClient, FakeConn, Any, Any]:
    client = ConvexClient(server.url, reconnect=FAST)
    await client.connect()
    conn = await server.next_conn()
    bad, good = client.watch("messages:list", {"channel": "c"}), client.watch("counter:get", {"name": "n"})
    while conn.qs < 3:  # the empty query set, then one Add per watch
        msg = await conn.recv("ModifyQuerySet")
        conn.qs = msg["newVersion"]
    conn.qs = 0
    await conn.transition([updated(0, []), updated(1, 0)], qs=3, ts=10)
    await eventually(lambda: good.value == 0, "first values")
    return client, conn, bad, good


async def test_unreadable_result_fails_its_query_only_and_the_socket_stays(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="collab.backend_client")
    async with FakeServer() as server:
        client, conn, bad, good = await _two_queries(server)
        try:
            await conn.transition([updated(0, [POISON]), updated(1, 1)], ts=20)
            await eventually(lambda: good.value == 1, "the readable result of the same Transition")
            assert isinstance(bad.error, FunctionError) and "ClientDecodeError" in bad.error.message
            with pytest.raises(FunctionError):
                bad.get()
            # The server keeps sending it (a result changes, the poison stays): no reconnect,
            # one log line. The marker after it proves the second copy was processed.
            await conn.transition([updated(0, [POISON, {"body": "x"}])], ts=30)
            await conn.transition([updated(1, 2)], ts=40)
            await eventually(lambda: good.value == 2, "the marker Transition")
            assert len(decode_errors(caplog)) == 1, decode_errors(caplog)
            assert "messages:list" in decode_errors(caplog)[0]
            assert client.stats["reconnects"] == 0 and server.conns.empty()
            # Writes go on over the same socket.
            task = asyncio.create_task(client.mutation("counter:inc", {"name": "n"}))
            m = await conn.recv("Mutation")
            await conn.send({"type": "MutationResponse", "requestId": m["requestId"], "success": True,
                             "result": 3, "ts": encode_ts(50), "logLines": []})
            await conn.transition([updated(1, 3)], ts=50)
            assert await task == 3
            # Once the result is readable again the query recovers.
            await conn.transition([updated(0, [{"body": "fixed"}])], ts=60)
            await eventually(lambda: bad.value == [{"body": "fixed"}], "the readable result")
            assert bad.error is None
        finally:
            await client.close()


async def test_a_json_result_that_is_no_convex_value_fails_its_query(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeServer() as server:
        client, conn, bad, good = await _two_queries(server)
        try:
            await conn.transition([updated(0, {"n": {"$integer": "AQ=="}}), updated(1, 5)], ts=20)
            await eventually(lambda: good.value == 5, "the readable result")
            assert bad.error is not None and "ClientDecodeError" in bad.error.message
            assert client.stats["reconnects"] == 0 and server.conns.empty()
        finally:
            await client.close()


async def test_unreadable_responses_fail_their_request_only() -> None:
    async with FakeServer() as server:
        client, conn, bad, good = await _two_queries(server)
        try:
            task = asyncio.create_task(client.mutation("messages:send", {"body": "hi"}))
            m = await conn.recv("Mutation")
            await conn.send({"type": "MutationResponse", "requestId": m["requestId"], "success": True,
                             "result": "\udfff", "ts": encode_ts(20), "logLines": []})
            with pytest.raises(FunctionError, match="ClientDecodeError"):
                await task
            action = asyncio.create_task(client.action("slow:sleep", {"ms": 1}))
            a = await conn.recv("Action")
            await conn.send({"type": "ActionResponse", "requestId": a["requestId"], "success": True,
                             "result": {"$bytes": "not base64!"}, "logLines": []})
            with pytest.raises(FunctionError, match="ClientDecodeError"):
                await action
            # An error text that is not valid Unicode: the request fails, the socket stays.
            task = asyncio.create_task(client.mutation("counter:fail", {}))
            m = await conn.recv("Mutation")
            await conn.send({"type": "MutationResponse", "requestId": m["requestId"], "success": False,
                             "result": "bad \ud800 text", "logLines": []})
            with pytest.raises(FunctionError, match="ClientDecodeError"):
                await task
            assert client.stats["reconnects"] == 0 and server.conns.empty()
        finally:
            await client.close()


async def test_an_unreadable_frame_without_an_id_still_reconnects() -> None:
    """When the client cannot tell what a frame was about it cannot stay in sync: reconnect."""
    async with FakeServer() as server:
        client, conn, bad, good = await _two_queries(server)
        try:
            await conn.ws.send('{"type":"Transition","startVersion":{"querySet":3,"identity":0,"ts":"\\ud800"}}')
            conn2 = await server.next_conn()
            assert (await conn2.recv("Connect"))["lastCloseReason"].startswith("ProtocolError")
        finally:
            await client.close()


async def test_posting_a_lone_surrogate_to_a_real_backend(tmp_path: Path) -> None:
    """The issue's reproduction, end to end: the post is refused with INVALID_ARGUMENT naming
    ``body``; the watcher of that channel never reconnects and sees the next good post."""
    async with running_backend(tmp_path / "data") as backend:
        async with ConvexClient(backend.url, reconnect=FAST) as watcher, ConvexClient(backend.url) as poster:
            live = watcher.watch("messages:list", {"channel": "c"})
            assert await live.wait() == []
            with pytest.raises(ConvexError) as refused:
                await poster.mutation("messages:send", {"channel": "c", "body": "\ud800"})
            assert refused.value.data["code"] == "INVALID_ARGUMENT" and refused.value.data["field"] == "body"
            await poster.mutation("messages:send", {"channel": "c", "body": "after"})
            await eventually(lambda: [m["body"] for m in live.value or []] == ["after"], "the good post")
            assert watcher.stats["reconnects"] == 0 and poster.stats["reconnects"] == 0
