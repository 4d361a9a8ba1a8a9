"""The official JS client (npm `convex` ConvexClient, under Node) against the embedded backend."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

from collab.backend.testing import BackendProcess


class JsClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, driver: Path, url: str) -> "JsClient":
        proc = await asyncio.create_subprocess_exec(
            "node", str(driver), url, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=str(driver.parent),
        )
        client = cls(proc)
        await client.wait_for(lambda e: e["ev"] == "ready")
        return client

    async def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def wait_for(self, pred: Any, timeout: float = 15.0) -> dict[str, Any]:
        for e in self.events:
            if pred(e):
                self.events.remove(e)
                return e
        assert self.proc.stdout is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.01, left))
            if not line:
                raise AssertionError(f"driver exited; events: {self.events}")
            event = json.loads(line)
            if pred(event):
                return event
            self.events.append(event)

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.send(op="close")
                await asyncio.wait_for(self.proc.wait(), 5)
            except (asyncio.TimeoutError, ConnectionError, BrokenPipeError):
                self.proc.kill()


def _unread_on_server_side(port: int) -> int:
    """Bytes received and not yet read on the server's established sockets of ``port``
    (/proc/net/tcp: local port, state 01, rx_queue)."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, state, queues = fields[1], fields[3], fields[4]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    total += int(queues.split(":")[1], 16)
    return total


async def _until_unread_bytes(port: int, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while _unread_on_server_side(port) == 0:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the client never sent the mutation to the frozen server")
        await asyncio.sleep(0.02)


def update(qid: str, value: Any = None) -> Any:
    return lambda e: e["ev"] == "update" and e["id"] == qid and (value is None or e["value"] == value)


def result(rid: int) -> Any:
    return lambda e: e["ev"] == "result" and e["rid"] == rid


async def test_subscribe_mutate_error_data_and_auth(tmp_path: Path, node_driver: Path) -> None:
    with BackendProcess(tmp_path / "data") as backend:
        a = await JsClient.start(node_driver, backend.url)
        b = await JsClient.start(node_driver, backend.url)
        try:
            await a.send(op="subscribe", id="c", fn="counter:get", args={"name": "js"})
            await a.wait_for(update("c", 0))
            await b.send(op="mutation", rid=1, fn="counter:inc", args={"name": "js", "by": 3})
            assert (await b.wait_for(result(1)))["value"] == 3
            await a.wait_for(update("c", 3))  # pushed to the other client

            await b.send(op="mutation", rid=2, fn="counter:fail", args={"data": {"code": "LOCKED", "holder": "edwin"}})
            failed = await b.wait_for(result(2))
            assert failed["ok"] is False and failed["data"] == {"code": "LOCKED", "holder": "edwin"}

            await a.send(op="setAuth", token=backend.mint_token("alice"))
            assert (await a.wait_for(lambda e: e["ev"] == "auth"))["isAuthenticated"] is True
            await a.send(op="subscribe", id="who", fn="whoami:get", args={})
            who = await a.wait_for(lambda e: e["ev"] == "update" and e["id"] == "who" and e["value"] is not None)
            assert who["value"]["subject"] == "human:alice"
        finally:
            await a.close(), await b.close()


async def test_reconnect_after_restart_with_in_flight_mutation_exactly_once(tmp_path: Path, node_driver: Path) -> None:
    backend = BackendProcess(tmp_path / "data").start()
    js = await JsClient.start(node_driver, backend.url)
    try:
        await js.send(op="subscribe", id="c", fn="counter:get", args={"name": "r"})
        await js.wait_for(update("c", 0))
        assert backend.proc is not None
        os.kill(backend.proc.pid, signal.SIGSTOP)  # frozen: the mutation below stays in flight
        await js.send(op="mutation", rid=1, fn="counter:inc", args={"name": "r"})
        # The frozen server reads nothing: once bytes wait unread on its side of the socket, the
        # client has sent the mutation, so the restart below tests its replay (a fixed sleep
        # passed on a loaded machine with the mutation not yet sent, testing nothing).
        await _until_unread_bytes(backend.port)
        backend.kill()
        backend.start()  # same port, same data
        assert (await js.wait_for(result(1), timeout=30))["value"] == 1
        await js.wait_for(update("c", 1), timeout=30)
        await js.send(op="mutation", rid=2, fn="counter:inc", args={"name": "r", "by": 0})
        assert (await js.wait_for(result(2)))["value"] == 1  # applied exactly once
    finally:
        await js.close()
        backend.stop()


async def test_reply_lost_after_commit_is_not_applied_twice(tmp_path: Path, node_driver: Path) -> None:
    backend = BackendProcess(tmp_path / "data")
    os.environ["COLLAB_FAULTS"] = json.dumps({"drop_reply_after_commit": {"counter:inc": 1}})
    try:
        backend.start()
    finally:
        del os.environ["COLLAB_FAULTS"]
    js = await JsClient.start(node_driver, backend.url)
    try:
        await js.send(op="subscribe", id="c", fn="counter:get", args={"name": "x"})
        await js.wait_for(update("c", 0))
        await js.send(op="mutation", rid=1, fn="counter:inc", args={"name": "x", "by": 5})
        # committed, connection cut before the reply; the client reconnects and replays
        assert (await js.wait_for(result(1), timeout=30))["value"] == 5
        await js.wait_for(update("c", 5), timeout=30)
        await js.send(op="query", rid=2, fn="counter:get", args={"name": "x"})
        assert (await js.wait_for(result(2)))["value"] == 5
    finally:
        await js.close()
        backend.stop()
