"""How ``collab`` processes find the backend of a data dir: a lock and a discovery file.

``backend.lock`` is held (flock) by the running ``collab serve`` for its whole life, so a
second one on the same data dir fails fast, and a stale ``backend.json`` left by a killed
server is recognised as stale (its lock is free).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOCK_FILE = "backend.lock"
DISCOVERY_FILE = "backend.json"


@dataclass
class Discovery:
    url: str  # what processes of this machine connect to (loopback)
    pid: int
    data_dir: str
    started_at: float
    # Served to a team (collab serve --host): the URL teammates use, and the certificate file
    # when it is TLS (collab invite pins a self-signed one in the line it prints).
    public_url: str | None = None
    tls_cert: str | None = None


class AlreadyRunning(Exception):
    def __init__(self, data_dir: Path, found: Discovery | None) -> None:
        where = f" (pid {found.pid}, {found.url})" if found else ""
        super().__init__(f"a backend is already running for {data_dir}{where}")
        self.found = found


def acquire_lock(data_dir: Path) -> IO[str]:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(data_dir, read_discovery(data_dir, check_alive=False)) from None
    return handle


def is_locked(data_dir: Path) -> bool:
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def write_discovery(data_dir: Path, url: str, *, public_url: str | None = None,
                    tls_cert: str | None = None) -> Discovery:
    found = Discovery(url=url, pid=os.getpid(), data_dir=str(data_dir), started_at=time.time(),
                      public_url=public_url, tls_cert=tls_cert)
    tmp = data_dir / (DISCOVERY_FILE + ".tmp")
    tmp.write_text(json.dumps(found.__dict__, indent=2) + "\n")
    tmp.replace(data_dir / DISCOVERY_FILE)
    return found


def read_discovery(data_dir: Path, *, check_alive: bool = True) -> Discovery | None:
    """The running backend of ``data_dir``, or None (no file, unreadable, or stale)."""
    path = data_dir / DISCOVERY_FILE
    try:
        raw = json.loads(path.read_text())
        found = Discovery(url=str(raw["url"]), pid=int(raw["pid"]), data_dir=str(raw["data_dir"]),
                          started_at=float(raw["started_at"]), public_url=raw.get("public_url"),
                          tls_cert=raw.get("tls_cert"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and not is_locked(data_dir):
        return None
    return found


def remove_discovery(data_dir: Path) -> None:
    try:
        (data_dir / DISCOVERY_FILE).unlink()
    except FileNotFoundError:
        pass
