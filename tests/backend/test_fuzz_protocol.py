"""Fuzz: hostile frames and argument values against a real server, over real sockets (issue 14).

For every generated case (tests/backend/fuzz_cases.py) a fresh connection sends the hostile
frames, then a *marker* (a Mutation that is always answered). The case passes when the server
answered the bad input the way the case says (an INVALID_ARGUMENT naming the field, a FatalError
and a close, ...) before the marker's answer or the close: never silence, never a hang, never
close code 1011 (a bug of ours). Alongside, a healthy ConvexClient does a round trip after every
case and checks it; nothing may be logged at ERROR by the server or that client; and every frame
and body the server writes is parsed strictly (the autouse audit in conftest.py).

The server and the healthy client live in a background thread with their own event loop, so
hypothesis drives plain synchronous examples. CI runs a fixed, derandomized set
(``COLLAB_FUZZ_EXAMPLES`` unset, 300 examples, ~10 s); a longer random run:

    COLLAB_FUZZ_EXAMPLES=5000 flock /tmp/collab-heavy.lock .venv/bin/python -m pytest tests/backend/test_fuzz_protocol.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, event, given, settings
from websockets.exceptions import ConnectionClosed

from collab.backend.testing import RunningBackend, running_backend
from collab.backend_client import ConvexClient
from collab.wire import dumps, json_to_convex
from collab.wire.messages import server_message_adapter
from tests.backend.fuzz_cases import CASES, MARKER_ID, Case, connect_frame, marker_frame
from tests.backend.strict import strict_loads

T = TypeVar("T")
LONG_RUN = int(os.environ.get("COLLAB_FUZZ_EXAMPLES", "0"))
EXAMPLES = LONG_RUN or 300
HANG_S = 60.0  # only to turn a hang into a failure: every exchange ends on an answer or a close

pytestmark = pytest.mark.timeout(120 + EXAMPLES)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


class World:
    """The server under test and a healthy client, on an event loop in a background thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-server", daemon=True)
        self.errors = _Errors()
        self.count = 0
        self.cases = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(HANG_S)

    def __enter__(self) -> "World":
        for name in ("collab.backend", "collab.backend_client"):
            logging.getLogger(name).addHandler(self.errors)
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            for name in ("collab.backend", "collab.backend_client"):
                logging.getLogger(name).removeHandler(self.errors)

    async def _start(self) -> None:
        self._backend_cm = running_backend(self.data_dir)
        self.backend: RunningBackend = await self._backend_cm.__aenter__()
        self.url = self.backend.url
        self.ws_url = self.url.replace("http://", "ws://") + "/api/sync"
        self.client = ConvexClient(self.url)
        await self.client.connect()
        self.live = self.client.watch("counter:get", {"name": "healthy"})
        assert await self.live.wait() == 0
        self.http = httpx.AsyncClient()

    async def _stop(self) -> None:
        await self.http.aclose()
        await self.client.close()
        await self._backend_cm.__aexit__(None, None, None)

    async def healthy_round_trip(self) -> None:
        """The well-behaved client, on its own long-lived socket, keeps working."""
        self.count += 1
        assert await self.client.mutation("counter:inc", {"name": "healthy"}) == self.count
        assert self.live.value == self.count  # read-your-writes: the Transition came with it
        assert self.client.stats["reconnects"] == 0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path / "data") as w:
        yield w
    assert w.cases > 0


async def exchange(world: World, case: Case) -> tuple[list[dict[str, Any]], ConnectionClosed | None]:
    """Send the case and the marker on a fresh socket; read until the marker and the case's own
    answer have come, or the close. (Actions run concurrently and a Transition may follow the
    marker's response, so the marker alone does not prove the rest was sent.) Every frame is
    parsed strictly and must be a valid server message."""
    ws = await websockets.connect(world.ws_url, max_size=None, compression=None)
    received: list[dict[str, Any]] = []
    marked = False
    try:
        try:
            if case.connect:
                await ws.send(connect_frame())
            for frame in case.frames:
                await ws.send(frame)
            await ws.send(marker_frame())
        except ConnectionClosed:
            pass  # the server gave up on us already: what it said is in the frames below
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as closed:
                return received, closed
            msg = strict_loads(raw)
            server_message_adapter.validate_json(raw)
            received.append(msg)
            marked = marked or (msg["type"] == "MutationResponse" and msg["requestId"] == MARKER_ID)
            if marked and _answered(received, case):
                return received, None
    finally:
        await ws.close()


def _answers(received: list[dict[str, Any]], case: Case) -> list[dict[str, Any]]:
    e = case.expect
    if e.message_type in ("MutationResponse", "ActionResponse"):
        return [m for m in received if m["type"] == e.message_type and m["requestId"] == e.target]
    if e.message_type == "Transition" and e.kind == "invalid":
        return [mod for m in received if m["type"] == "Transition" for mod in m["modifications"]
                if mod.get("queryId") == e.target and mod["type"] == "QueryFailed"]
    if e.message_type == "Transition":
        return [m for m in received if m["type"] == "Transition" and m["endVersion"]["querySet"] == e.target]
    if e.message_type == "Authenticate":
        return [m for m in received if m["type"] == "Transition"
                and m["endVersion"]["identity"] > m["startVersion"]["identity"]]
    return []


def _answered(received: list[dict[str, Any]], case: Case) -> bool:
    """Whether the answer the case waits for is in (or none is due)."""
    e = case.expect
    if e.kind in ("invalid", "echo") or (e.kind == "answered" and e.target is not None):
        return len(_answers(received, case)) >= e.count
    return True


def _same_value(a: Any, b: Any) -> bool:
    return dumps(json_to_convex(a)) == dumps(json_to_convex(b))


def verify(case: Case, received: list[dict[str, Any]], closed: ConnectionClosed | None) -> None:
    e = case.expect
    fatal = [m for m in received if m["type"] in ("FatalError", "AuthError")]
    if closed is not None and closed.rcvd is not None:
        assert closed.rcvd.code != 1011, f"internal server error on {case.label}"
    if e.kind == "fatal":
        assert closed is not None, f"{case.label}: expected FatalError and a close, got {received}"
        assert fatal, f"{case.label}: closed without saying why ({closed})"
        assert fatal[0]["type"] == "FatalError" or e.auth, fatal
        return
    if fatal and e.kind in ("answered", "nothing"):
        assert closed is not None  # a FatalError ends the connection
        return
    assert closed is None and not fatal, f"{case.label}: {fatal or closed}"
    answers = _answers(received, case)
    if e.kind == "invalid":
        assert answers, f"{case.label}: no answer for {e.target} in {received}"
        data = answers[0]["errorData"]
        assert data["code"] == "INVALID_ARGUMENT" and data["field"] == e.field, (case.label, data, e.field)
        if "success" in answers[0]:
            assert answers[0]["success"] is False
    elif e.kind == "echo":
        (answer,) = answers
        assert answer["success"] is False and _same_value(answer["errorData"], e.data), case.label
    elif e.kind == "answered" and e.message_type is not None and e.target is not None:
        assert len(answers) >= e.count, f"{case.label}: {e.count} answers expected for {e.target}: {received}"
    elif e.kind == "answered" and e.message_type == "Authenticate":
        assert answers, f"{case.label}: an accepted Authenticate must bump the identity: {received}"


async def http_exchange(world: World, case: Case) -> None:
    assert case.http is not None
    r = await world.http.post(world.url + case.http["route"], content=case.http["body"],
                              headers={"Content-Type": "application/json"})
    body = strict_loads(r.content)
    e = case.expect
    assert r.status_code < 500, (case.label, r.status_code, body)
    if e.kind == "invalid":
        assert r.status_code == 200 and body["status"] == "error", (case.label, body)
        assert body["errorData"]["code"] == "INVALID_ARGUMENT" and body["errorData"]["field"] == e.field
    else:
        assert 400 <= r.status_code < 500 and {"code", "message"} <= set(body), (case.label, body)


def _settings() -> Any:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not LONG_RUN,  # CI: the same examples every run; a long run explores
        database=None,
        # The server, the healthy client and the output audit span all examples on purpose.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large],
    )


@_settings()
@given(case=CASES)
def test_hostile_input_is_always_answered_and_never_hurts_others(world: World, case: Case) -> None:
    world.cases += 1
    world.errors.records.clear()
    event(case.label.split(" (")[0])
    if case.http is not None:
        world.run(http_exchange(world, case))
    else:
        received, closed = world.run(exchange(world, case))
        event("closed" if closed is not None else "answered")
        verify(case, received, closed)
    world.run(world.healthy_round_trip())
    assert not world.errors.records, world.errors.records
