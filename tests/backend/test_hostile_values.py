"""Values that cannot be sent are not stored (issue 14, findings 1 and 2).

A lone surrogate (``"\\ud800"``: a legal JSON escape, not valid Unicode) or a plain number that is
not finite (``1e999``, ``NaN``) parses in Python but not in a strict parser. Arguments holding
one are refused at the edge with ``INVALID_ARGUMENT`` naming the field, on the socket and over
HTTP; nothing the server writes is anything but strict JSON (the autouse audit in conftest
parses every frame and body strictly).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import websockets

from collab.backend.testing import RunningBackend
from tests.backend.strict import strict_loads
from tests.backend.wsclient import RawPeer, values_of

SURROGATE_BODY = '{"channel":"c","body":"\\ud800"}'  # JSON text: the escape, as a hostile client sends it


def raw_mutation(request_id: int, path: str, args_json: str) -> str:
    return f'{{"type":"Mutation","requestId":{request_id},"udfPath":"{path}","args":[{args_json}]}}'


def invalid(response: dict[str, Any], field: str) -> None:
    assert response["success"] is False, response
    data = response["errorData"]
    assert data["code"] == "INVALID_ARGUMENT" and data["field"] == field, data
    assert field in data["message"]


async def test_lone_surrogate_in_a_mutation_is_refused_and_not_stored(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.add(0, "messages:list", {"channel": "c"})
    await peer.send(raw_mutation(1, "messages:send", SURROGATE_BODY))
    response = await peer.recv_type("MutationResponse")
    invalid(response, "body")
    assert "ConvexError" in response["result"]
    await peer.recv_type("Transition")  # a failed mutation is still followed by a Transition
    # Nothing was stored, and the connection goes on: a good message round-trips.
    good, transition = await peer.mutate(2, "messages:send", {"channel": "c", "body": "fine"})
    assert good["success"] is True
    assert [m["body"] for m in values_of(transition)[0]] == ["fine"]
    await peer.close()


async def test_the_field_is_named_inside_objects_arrays_and_keys(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    cases = {
        '{"data":{"chunks":[{"text":"ok"},{"text":"a\\udfffb"}]}}': "data.chunks[1].text",
        '{"data":{"meta":{"\\ud83d":1}}}': "data.meta",  # a key: the object holding it is named
        '{"data":["\\udc80"]}': "data[0]",
        '{"data":{"n":1e999}}': "data.n",  # overflows to infinity: not a number on the wire
        '{"message":"\\ud83d\\ude00 is fine","data":{"x":-1e400}}': "data.x",
    }
    for i, (args, field) in enumerate(cases.items()):
        await peer.send(raw_mutation(i, "counter:fail", args))
        invalid(await peer.recv_type("MutationResponse"), field)
    # A proper pair of escapes is one valid character: accepted (counter:fail fails on purpose).
    await peer.send(raw_mutation(9, "counter:fail", '{"data":{"code":"\\ud83d\\ude00"}}'))
    ok = await peer.recv_type("MutationResponse")
    assert ok["errorData"] == {"code": "\U0001F600"}
    await peer.close()


async def test_query_and_action_arguments_are_refused_too(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.send('{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":['
                    '{"type":"Add","queryId":0,"udfPath":"messages:list","args":[{"channel":"\\ud800"}]},'
                    '{"type":"Add","queryId":1,"udfPath":"counter:get","args":[{"name":"q"}]}]}')
    peer.qs = 1
    transition = await peer.recv_type("Transition")
    failed, fine = transition["modifications"]
    assert failed["type"] == "QueryFailed" and failed["errorData"]["field"] == "channel"
    assert fine == {"type": "QueryUpdated", "queryId": 1, "value": 0, "logLines": [], "journal": None}
    # The refused query behaves like any other: it can be removed, and survives re-auth.
    await peer.authenticate("User", backend.mint_token("ann"))
    await peer.recv_type("Transition")
    assert (await peer.remove(0))["modifications"] == [{"type": "QueryRemoved", "queryId": 0}]
    await peer.send('{"type":"Action","requestId":5,"udfPath":"slow:sleep","args":[{"ms":"\\udbff"}]}')
    action = await peer.recv_type("ActionResponse")
    invalid(action, "ms")
    await peer.close()


async def test_non_finite_client_ts_is_refused_not_echoed(backend: RunningBackend) -> None:
    """``clientTs: 1e999`` used to go out as ``"clientClockSkew": inf`` in every Transition."""
    peer = await RawPeer(backend.url).open(connect=False)
    await peer.send('{"type":"Connect","sessionId":"6f1c3c4e-8a49-4a51-9d7e-3f1e2b1f0a11",'
                    '"connectionCount":0,"clientTs":1e999}')
    await peer.send({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []})
    msg = await peer.recv()
    assert msg["type"] == "FatalError" and "clientTs" in msg["error"]


async def test_skew_of_a_large_finite_client_ts_is_json(backend: RunningBackend) -> None:
    peer = await RawPeer(backend.url).open(connect=False)
    await peer.send('{"type":"Connect","sessionId":"6f1c3c4e-8a49-4a51-9d7e-3f1e2b1f0a12",'
                    '"connectionCount":0,"clientTs":1.7e308}')
    transition = await peer.add(0, "counter:get", {"name": "skew"})
    assert transition["clientClockSkew"] > 1e307


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_literals_are_not_json(backend: RunningBackend, literal: str) -> None:
    peer = await RawPeer(backend.url).open()
    await peer.send(raw_mutation(1, "counter:inc", f'{{"name":"n","by":{literal}}}'))
    msg = await peer.recv()
    assert msg["type"] == "FatalError" and "JSON" in msg["error"]


async def test_protocol_fields_that_are_not_text_are_fatal_and_not_echoed(backend: RunningBackend) -> None:
    """Outside ``args`` a lone surrogate breaks the protocol itself (a function path, a message
    type): FatalError, whose text never carries the surrogate back."""
    peer = await RawPeer(backend.url).open()
    await peer.send(raw_mutation(1, "nope\\ud800:x", "{}"))
    fatal = await peer.recv()
    assert fatal["type"] == "FatalError" and "udfPath" in fatal["error"]
    with pytest.raises(websockets.ConnectionClosed):
        await peer.recv()
    peer = await RawPeer(backend.url).open()
    await peer.send('{"type":"Tele\\udfffport"}')
    fatal = await peer.recv()
    assert fatal["type"] == "FatalError" and fatal["error"] == "field 'type' is not valid Unicode"


async def test_a_stored_value_that_cannot_be_sent_fails_its_query(backend: RunningBackend) -> None:
    """Data written before the edge checked (or by hand): the query that reads it fails with a
    readable error instead of a Transition no strict client can parse."""
    peer = await RawPeer(backend.url).open()
    await peer.mutate(0, "messages:send", {"channel": "legacy", "body": "POISON"})
    db = backend.backend.storage.db
    db.execute("UPDATE documents SET body = replace(body, 'POISON', '\\ud800')")
    transition = await peer.add(0, "messages:list", {"channel": "legacy"})
    (mod,) = transition["modifications"]
    assert mod["type"] == "QueryFailed" and "not valid Unicode" in mod["errorMessage"]
    await peer.close()


async def test_http_refuses_the_same_values(backend: RunningBackend) -> None:
    async with httpx.AsyncClient() as http:
        async def post(path: str, body: str) -> httpx.Response:
            return await http.post(backend.url + path, content=body, headers={"Content-Type": "application/json"})

        r = await post("/api/mutation", f'{{"path":"messages:send","args":{SURROGATE_BODY}}}')
        body = strict_loads(r.content)
        assert r.status_code == 200 and body["status"] == "error"
        assert body["errorData"]["code"] == "INVALID_ARGUMENT" and body["errorData"]["field"] == "body"
        r = await post("/api/query", '{"path":"counter:get","args":[{"name":"\\udc00"}],"format":"convex_encoded_json"}')
        assert strict_loads(r.content)["errorData"]["field"] == "name"
        r = await post("/api/query_batch", '{"queries":[{"path":"counter:get","args":{"name":"ok"}},'
                                          '{"path":"counter:get","args":{"name":"\\udc00"}}]}')
        first, second = strict_loads(r.content)["results"]
        assert first["status"] == "success" and second["errorData"]["field"] == "name"
        r = await post("/api/mutation", '{"path":"counter:inc","args":{"name":"x","by":NaN}}')
        assert r.status_code == 400 and strict_loads(r.content)["code"] == "BadJsonBody"
        r = await post("/api/mutation", '{"path":"counter:inc","args":{"name":"x","by":1e999}}')
        assert strict_loads(r.content)["errorData"]["field"] == "by"
        r = await post("/api/query", '{"path":"nope\\ud800:x","args":{}}')
        assert strict_loads(r.content)["errorMessage"] == "Could not find public function for 'nope\ufffd:x'."
        r = await http.get(backend.url + "/api/query", params={"path": "counter:get", "args": json.dumps({"name": "\ud800"})})
        assert strict_loads(r.content)["errorData"]["field"] == "name"
        # nothing was stored by any of it
        r = await post("/api/query", '{"path":"messages:list","args":{"channel":"c"}}')
        assert strict_loads(r.content)["value"] == []


async def test_values_from_inside_the_server_are_refused_too(backend: RunningBackend) -> None:
    """Past the edge (an action calling a mutation, a function building a value) the validator
    and the value codec refuse invalid text, so it is never stored either way."""
    engine = backend.backend.engine
    direct = engine.run_mutation("messages:send", [{"channel": "in", "body": "\ud800"}])
    assert not direct.success and "not valid Unicode" in direct.error_message
    built = engine.run_mutation("counter:fail", [{"data": {"code": "\udc00"}}])
    assert not built.success and "ConvexError" in built.error_message  # data unsendable: dumped as text
    assert engine.run_query("messages:list", [{"channel": "in"}]).value == []


@pytest.mark.parametrize("token", ["\\udc00\\ud800", "a.\\udfff.c", "\\ud800"])
async def test_a_token_that_is_not_text_is_a_protocol_error_not_a_crash(backend: RunningBackend, token: str) -> None:
    """Found by the fuzz test: such a token reached the JWT library, which raised
    UnicodeEncodeError: close 1011 and an internal error logged."""
    peer = await RawPeer(backend.url).open()
    await peer.send(f'{{"type":"Authenticate","baseVersion":0,"tokenType":"User","value":"{token}"}}')
    msg = await peer.recv()
    assert msg["type"] == "FatalError" and "value" in msg["error"]
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


async def test_a_bug_of_ours_is_never_silence(backend: RunningBackend, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """If running a call raises (a bug in the server, not in the function), the client is not
    left waiting: an action still gets its ActionResponse, and a dead mutation runner closes
    the socket with 1011 so the client reconnects and replays."""
    engine = backend.backend.engine

    async def broken_action(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine bug")

    def broken_mutation(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(engine, "run_action", broken_action)
    monkeypatch.setattr(engine, "run_mutation", broken_mutation)
    caplog.set_level(logging.ERROR, logger="collab.backend")
    peer = await RawPeer(backend.url).open()
    await peer.send({"type": "Action", "requestId": 1, "udfPath": "slow:sleep", "args": [{"ms": 1}]})
    action = await peer.recv_type("ActionResponse")
    assert action["success"] is False and "InternalServerError" in action["result"]
    await peer.send({"type": "Mutation", "requestId": 2, "udfPath": "counter:inc", "args": [{"name": "b"}]})
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.recv_type("MutationResponse")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert any("internal error" in r.getMessage() for r in caplog.records)
