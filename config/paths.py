"""Where collab keeps its files: XDG base directories, each overridable by a ``COLLAB_*`` variable.

Resolution order for every directory: explicit argument > ``COLLAB_*`` variable > XDG variable >
the XDG fallback under ``$HOME``. Relative XDG values are ignored, as the XDG spec requires
(a relative ``XDG_DATA_HOME`` would make the data dir depend on the current directory).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

APP_NAME = "collab"
CONFIG_FILE_NAME = "config.toml"

# Variables read here; docs/CONFIG.md lists them with the ones load.py reads.
ENV_CONFIG = "COLLAB_CONFIG"
ENV_DATA_DIR = "COLLAB_DATA_DIR"
ENV_STATE_DIR = "COLLAB_STATE_DIR"
ENV_CACHE_DIR = "COLLAB_CACHE_DIR"
ENV_LOG_DIR = "COLLAB_LOG_DIR"
ENV_RUNTIME_DIR = "COLLAB_RUNTIME_DIR"


_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def expand(value: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Path:
    """Expand ``~`` and ``$VARS`` in a user-written path (config values, env values, flags)."""
    e = _environ(env)
    text = os.fspath(value)
    if text.startswith("~"):
        text = str(_home(e)) + text[1:]
    # os.path.expandvars reads os.environ only; expand against the mapping we were given.
    # Unknown variables are left as written, like expandvars does.
    text = _VAR.sub(lambda m: e.get(m.group(1) or m.group(2), m.group(0)), text)
    return Path(text)


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return _home(env) / fallback


def _override(env: Mapping[str, str], var: str) -> Path | None:
    value = env.get(var, "")
    return expand(value, env) if value else None


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/collab`` (default ``~/.config/collab``)."""
    return _xdg(_environ(env), "XDG_CONFIG_HOME", ".config") / APP_NAME


def config_file(env: Mapping[str, str] | None = None) -> Path:
    """The config file: ``$COLLAB_CONFIG``, else ``config_dir()/config.toml``."""
    e = _environ(env)
    return _override(e, ENV_CONFIG) or config_dir(e) / CONFIG_FILE_NAME


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Spaces, the SQLite database, the embedded backend's files: ``$XDG_DATA_HOME/collab``."""
    e = _environ(env)
    return _override(e, ENV_DATA_DIR) or _xdg(e, "XDG_DATA_HOME", ".local/share") / APP_NAME


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """History and other state worth keeping but not backing up: ``$XDG_STATE_HOME/collab``."""
    e = _environ(env)
    return _override(e, ENV_STATE_DIR) or _xdg(e, "XDG_STATE_HOME", ".local/state") / APP_NAME


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Anything that can be deleted at any time: ``$XDG_CACHE_HOME/collab``."""
    e = _environ(env)
    return _override(e, ENV_CACHE_DIR) or _xdg(e, "XDG_CACHE_HOME", ".cache") / APP_NAME


def log_dir(env: Mapping[str, str] | None = None) -> Path:
    """Logs of the app, the embedded backend and workers: ``state_dir()/log``."""
    e = _environ(env)
    return _override(e, ENV_LOG_DIR) or state_dir(e) / "log"


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """Sockets and pid files: ``$XDG_RUNTIME_DIR/collab``, else ``state_dir()/run``.

    Kept short on purpose: a Unix socket path is limited to ~104-108 bytes.
    """
    e = _environ(env)
    found = _override(e, ENV_RUNTIME_DIR)
    if found:
        return found
    runtime = e.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / APP_NAME
    return state_dir(e) / "run"


def flow_presets_dir() -> Path:
    """The folder of flow presets shipped inside the package (``collab/config/flows``)."""
    return Path(str(resources.files(__package__ or "collab.config").joinpath("flows")))


@dataclass(frozen=True)
class Paths:
    """Every path collab uses, resolved once (what ``collab locate`` prints)."""

    config_file: Path
    config_dir: Path
    data_dir: Path
    state_dir: Path
    cache_dir: Path
    log_dir: Path
    runtime_dir: Path
    flow_presets_dir: Path

    def as_dict(self) -> dict[str, Path]:
        """Label -> path, in a stable order for printing."""
        return dict(asdict(self))

    def ensure(self) -> None:
        """Create the writable directories (not the config file, not the package folder)."""
        for p in (self.config_dir, self.data_dir, self.state_dir, self.cache_dir, self.log_dir):
            p.mkdir(parents=True, exist_ok=True)
        # The runtime dir may hold sockets: keep it private to the user.
        self.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def resolve_paths(
    env: Mapping[str, str] | None = None,
    *,
    config_file_path: str | os.PathLike[str] | None = None,
    data_dir_path: str | os.PathLike[str] | None = None,
) -> Paths:
    """Resolve all paths; explicit arguments (CLI ``--config`` / ``--data-dir``) win over env."""
    e = _environ(env)
    cfg = expand(config_file_path, e) if config_file_path else config_file(e)
    return Paths(
        config_file=cfg,
        config_dir=cfg.parent,
        data_dir=expand(data_dir_path, e) if data_dir_path else data_dir(e),
        state_dir=state_dir(e),
        cache_dir=cache_dir(e),
        log_dir=log_dir(e),
        runtime_dir=runtime_dir(e),
        flow_presets_dir=flow_presets_dir(),
    )


def locate(
    env: Mapping[str, str] | None = None,
    *,
    config_file_path: str | os.PathLike[str] | None = None,
    data_dir_path: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Every path, labelled, for ``collab locate``.

    Pass ``data_dir_path=config.backend.data_dir`` so a data dir set in the config file shows.
    """
    return resolve_paths(
        env, config_file_path=config_file_path, data_dir_path=data_dir_path
    ).as_dict()
