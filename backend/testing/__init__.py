"""Helpers to run an embedded backend in tests and benchmarks: in-process or as a process.

The default app here is the small test app in ``collab.backend.testing.app`` (counters,
messages, items, whoami, slow actions); pass ``functions=`` for another package, e.g.
``"collab.backend.model"`` for the collaboration functions.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from collab.backend.auth import Authority
from collab.backend.discovery import read_discovery
from collab.backend.functions import App
from collab.backend.server import Backend, ServerOptions

TEST_APP = "collab.backend.testing.app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningBackend:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def admin_key(self) -> str:
        return self.backend.authority.admin_key

    def mint_token(self, handle: str, agent: bool = False, ttl_s: float = 3600) -> str:
        return self.backend.authority.mint(handle, agent=agent, ttl_s=ttl_s)


@asynccontextmanager
async def running_backend(
    data_dir: Path | str, *, functions: str = TEST_APP, options: ServerOptions | None = None
) -> AsyncIterator[RunningBackend]:
    backend = Backend(Path(data_dir), App.from_package(functions), options or ServerOptions())
    await backend.start()
    try:
        yield RunningBackend(backend)
    finally:
        await backend.stop()


class BackendProcess:
    """``collab serve`` in a child process, on a fixed port so a restart keeps the URL."""

    def __init__(self, data_dir: Path | str, port: int | None = None, functions: str = TEST_APP,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.functions = functions
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key(self) -> str:
        return Authority(self.data_dir).admin_key

    def mint_token(self, handle: str, agent: bool = False, ttl_s: float = 3600) -> str:
        return Authority(self.data_dir).mint(handle, agent=agent, ttl_s=ttl_s)

    def start(self, timeout_s: float = 20.0) -> "BackendProcess":
        cmd = [sys.executable, "-m", "collab.backend", "--data-dir", str(self.data_dir), "--port", str(self.port),
               "--functions", self.functions, "--quiet", *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = read_discovery(self.data_dir)
            if found is not None and found.pid == self.proc.pid:
                return self
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"backend exited with {self.proc.returncode}: {err}")
            time.sleep(0.02)
        self.kill()
        raise TimeoutError("backend did not start in time")

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def restart(self) -> "BackendProcess":
        self.kill()
        return self.start()

    def __enter__(self) -> "BackendProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()


def spawn_backend(data_dir: Path | str, port: int | None = None, functions: str = TEST_APP) -> BackendProcess:
    return BackendProcess(data_dir, port, functions).start()


__all__ = ["BackendProcess", "RunningBackend", "free_port", "running_backend", "spawn_backend", "TEST_APP"]
