"""Pointed at a backend that speaks the protocol but does not serve collab's functions (a
Convex deployment where ``convex/`` was not deployed), the app says so and how to fix it,
instead of a bare "Could not find public function"."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.backend.testing import BackendProcess
from collab.config import load_config_text
from collab.tui.bootstrap import BootstrapError, connect


async def test_a_backend_without_the_functions_is_named_as_such(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with BackendProcess(tmp_path / "data") as other:  # the protocol, but only the test app's functions
        monkeypatch.setenv("COLLAB_TOKEN", other.mint_token("alice"))
        config = load_config_text(f'[identity]\nhandle = "alice"\n[backend]\nurl = "{other.url}"\n')
        with pytest.raises(BootstrapError) as err:
            await connect(config)
    text = str(err.value)
    assert text.startswith(f"the backend at {other.url} does not serve collab's functions")
    assert "scripts/convex-deploy" in text and "docs/CONVEX.md" in text and "embedded backend" in text
