"""XDG paths and their COLLAB_* overrides."""

from __future__ import annotations

from pathlib import Path

from collab.config import locate, resolve_paths
from collab.config import paths as p


def test_xdg_variables(env: dict[str, str], tmp_path: Path) -> None:
    env = env | {"XDG_STATE_HOME": str(tmp_path / "st"), "XDG_CACHE_HOME": str(tmp_path / "ca")}
    assert p.config_file(env) == tmp_path / "xdg-config" / "collab" / "config.toml"
    assert p.data_dir(env) == tmp_path / "xdg-data" / "collab"
    assert p.state_dir(env) == tmp_path / "st" / "collab"
    assert p.cache_dir(env) == tmp_path / "ca" / "collab"
    assert p.log_dir(env) == tmp_path / "st" / "collab" / "log"


def test_fallbacks_under_home() -> None:
    env = {"HOME": "/h"}
    assert p.config_file(env) == Path("/h/.config/collab/config.toml")
    assert p.data_dir(env) == Path("/h/.local/share/collab")
    assert p.state_dir(env) == Path("/h/.local/state/collab")
    assert p.cache_dir(env) == Path("/h/.cache/collab")
    assert p.runtime_dir(env) == Path("/h/.local/state/collab/run")
    assert p.runtime_dir(env | {"XDG_RUNTIME_DIR": "/run/user/1"}) == Path("/run/user/1/collab")


def test_relative_xdg_values_are_ignored() -> None:
    # The XDG spec: relative paths are invalid and must be ignored.
    assert p.data_dir({"HOME": "/h", "XDG_DATA_HOME": "rel"}) == Path("/h/.local/share/collab")


def test_collab_overrides_win(env: dict[str, str]) -> None:
    env = env | {
        "COLLAB_CONFIG": "~/c.toml",
        "COLLAB_DATA_DIR": "$HOME/d",
        "COLLAB_LOG_DIR": "/l",
        "COLLAB_RUNTIME_DIR": "/r",
    }
    home = Path(env["HOME"])
    assert p.config_file(env) == home / "c.toml"
    assert p.data_dir(env) == home / "d"
    assert p.log_dir(env) == Path("/l")
    assert p.runtime_dir(env) == Path("/r")


def test_explicit_arguments_win_over_env(env: dict[str, str]) -> None:
    env = env | {"COLLAB_DATA_DIR": "/from-env"}
    paths = resolve_paths(env, config_file_path="/x/cfg.toml", data_dir_path="/from-flag")
    assert paths.config_file == Path("/x/cfg.toml") and paths.config_dir == Path("/x")
    assert paths.data_dir == Path("/from-flag")


def test_locate_lists_every_path(env: dict[str, str]) -> None:
    found = locate(env)
    assert set(found) == {
        "config_file",
        "config_dir",
        "data_dir",
        "state_dir",
        "cache_dir",
        "log_dir",
        "runtime_dir",
        "flow_presets_dir",
    }
    assert all(isinstance(v, Path) for v in found.values())
    assert (found["flow_presets_dir"] / "writing.toml").is_file()


def test_unknown_variables_stay_as_written() -> None:
    assert p.expand("$NOPE/x", {"HOME": "/h"}) == Path("$NOPE/x")
    assert p.expand("${HOME}/x", {"HOME": "/h"}) == Path("/h/x")


def test_ensure_creates_directories(env: dict[str, str]) -> None:
    paths = resolve_paths(env)
    paths.ensure()
    assert paths.data_dir.is_dir() and paths.log_dir.is_dir() and paths.runtime_dir.is_dir()
    assert not paths.config_file.exists()
