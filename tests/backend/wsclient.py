"""A raw protocol peer for tests: sends exact frames, reads exact frames."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets

from collab.wire import decode_ts


class RawPeer:
    def __init__(self, url: str, *, session_id: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.ws_url = url.replace("http://", "ws://") + "/api/1.48.0/sync"
        self.session_id = session_id or str(uuid.uuid4())
        self.headers = headers or {}
        self.ws: Any = None
        self.qs = 0
        self.identity = 0
        self.version = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}

    async def open(self, connect: bool = True) -> "RawPeer":
        self.ws = await websockets.connect(self.ws_url, additional_headers=self.headers, max_size=64 * 1024 * 1024)
        if connect:
            await self.send({"type": "Connect", "sessionId": self.session_id, "connectionCount": 0,
                             "lastCloseReason": None, "clientTs": 0})
        return self

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def send(self, msg: Any) -> None:
        await self.ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if msg["type"] == "Transition":
            # the chain must be exact (both official clients verify it)
            assert msg["startVersion"] == self.version, (msg["startVersion"], self.version)
            assert decode_ts(msg["endVersion"]["ts"]) >= decode_ts(self.version["ts"])
            self.version = msg["endVersion"]
        return msg

    async def recv_type(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            msg = await self.recv(timeout)
            if msg["type"] == kind:
                return msg

    async def add(self, query_id: int, path: str, args: dict[str, Any]) -> dict[str, Any]:
        await self.send({"type": "ModifyQuerySet", "baseVersion": self.qs, "newVersion": self.qs + 1,
                         "modifications": [{"type": "Add", "queryId": query_id, "udfPath": path, "args": [args]}]})
        self.qs += 1
        return await self.recv_type("Transition")

    async def remove(self, query_id: int) -> dict[str, Any]:
        await self.send({"type": "ModifyQuerySet", "baseVersion": self.qs, "newVersion": self.qs + 1,
                         "modifications": [{"type": "Remove", "queryId": query_id}]})
        self.qs += 1
        return await self.recv_type("Transition")

    async def mutate(self, request_id: int, path: str, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send a mutation; returns (MutationResponse, the Transition that follows it)."""
        await self.send({"type": "Mutation", "requestId": request_id, "udfPath": path, "args": [args]})
        response = await self.recv_type("MutationResponse")
        transition = await self.recv_type("Transition")
        return response, transition

    async def authenticate(self, token_type: str, value: str | None = None) -> None:
        msg: dict[str, Any] = {"type": "Authenticate", "baseVersion": self.identity, "tokenType": token_type}
        if value is not None:
            msg["value"] = value
        await self.send(msg)
        self.identity += 1


def values_of(transition: dict[str, Any]) -> dict[int, Any]:
    return {m["queryId"]: m.get("value") for m in transition["modifications"] if m["type"] == "QueryUpdated"}
