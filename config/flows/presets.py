"""The flow presets shipped with collab: ``<name>.toml`` files in this package folder."""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

PRESET_PACKAGE = __package__ or "collab.config.flows"


def preset_files() -> dict[str, Traversable]:
    """Flow name -> its TOML file, sorted by name."""
    folder = resources.files(PRESET_PACKAGE)
    found = {f.name[: -len(".toml")]: f for f in folder.iterdir() if f.name.endswith(".toml")}
    return dict(sorted(found.items()))


def load_presets() -> dict[str, dict[str, Any]]:
    """Flow name -> raw table (validated as part of the whole config by ``load_config``)."""
    files = preset_files()
    return {name: tomllib.loads(f.read_text(encoding="utf-8")) for name, f in files.items()}
