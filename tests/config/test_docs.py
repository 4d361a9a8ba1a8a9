"""docs/CONFIG.md stays in step with the code: every section, env var and binding id."""

from __future__ import annotations

from pathlib import Path

from collab.config import BINDINGS, Config
from collab.config.env import ENV_KEYS
from collab.config.paths import (
    ENV_CACHE_DIR,
    ENV_CONFIG,
    ENV_LOG_DIR,
    ENV_RUNTIME_DIR,
    ENV_STATE_DIR,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "CONFIG.md").read_text(encoding="utf-8")


def test_every_section_is_documented() -> None:
    for section in Config.model_fields:
        assert f"[{section}" in DOC or f"[[{section}]]" in DOC, section


def test_every_env_var_is_documented() -> None:
    for var in [*ENV_KEYS, ENV_CONFIG, ENV_STATE_DIR, ENV_CACHE_DIR, ENV_LOG_DIR, ENV_RUNTIME_DIR]:
        assert f"`{var}`" in DOC, var


def test_every_binding_is_documented_with_its_default() -> None:
    for b in BINDINGS:
        assert f"| `{b.id}` | `{b.default}` |" in DOC, b.id
