"""A loopback TCP proxy a test can cut, to lose a reply after the server committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to a target. ``cut_when(pred)`` arms a one-shot trap: the first
    server->client chunk for which ``pred(chunk)`` is true is swallowed and both sockets are
    aborted, as if the network died right then."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._trap: Callable[[bytes], bool] | None = None
        self.cut = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> "CuttableProxy":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.transport.abort()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_when(self, pred: Callable[[bytes], bool]) -> None:
        self._trap = pred

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        sreader, swriter = await asyncio.open_connection(*self.target)
        self._writers += [cwriter, swriter]

        def kill() -> None:
            cwriter.transport.abort()
            swriter.transport.abort()

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_server: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if from_server and self._trap is not None and self._trap(data):
                        self._trap = None
                        self.cut.set()
                        kill()
                        return
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                kill()

        await asyncio.gather(pump(creader, swriter, False), pump(sreader, cwriter, True))
