"""The sync protocol over real sockets (PROTOCOL.md section 3.9 checklist)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets

from collab.backend.testing import RunningBackend
from collab.wire import decode_ts
from tests.backend.wsclient import RawPeer, values_of


async def test_subscribe_then_update_from_another_client(backend: RunningBackend) -> None:
    a, b = await RawPeer(backend.url).open(), await RawPeer(backend.url).open()
    first = await a.add(0, "counter:get", {"name": "n"})
    assert first["startVersion"] == {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
    assert first["endVersion"]["querySet"] == 1
    assert values_of(first) == {0: 0}
    response, _ = await b.mutate(0, "counter:inc", {"name": "n", "by": 5})
    assert response["success"] is True and response["result"] == 5
    pushed = await a.recv_type("Transition")
    assert values_of(pushed) == {0: 5}
    assert decode_ts(pushed["endVersion"]["ts"]) >= decode_ts(response["ts"])
    await a.close(), await b.close()


async def test_mutation_response_then_transition_at_or_after_commit(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.add(0, "counter:get", {"name": "m"})
    response, transition = await peer.mutate(0, "counter:inc", {"name": "m"})
    assert decode_ts(transition["endVersion"]["ts"]) >= decode_ts(response["ts"])
    assert values_of(transition) == {0: 1}
    # failures are followed by a Transition too (the Python client waits for it)
    failed, after = await peer.mutate(1, "counter:fail", {"data": {"code": "NOPE", "n": 1}})
    assert failed["success"] is False and failed["errorData"] == {"code": "NOPE", "n": 1}
    assert "NOPE" in failed["result"] and failed.get("ts") is None
    assert after["type"] == "Transition"
    crashed, _ = await peer.mutate(2, "counter:crash", {})
    assert crashed["success"] is False and "errorData" not in crashed
    missing, _ = await peer.mutate(3, "nope:nothing", {})
    assert missing["result"] == "Could not find public function for 'nope:nothing'."
    await peer.close()


async def test_unchanged_results_are_not_resent(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.add(0, "counter:get", {"name": "u"})
    await peer.add(1, "counter:get", {"name": "other"})
    _, transition = await peer.mutate(0, "counter:inc", {"name": "u"})
    assert set(values_of(transition)) == {0}  # query 1 read nothing that changed
    _, transition = await peer.mutate(1, "counter:inc", {"name": "u", "by": 0})
    assert values_of(transition) == {}  # a write that leaves the result equal sends nothing
    await peer.close()


async def test_remove_sends_query_removed(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.add(0, "counter:get", {"name": "r"})
    transition = await peer.remove(0)
    assert transition["modifications"] == [{"type": "QueryRemoved", "queryId": 0}]
    await peer.close()


async def test_query_error_arrives_as_query_failed(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    transition = await peer.add(0, "counter:get", {"name": 3})
    (mod,) = transition["modifications"]
    assert mod["type"] == "QueryFailed" and "ArgumentValidationError" in mod["errorMessage"]
    await peer.close()


async def test_mutations_of_one_connection_run_in_order(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    for i in range(50):
        await peer.send({"type": "Mutation", "requestId": i, "udfPath": "counter:inc", "args": [{"name": "o"}]})
    results = []
    while len(results) < 50:
        msg = await peer.recv()
        if msg["type"] == "MutationResponse":
            results.append((msg["requestId"], msg["result"]))
    assert results == [(i, i + 1) for i in range(50)]
    await peer.close()


async def test_replayed_mutation_is_deduplicated(backend: RunningBackend) -> None:
    first = await RawPeer(backend.url).open()
    response, _ = await first.mutate(7, "counter:inc", {"name": "d"})
    await first.close()
    # a new socket of the same client session replays request 7 (as convex-js does)
    again = await RawPeer(backend.url, session_id=first.session_id).open()
    await again.add(0, "counter:get", {"name": "d"})
    replay, transition = await again.mutate(7, "counter:inc", {"name": "d"})
    assert replay["result"] == 1 and replay["ts"] == response["ts"]
    assert decode_ts(transition["endVersion"]["ts"]) >= decode_ts(replay["ts"])
    other = await RawPeer(backend.url).open()  # another session's request 7 is its own
    fresh, _ = await other.mutate(7, "counter:inc", {"name": "d"})
    assert fresh["result"] == 2
    await again.close(), await other.close()


async def test_authenticate_bumps_identity_and_reruns_queries(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    assert values_of(await peer.add(0, "whoami:get", {})) == {0: None}
    await peer.authenticate("User", backend.mint_token("alice"))
    transition = await peer.recv_type("Transition")
    assert transition["endVersion"]["identity"] == 1 > transition["startVersion"]["identity"]
    who = values_of(transition)[0]
    assert who["subject"] == "human:alice" and who["preferredUsername"] == "alice"
    assert who["tokenIdentifier"].endswith("|human:alice")
    await peer.authenticate("None")
    transition = await peer.recv_type("Transition")
    assert transition["endVersion"]["identity"] == 2 and values_of(transition) == {0: None}
    await peer.close()


async def test_admin_key_authenticates(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.authenticate("Admin", backend.admin_key)
    transition = await peer.recv_type("Transition")
    assert transition["endVersion"]["identity"] == 1
    await peer.close()


async def test_bad_token_gets_auth_error_and_close(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.authenticate("User", "not-a-jwt")
    msg = await peer.recv()
    assert msg["type"] == "AuthError" and msg["authUpdateAttempted"] is True and msg["baseVersion"] == 0
    with pytest.raises(websockets.ConnectionClosed):
        await peer.recv()


async def test_expired_token_on_live_socket(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.authenticate("User", backend.mint_token("bob", ttl_s=3))
    await peer.recv_type("Transition")
    msg = await peer.recv_type("AuthError", timeout=8)
    assert msg["authUpdateAttempted"] is False and "expired" in msg["error"].lower()


async def test_version_mismatch_is_fatal(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.send({"type": "ModifyQuerySet", "baseVersion": 3, "newVersion": 4, "modifications": []})
    msg = await peer.recv()
    assert msg["type"] == "FatalError" and "BaseVersionMismatch" in msg["error"]


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        json.dumps({"type": "Teleport"}),
        json.dumps({"type": "Mutation", "requestId": -1, "udfPath": "counter:inc", "args": [{}]}),
        json.dumps({"type": "Mutation", "requestId": 1, "udfPath": "counter:inc", "args": [{}, {}]}),
        json.dumps({"type": "Mutation", "requestId": 1, "udfPath": "counter:inc", "args": [{"$bad": 1}]}),
        json.dumps({"type": "Mutation", "requestId": 1, "udfPath": "counter:inc", "args": [{"x": {"$integer": "AQ=="}}]}),
        '{"type":"Mutation","requestId":1,"udfPath":"counter:inc","args":[' + "[" * 5000 + "]" * 5000 + "]}",
        "[" * 100000,
        json.dumps([1, 2, 3]),
    ],
)
async def test_bad_frames_get_fatal_error_and_server_survives(backend: RunningBackend, frame: str) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.send(frame)
    msg = await peer.recv()
    assert msg["type"] == "FatalError", msg
    healthy = await RawPeer(backend.url).open()
    assert values_of(await healthy.add(0, "counter:get", {"name": "h"})) == {0: 0}
    await healthy.close()


async def test_message_before_connect_is_fatal(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open(connect=False)
    await peer.send({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []})
    assert (await peer.recv())["type"] == "FatalError"


async def test_binary_frame_is_fatal(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.send(b"\x00\x01")
    assert (await peer.recv())["type"] == "FatalError"


async def test_oversized_frame_closes_connection(tight_backend: RunningBackend) -> None:
    peer = await RawPeer(tight_backend.url).open()
    await peer.send({"type": "Mutation", "requestId": 1, "udfPath": "counter:inc", "args": [{"name": "x" * 100_000}]})
    with pytest.raises(websockets.ConnectionClosed) as info:
        await peer.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_rate_limit_closes_with_try_again(tight_backend: RunningBackend) -> None:
    peer = await RawPeer(tight_backend.url).open()
    with pytest.raises(websockets.ConnectionClosed) as info:
        for i in range(1000):
            await peer.send({"type": "Event", "eventType": "x", "event": i})
        await peer.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1013


async def test_ping_when_idle(tight_backend: RunningBackend) -> None:
    peer = await RawPeer(tight_backend.url).open()
    await peer.add(0, "counter:get", {"name": "p"})
    assert (await peer.recv(timeout=2))["type"] == "Ping"


async def test_browser_origin_and_foreign_host_are_refused(backend: RunningBackend) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await RawPeer(backend.url, headers={"Origin": "http://evil.example"}).open()
    assert info.value.response.status_code == 403
    port = backend.url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}/api/query", headers={"Host": f"evil.example:{port}"}, json={}) as r:
            assert r.status == 403


async def test_slow_client_gets_coalesced_transitions(backend: RunningBackend) -> None:
    slow = await RawPeer(backend.url).open()
    await slow.add(0, "counter:padded", {"name": "s", "size": 200_000})
    writer = await RawPeer(backend.url).open()
    for i in range(300):
        await writer.send({"type": "Mutation", "requestId": i, "udfPath": "counter:inc", "args": [{"name": "s"}]})
    got = 0
    while got < 300:
        if (await writer.recv())["type"] == "MutationResponse":
            got += 1
    # The slow peer did not read while 300 commits happened: it gets far fewer Transitions,
    # the last one carrying the final value.
    await asyncio.sleep(0.5)
    transitions, last = 0, None
    while True:
        try:
            msg = await slow.recv(timeout=1.0)
        except asyncio.TimeoutError:
            break
        if msg["type"] == "Transition":
            transitions += 1
            last = values_of(msg).get(0, last)
    assert last is not None and last["value"] == 300
    assert transitions < 150, transitions
    await slow.close(), await writer.close()
