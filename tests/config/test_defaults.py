"""The built-in defaults and the shipped flow presets are valid and coherent."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from collab.config import (
    BINDINGS,
    DEFAULT_KEYMAP,
    Config,
    ConfigError,
    default_agents,
    default_config,
    load_config,
)
from collab.config.flows import preset_files
from collab.config.keymap import key_problem, normalize_key

PRESETS = {"research", "writing", "creative_writing", "review", "coding"}


def test_plain_constructor_is_valid() -> None:
    cfg = Config()
    assert cfg.backend.url is None and cfg.backend.embedded
    assert cfg.streaming.ui_interval_ms == 30
    assert cfg.streaming.persist_interval_ms == 250
    assert cfg.locks.lease_ttl_s == 30 and cfg.locks.renew_every_s == 10
    assert cfg.theme.resolved == "textual-dark"
    assert cfg.ui.editor == "textarea"


def test_default_config_is_complete(env: dict[str, str]) -> None:
    cfg = default_config(env)
    assert set(cfg.flows) == PRESETS
    assert cfg.identity.handle == "alice"  # derived from $USER
    # filled in from $XDG_DATA_HOME (not left for each caller to compute)
    assert cfg.backend.data_dir == Path(env["XDG_DATA_HOME"]) / "collab"
    assert cfg.source_path is None
    assert cfg.keymap == DEFAULT_KEYMAP


def test_missing_default_file_means_defaults_a_missing_explicit_one_is_an_error(
        env: dict[str, str], tmp_path: Path) -> None:
    cfg = load_config(env=env)  # nothing at $XDG_CONFIG_HOME/collab/config.toml
    assert cfg.source_path is None and cfg.backend.space == "main" and cfg.keymap == DEFAULT_KEYMAP
    assert [a.handle for a in cfg.enabled_agents()] == ["rhea", "dara", "edwin", "quinn", "polly"]
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "typo.toml", env=env)


def test_five_default_agents_with_distinct_personas() -> None:
    agents = default_agents()
    assert len(agents) == 5
    assert len({a.handle for a in agents}) == 5
    assert len({a.role for a in agents}) == 5
    assert len({a.persona for a in agents}) == 5
    assert {"reviewer", "editor", "researcher", "drafter", "polisher"} == {a.role for a in agents}
    assert all(a.persona and a.enabled for a in agents)


def test_default_agents_use_the_offline_model(env: dict[str, str]) -> None:
    cfg = default_config(env)
    for agent in cfg.agents:
        spec = cfg.model_for(agent)
        assert spec.is_local and spec.api_key_env is None and spec.missing_key({}) is None


def test_presets_ship_as_toml_files_and_reach_the_config(env: dict[str, str]) -> None:
    """The installed package carries one TOML file per preset, and what each file says is what
    the loaded config holds (the preset layer is merged, not ignored or shadowed by code)."""
    files = preset_files()
    assert set(files) == PRESETS
    cfg = default_config(env)
    for name, res in files.items():
        raw = tomllib.loads(res.read_text(encoding="utf-8"))
        flow = cfg.flow(name)
        assert (flow.title, flow.view) == (raw["title"], raw["view"]), name
        assert [s.actor for s in flow.stages] == [s["actor"] for s in raw.get("stages", [])], name


def test_presets_cover_every_view(env: dict[str, str]) -> None:
    cfg = default_config(env)
    assert {f.view for f in cfg.flows.values()} == {"discussion", "variations", "pipeline"}
    writing = cfg.flow("writing")
    assert [s.actor for s in writing.stages] == ["dara", "edwin", "polly"]
    creative = cfg.flow("creative_writing")
    assert len(creative.temperatures) == creative.variations
    for name in cfg.flows:
        assert cfg.flow_agents(name), name


def test_default_keys_reach_the_app() -> None:
    ids = [b.id for b in BINDINGS]
    assert len(ids) == len(set(ids))
    for b in BINDINGS:
        for key in b.default.split(","):
            assert normalize_key(key) == key, b.id  # stored canonical
            assert key_problem(key) is None, b.id
            assert key not in ("ctrl+a", "ctrl+b", "ctrl+enter", "shift+enter")


def test_binding_ids_named_in_the_brief_exist() -> None:
    for bid in ("artifact.edit", "app.command_palette", "discussion.send", "editor.save"):
        assert bid in DEFAULT_KEYMAP
