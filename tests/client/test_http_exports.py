"""The HTTP one-shots are exported from ``collab.backend_client`` as docs/CLIENT.md shows, work
against a backend, and cost the socket client nothing (httpx is loaded on first use only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collab.backend.testing import BackendProcess


def test_importing_the_client_does_not_load_httpx() -> None:
    code = "import sys, collab.backend_client as c; print('httpx' in sys.modules); c.SyncHttpClient; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


async def test_http_clients_from_the_package_root(tmp_path: Path) -> None:
    from collab.backend_client import AdminKey, ConvexError, HttpClient, SyncHttpClient

    with BackendProcess(tmp_path / "data") as backend:
        with SyncHttpClient(backend.url, auth=AdminKey(backend.admin_key)) as sync:
            assert sync.mutation("counter:inc", {"name": "h", "by": 2}) == 2
            assert sync.query("counter:get", {"name": "h"}) == 2
        async with HttpClient(backend.url) as http:
            assert await http.query("counter:get", {"name": "h"}) == 2
            assert (await http.registry())["counter:inc"] == "mutation"
            with pytest.raises(ConvexError) as err:
                await http.mutation("counter:fail", {"data": {"code": "LOCKED"}})
            assert err.value.data == {"code": "LOCKED"}
