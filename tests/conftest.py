"""Suite-wide isolation: no test reads or writes the real user's config, data or state.

Every test gets its own XDG config/data/state/cache dirs (HOME itself stays, so tools that
cache under it, like pip, keep working), and no ``COLLAB_*`` setting leaks in from the
environment that runs the suite."""

from __future__ import annotations

import os
import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (root / var.lower()).mkdir()
        monkeypatch.setenv(var, str(root / var.lower()))
    for var in [v for v in os.environ if v.startswith("COLLAB_") and v != "COLLAB_FAULTS"]:
        monkeypatch.delenv(var)

