"""HTTP API shapes (PROTOCOL.md section 5)."""

from __future__ import annotations

import httpx

from collab.backend.testing import RunningBackend
from collab.wire import decode_ts


async def post(backend: RunningBackend, path: str, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(backend.url + path, json=body, headers=headers or {})


async def test_success_and_error_shapes(backend: RunningBackend) -> None:
    r = await post(backend, "/api/mutation", {"path": "counter:inc", "args": {"name": "h", "by": 2}})
    assert r.status_code == 200 and r.json() == {"status": "success", "value": 2}
    r = await post(backend, "/api/query", {"path": "counter:get", "args": [{"name": "h"}], "format": "convex_encoded_json"})
    assert r.json()["value"] == 2
    r = await post(backend, "/api/mutation", {"path": "counter:fail", "args": {"data": {"code": "E"}}})
    assert r.status_code == 200
    assert r.json() == {"status": "error", "errorMessage": 'Uncaught ConvexError: {"code":"E"}', "errorData": {"code": "E"}}
    r = await post(backend, "/api/query", {"path": "nope:x", "args": {}})
    assert r.json() == {"status": "error", "errorMessage": "Could not find public function for 'nope:x'."}


async def test_run_function_and_action_routes(backend: RunningBackend) -> None:
    r = await post(backend, "/api/run/counter/inc", {"args": {"name": "run"}})
    assert r.json() == {"status": "success", "value": 1}
    r = await post(backend, "/api/function", {"path": "counter:get", "args": {"name": "run"}})
    assert r.json()["value"] == 1
    r = await post(backend, "/api/action", {"path": "slow:sleep", "args": {"ms": 1}})
    assert r.json()["value"] == 1


async def test_query_batch_is_one_snapshot(backend: RunningBackend) -> None:
    await post(backend, "/api/mutation", {"path": "counter:inc", "args": {"name": "b"}})
    r = await post(backend, "/api/query_batch", {"queries": [
        {"path": "counter:get", "args": {"name": "b"}}, {"path": "nope:x", "args": {}}]})
    results = r.json()["results"]
    assert results[0] == {"status": "success", "value": 1} and results[1]["status"] == "error"


async def test_query_ts_and_at_ts(backend: RunningBackend) -> None:
    await post(backend, "/api/mutation", {"path": "counter:inc", "args": {"name": "other"}})
    ts = (await post(backend, "/api/query_ts", {})).json()["ts"]
    assert decode_ts(ts) > 0
    r = await post(backend, "/api/query_at_ts", {"path": "counter:get", "args": {"name": "q"}, "ts": ts})
    assert r.json() == {"status": "success", "value": 0}


async def test_clean_and_encoded_formats(backend: RunningBackend) -> None:
    r = await post(backend, "/api/query", {"path": "counter:get", "args": {"name": "f"}, "format": "json"})
    assert r.json()["value"] == 0
    r = await post(backend, "/api/query", {"path": "counter:get", "args": {"name": "f"}, "format": "yaml"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidFormat"


async def test_system_errors(backend: RunningBackend) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(backend.url + "/api/query", content=b"{nope")
    assert r.status_code == 400 and r.json()["code"] == "BadJsonBody"
    r = await post(backend, "/api/query", {"path": "whoami:get", "args": {}}, {"Authorization": "Bearer garbage"})
    assert r.status_code == 401 and r.json()["code"] == "Unauthenticated"
    r = await post(backend, "/api/query", {"path": "whoami:get", "args": {}}, {"Authorization": "Convex wrong-key"})
    assert r.status_code == 401
    r = await post(backend, "/api/query", {"path": "counter:get", "args": {"x": {"$integer": "AQ=="}}})
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgs"


async def test_bearer_and_admin_identities(backend: RunningBackend) -> None:
    token = backend.mint_token("alice")
    r = await post(backend, "/api/query", {"path": "whoami:get", "args": {}}, {"Authorization": f"Bearer {token}"})
    assert r.json()["value"]["subject"] == "human:alice"
    r = await post(backend, "/api/mutation", {"path": "counter:inc_internal", "args": {"name": "i", "by": 1}},
                   {"Authorization": f"Convex {backend.admin_key}"})
    assert r.json() == {"status": "success", "value": 1}  # admins may call internal functions
    r = await post(backend, "/api/mutation", {"path": "counter:inc_internal", "args": {"name": "i", "by": 1}})
    assert r.json()["status"] == "error"


async def test_registry_listing(backend: RunningBackend) -> None:
    async with httpx.AsyncClient() as http:
        listing = (await http.get(backend.url + "/api/functions")).json()["functions"]
    assert {"path": "counter:inc", "kind": "mutation", "visibility": "public"} in listing
