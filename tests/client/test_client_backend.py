"""The client against the real embedded backend, over real sockets (issue 3 "must show")."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from collab.backend_client import (
    AdminKey,
    ConnectionState,
    ConvexClient,
    ConvexError,
    FunctionError,
    ReconnectPolicy,
)
from collab.backend_client.http import HttpClient

from .proxy import CuttableProxy

testing = pytest.importorskip("collab.backend.testing")

pytestmark = pytest.mark.timeout(60)

FAST = ReconnectPolicy(initial_client_s=0.05, initial_server_s=0.1, max_s=0.5)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Any]:
    cm = testing.running_backend(tmp_path)
    b = await cm.__aenter__()
    try:
        yield b
    finally:
        try:
            await asyncio.wait_for(cm.__aexit__(None, None, None), 3)
        except asyncio.TimeoutError:
            # Backend.stop() can hang on a server-side task that swallowed its cancellation
            # (reported to the lead: SyncSession._writer / asyncio.wait_for on 3.11). Not a
            # client defect; don't fail the client test on it.
            warnings.warn("embedded backend did not stop within 3 s")


async def eventually(pred: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_second_clients_mutation_reaches_first_clients_live_query(backend: Any) -> None:
    async with ConvexClient(backend.url, reconnect=FAST) as a, ConvexClient(backend.url, reconnect=FAST) as b:
        live = a.watch("counter:get", {"name": "shared"})
        assert await live.wait() == 0
        seen: list[Any] = []
        live.subscribe(seen.append)
        assert await b.mutation("counter:inc", {"name": "shared", "by": 2}) == 2
        await eventually(lambda: live.value == 2, what="A to see B's write")
        assert seen == [2]
        msgs = a.watch("messages:list", {"channel": "c"})
        await msgs.wait()
        await b.mutation("messages:send", {"channel": "c", "body": "hello"})
        await eventually(lambda: bool(msgs.value), what="message to arrive")
        assert "hello" in repr(msgs.value)


async def test_optimistic_value_then_server_value_without_gap(backend: Any) -> None:
    async with ConvexClient(backend.url, reconnect=FAST) as client:
        live = client.watch("counter:get", {"name": "opt"})
        seen: list[Any] = [await live.wait()]
        live.subscribe(seen.append)

        # A deliberately wrong optimistic guess (+100) makes the hand-over visible: the
        # sequence must go 0 -> 100 -> 1, never back to 0 (no frame without either value).
        def guess(store: Any) -> None:
            store.set_query("counter:get", {"name": "opt"}, store.get_query("counter:get", {"name": "opt"}, 0) + 100)

        task = asyncio.create_task(client.mutation("counter:inc", {"name": "opt", "by": 1}, optimistic=guess))
        await asyncio.sleep(0)
        assert live.value == 100  # shown at once, before any network round trip
        assert await task == 1
        assert live.value == 1  # the mutation returns only once its write is visible
        assert seen == [0, 100, 1]

        # A correct guess: the server value equals it, so watchers see exactly one change.
        seen.clear()
        def plus_one(store: Any) -> None:
            store.set_query("counter:get", {"name": "opt"}, store.get_query("counter:get", {"name": "opt"}, 0) + 1)
        assert await client.mutation("counter:inc", {"name": "opt", "by": 1}, optimistic=plus_one) == 2
        assert seen == [2]


async def test_rejected_mutation_rolls_back_and_raises(backend: Any) -> None:
    async with ConvexClient(backend.url, reconnect=FAST) as client:
        live = client.watch("counter:get", {"name": "rb"})
        seen: list[Any] = [await live.wait()]
        live.subscribe(seen.append)

        def guess(store: Any) -> None:
            store.set_query("counter:get", {"name": "rb"}, 42)

        with pytest.raises(ConvexError) as ei:
            await client.mutation("counter:fail", {"data": {"code": "NOPE", "n": 1}}, optimistic=guess)
        assert ei.value.data == {"code": "NOPE", "n": 1}
        assert "counter:fail" in str(ei.value)
        assert live.value == 0 and seen == [0, 42, 0]

        with pytest.raises(FunctionError) as e2:
            await client.mutation("counter:crash", {}, optimistic=guess)
        assert not isinstance(e2.value, ConvexError)
        assert live.value == 0 and seen == [0, 42, 0, 42, 0]

        with pytest.raises(FunctionError):
            await client.query("nosuch:fn", {})


async def test_one_shot_query_action_and_http(backend: Any) -> None:
    async with ConvexClient(backend.url, reconnect=FAST) as client:
        await client.mutation("counter:inc", {"name": "h", "by": 3})
        assert await client.query("counter:get", {"name": "h"}) == 3
        assert client.subscription_count == 0
        await client.action("slow:sleep", {"ms": 10})
    async with HttpClient(backend.url) as http:
        assert await http.query("counter:get", {"name": "h"}) == 3
        assert await http.mutation("counter:inc", {"name": "h", "by": 1}) == 4
        with pytest.raises(ConvexError) as ei:
            await http.mutation("counter:fail", {"data": {"x": 1}})
        assert ei.value.data == {"x": 1}
        reg = await http.registry()
        assert reg.get("counter:get") == "query" and reg.get("counter:inc") == "mutation"


async def test_socket_cut_after_commit_before_reply_applies_once(backend: Any) -> None:
    host, port = backend.url.split("://")[1].split(":")
    async with CuttableProxy(host, int(port)) as proxy:
        async with ConvexClient(proxy.url, reconnect=FAST) as client:
            live = client.watch("counter:get", {"name": "cut"})
            await live.wait()
            # Swallow the first MutationResponse (the server has committed by then) and kill
            # the TCP connection: the client cannot know whether its mutation ran.
            proxy.cut_when(lambda chunk: b'"MutationResponse"' in chunk)
            result = await asyncio.wait_for(client.mutation("counter:inc", {"name": "cut", "by": 1}), 20)
            assert proxy.cut.is_set()
            assert result == 1
            assert live.value == 1
    async with ConvexClient(backend.url) as check:
        assert await check.query("counter:get", {"name": "cut"}) == 1  # exactly once


async def test_auth_expiry_refetches_token_and_subscriptions_continue(backend: Any) -> None:
    calls: list[bool] = []

    async def fetch(force: bool) -> str:
        calls.append(force)
        return backend.mint_token("alice", ttl_s=2)

    async with ConvexClient(backend.url, auth=fetch, reconnect=FAST) as client, ConvexClient(backend.url) as other:
        who = client.watch("whoami:get", {})
        ident = await who.wait()
        assert ident is not None
        counter = client.watch("counter:get", {"name": "auth"})
        await counter.wait()
        await eventually(lambda: len(calls) >= 4, timeout=15, what="token refetches")
        assert calls[0] is False and all(calls[1:])
        await other.mutation("counter:inc", {"name": "auth", "by": 5})
        await eventually(lambda: counter.value == 5, what="subscription to continue after expiry")
        assert who.value is not None and who.error is None
        assert client.state.state is ConnectionState.LIVE


async def test_admin_key_auth(backend: Any) -> None:
    async with ConvexClient(backend.url, auth=AdminKey(backend.admin_key)) as client:
        assert await client.query("counter:get", {"name": "adm"}) == 0


async def test_server_killed_and_restarted_mid_mutation(tmp_path: Path) -> None:
    proc = testing.spawn_backend(tmp_path / "data")
    try:
        states: list[ConnectionState] = []
        async with ConvexClient(proc.url, reconnect=FAST) as client:
            client.on_state_change(lambda s: states.append(s.state))
            states.append(client.state.state)
            a = client.watch("counter:get", {"name": "k"})
            b = client.watch("counter:get", {"name": "other"})
            m = client.watch("messages:list", {"channel": "k"})
            await asyncio.gather(a.wait(), b.wait(), m.wait())

            # 40 increments in flight when the server is SIGKILLed: some committed and answered,
            # some committed but unanswered, some never received. After the restart every one
            # must be applied exactly once (the replay keeps its requestId; the server dedupes).
            n = 40
            tasks = [
                asyncio.create_task(client.mutation("counter:inc", {"name": "k", "by": 1}))
                for _ in range(n)
            ]
            await eventually(lambda: client.inflight_requests < n, timeout=5, what="first replies")
            await asyncio.to_thread(proc.kill)
            inflight_at_kill = client.inflight_requests
            await client.wait_for_state(ConnectionState.RECONNECTING, timeout=10)
            await asyncio.to_thread(proc.restart)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 30)
            assert sorted(results) == list(range(1, n + 1))  # each ran once, in order
            await client.wait_for_state(ConnectionState.LIVE, timeout=10)
            assert inflight_at_kill > 0, "the kill came too late to test anything"

            # Fresh values on every subscription after the restart.
            async with HttpClient(proc.url) as http:
                await http.mutation("counter:inc", {"name": "other", "by": 7})
                await http.mutation("messages:send", {"channel": "k", "body": "after"})
            await eventually(lambda: b.value == 7, what="b fresh")
            await eventually(lambda: "after" in repr(m.value), what="m fresh")
            assert a.value == n

        compact = [s for i, s in enumerate(states) if i == 0 or states[i - 1] is not s]
        i = compact.index(ConnectionState.LIVE)
        assert compact[i : i + 3] == [ConnectionState.LIVE, ConnectionState.RECONNECTING, ConnectionState.LIVE]
        async with HttpClient(proc.url) as http:
            assert await http.query("counter:get", {"name": "k"}) == n  # applied exactly once
    finally:
        await asyncio.to_thread(proc.stop)
