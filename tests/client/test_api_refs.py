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


def test_api_module_is_what_the_registry_generates() -> None:
    """backend_client/api.py is generated (``collab codegen``): a backend function added,
    removed or changed without regenerating it fails here."""
    import collab.backend_client
    from collab.tui.apigen import MODEL_PACKAGE, python_api
    from collab.backend.functions import App

    committed = (Path(collab.backend_client.__file__).parent / "api.py").read_text(encoding="utf-8")
    assert committed == python_api(App.from_package(MODEL_PACKAGE)), "run `collab codegen`"


def test_generated_args_are_typed_from_the_validators() -> None:
    from typing import get_type_hints

    from collab.backend_client import api as generated

    hints = get_type_hints(generated.StreamsPushArgs)
    assert set(hints) == {"chunks"}
    item = get_type_hints(generated.StreamsPushArgsChunksItem)
    assert item["text"] is str and "base" in generated.StreamsPushArgsChunksItem.__optional_keys__
    assert generated.LocksAcquireArgs.__required_keys__ == {"artifactId"}
    assert str(get_type_hints(generated.MessagesFinishArgs)["state"]) == "typing.Literal['done', 'failed']"


def test_codegen_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    from collab.tui.apigen import write_api

    stale = tmp_path / "api.py"
    stale.write_text("# stale\n")
    assert write_api(stale) is True
    assert write_api(stale) is False  # regenerated: now up to date
