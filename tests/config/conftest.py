"""Fixtures: an isolated environment (HOME and XDG dirs under tmp_path) and a config writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fake environment: nothing from the real one leaks into a test."""
    return {
        "HOME": str(tmp_path / "home"),
        "USER": "alice",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
    }


@pytest.fixture
def write_cfg(tmp_path: Path) -> Callable[[str], Path]:
    """Write TOML text to a file and return its path."""

    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
