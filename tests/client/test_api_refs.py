"""Every declared reference of ``collab.backend_client.api`` resolves on the embedded backend,
and every public collaboration function has a reference."""

from __future__ import annotations

from pathlib import Path

from collab.backend.testing import running_backend
from collab.backend_client.api import api
from collab.backend_client.http import HttpClient
from collab.backend_client.refs import check_refs, iter_refs


async def test_api_refs_match_the_live_registry(tmp_path: Path) -> None:
    async with running_backend(tmp_path / "data", functions="collab.backend.model") as backend:
        async with HttpClient(backend.url) as http:
            listing = await http.registry()
    registry = listing
    refs = list(iter_refs(api))
    assert check_refs(refs, registry) == []
    declared = {r.udf_path for r in refs}
    assert set(registry) - declared == set(), "public functions without a reference in backend_client/api.py"
