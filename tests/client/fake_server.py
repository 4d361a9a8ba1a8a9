"""A scripted sync-protocol server for deterministic client tests (no backend needed).

Every frame the client sends is validated against the shared pydantic models, so the tests also
check that the client speaks PROTOCOL.md exactly.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from collab.wire.messages import client_message_adapter
from collab.wire.values import encode_ts


class FakeConn:
    def __init__(self, ws: ServerConnection, path: str) -> None:
        self.ws = ws
        self.path = path
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames: list[dict[str, Any]] = []
        self.qs = 0
        self.identity = 0
        self.ts = 0
        self.closed = asyncio.Event()

    async def recv(self, type_: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.inbox.get(), timeout)
            if type_ is None or msg["type"] == type_:
                return msg

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(obj))

    def version(self, qs: int, identity: int, ts: int) -> dict[str, Any]:
        return {"querySet": qs, "identity": identity, "ts": encode_ts(ts)}

    async def transition(
        self,
        modifications: list[dict[str, Any]] | None = None,
        *,
        ts: int | None = None,
        qs: int | None = None,
        identity: int | None = None,
    ) -> None:
        start = self.version(self.qs, self.identity, self.ts)
        self.qs = self.qs if qs is None else qs
        self.identity = self.identity if identity is None else identity
        self.ts = self.ts if ts is None else ts
        await self.send(
            {
                "type": "Transition",
                "startVersion": start,
                "endVersion": self.version(self.qs, self.identity, self.ts),
                "modifications": modifications or [],
            }
        )

    async def abort(self) -> None:
        self.ws.transport.abort()


def updated(query_id: int, value: Any) -> dict[str, Any]:
    return {"type": "QueryUpdated", "queryId": query_id, "value": value, "logLines": [], "journal": None}


class FakeServer:
    def __init__(self) -> None:
        self.conns: asyncio.Queue[FakeConn] = asyncio.Queue()
        self.all: list[FakeConn] = []
        self.errors: list[str] = []
        self._server: Any = None
        self.port = 0

    async def __aenter__(self) -> "FakeServer":
        self._server = await serve(self._handler, "127.0.0.1", self.port, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for c in self.all:
            c.ws.transport.abort()
        await asyncio.wait_for(self._server.wait_closed(), 5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def next_conn(self, timeout: float = 5.0) -> FakeConn:
        return await asyncio.wait_for(self.conns.get(), timeout)

    async def _handler(self, ws: ServerConnection) -> None:
        conn = FakeConn(ws, ws.request.path if ws.request else "")
        self.all.append(conn)
        await self.conns.put(conn)
        try:
            async for raw in ws:
                obj = json.loads(raw)
                try:
                    client_message_adapter.validate_python(obj)  # the client speaks the protocol
                except Exception as exc:
                    self.errors.append(f"{exc}: {raw}")
                    raise
                conn.frames.append(obj)
                await conn.inbox.put(obj)
        except Exception:
            pass
        finally:
            conn.closed.set()
