"""``COLLAB_*`` environment variables that override the config file.

Named variables cover what people set per shell or per tmux pane; any other key can be set as
``COLLAB_<SECTION>__<KEY>`` (double underscore between levels, case-insensitive), e.g.
``COLLAB_LOCKS__LEASE_TTL_S=20`` or ``COLLAB_STREAMING__PERSIST__INTERVAL_MS=300``. Values are
strings, converted like the TOML values would be ("300" -> 300, "true" -> true). Empty
variables are ignored, so ``COLLAB_URL=`` in a script changes nothing.

``COLLAB_CONFIG`` and the directory variables (``COLLAB_STATE_DIR``...) are read by
``paths.py``; ``COLLAB_DATA_DIR`` is both a path and ``backend.data_dir``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import Key

PREFIX = "COLLAB_"
NESTED = "__"

# Variable -> config key. Documented in docs/CONFIG.md; keep the two in step.
ENV_KEYS: dict[str, Key] = {
    "COLLAB_URL": ("backend", "url"),
    "COLLAB_DATA_DIR": ("backend", "data_dir"),
    "COLLAB_SPACE": ("backend", "space"),
    "COLLAB_HANDLE": ("identity", "handle"),
    "COLLAB_NAME": ("identity", "display_name"),
    "COLLAB_MODEL": ("models", "default"),
    "COLLAB_THEME": ("theme", "name"),
    "COLLAB_EDITOR": ("ui", "editor"),
}


def env_settings(env: Mapping[str, str]) -> list[tuple[str, Key, str]]:
    """``(variable, config key, value)`` for every variable that sets a config key, generic
    ``__`` ones first so a named variable wins over its generic spelling."""
    generic: list[tuple[str, Key, str]] = []
    named: list[tuple[str, Key, str]] = []
    for name in sorted(env):
        value = env[name]
        if not name.startswith(PREFIX) or value == "":
            continue
        if name in ENV_KEYS:
            named.append((name, ENV_KEYS[name], value))
        elif NESTED in name:
            parts = name[len(PREFIX) :].lower().split(NESTED)
            if all(parts):
                generic.append((name, tuple(parts), value))
    return generic + named


def nest(key: Key, value: object) -> dict[str, object]:
    """``("a", "b"), 1`` -> ``{"a": {"b": 1}}``."""
    out: object = value
    for part in reversed(key):
        out = {str(part): out}
    assert isinstance(out, dict)
    return out
