"""Load the config: defaults < flow presets < config file < ``COLLAB_*`` env vars < overrides.

Every problem becomes a ``ConfigError`` naming the source, the line and the field::

    ~/.config/collab/config.toml:14: agents[2].temperature: must be <= 2 (got 3.5)
    ~/.config/collab/config.toml:3:9: backend.url: invalid TOML: Invalid value
    environment variable COLLAB_THEME: theme.name: must be a theme name ... (got 'Dark Blue')
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .base import FieldProblem
from .env import env_settings, nest
from .errors import ConfigError, ConfigIssue, Key, display_path, format_key
from .flows.presets import preset_files
from .identity import handle_from_login, login_name
from .keymap import flatten_keymap, suggest
from .layers import Layer, Merged, Source, merge_layers
from .models import Config
from .paths import ENV_CONFIG, config_file, data_dir, expand
from .toml_lines import LineIndex, key_on_line

DEFAULTS_LABEL = "built-in defaults"
OVERRIDES_LABEL = "command line"


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    use_env: bool = True,
) -> Config:
    """Load the user's config.

    ``path``: an explicit file (``--config``); it must exist. Otherwise ``$COLLAB_CONFIG`` (must
    exist too), else ``$XDG_CONFIG_HOME/collab/config.toml`` if present (a missing default
    file just means defaults). ``env``: the environment (default ``os.environ``).
    ``overrides``: CLI flags as ``{"backend.url": ..., "theme": {"name": ...}}``; None values
    mean "flag not given". ``use_env=False`` ignores ``COLLAB_*`` variables.
    """
    e = dict(os.environ if env is None else env)
    if not use_env:
        e = {k: v for k, v in e.items() if not k.startswith("COLLAB_")}
    explicit = path is not None or bool(e.get(ENV_CONFIG))
    file = expand(path, e) if path is not None else config_file(e)
    text: str | None = None
    if file.exists() or explicit:
        text = _read(file)
    return _load(text, file if text is not None else None, e, overrides)


def load_config_text(
    text: str,
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load a config from TOML text (``path`` is only used in messages and for relative
    paths). Environment variables apply only if ``env`` is given."""
    return _load(text, Path(path) if path else Path("config.toml"), dict(env or {}), overrides)


def default_config(env: Mapping[str, str] | None = None) -> Config:
    """The built-in defaults with the presets, ignoring any file and ``COLLAB_*`` variable."""
    source = os.environ if env is None else env
    e = {k: v for k, v in source.items() if not k.startswith("COLLAB_")}
    return _load(None, None, e, None)


# -- steps ----------------------------------------------------------------------------------


def _read(file: Path) -> str:
    label = display_path(file)
    try:
        return file.read_text(encoding="utf-8-sig")  # tolerate a BOM from Windows editors
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(label, "config file not found", path=file)]) from None
    except UnicodeDecodeError as exc:
        issue = ConfigIssue(label, f"not UTF-8 text ({exc.reason})", path=file)
        raise ConfigError([issue]) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue(label, f"cannot read: {exc.strerror}", path=file)]) from None


def _load(
    text: str | None,
    file: Path | None,
    env: dict[str, str],
    overrides: Mapping[str, Any] | None,
) -> Config:
    layers = [Layer(Source(DEFAULTS_LABEL), _defaults())]
    layers += _preset_layers()
    if text is not None and file is not None:
        layers.append(_file_layer(text, file, env))
    layers += _env_layers(env)
    if overrides:
        layers.append(Layer(Source(OVERRIDES_LABEL), _overrides(overrides, env)))
    merged = merge_layers(layers)
    issues = [_issue(src, sub, msg) for src, sub, msg in merged.problems]
    if not issues:
        _derive(merged.data, env)
        try:
            config = Config.model_validate(merged.data)
        except ValidationError as exc:
            issues = _issues(exc, merged)
        else:
            config._source_path = file if text is not None else None
            return config
    raise ConfigError(_sorted(issues))


_DEFAULTS_CACHE: dict[str, Any] | None = None


def _defaults() -> dict[str, Any]:
    global _DEFAULTS_CACHE
    if _DEFAULTS_CACHE is None:
        _DEFAULTS_CACHE = Config().model_dump(mode="python")
    return copy.deepcopy(_DEFAULTS_CACHE)


def _preset_layers() -> list[Layer]:
    layers = []
    for name, res in preset_files().items():
        path = Path(str(res))
        text = res.read_text(encoding="utf-8")
        source = Source(f"flow preset {path}", path, None, ("flows", name))
        data = _parse(text, source)
        source.index = LineIndex(text)
        layers.append(Layer(source, data))
    return layers


def _file_layer(text: str, file: Path, env: Mapping[str, str]) -> Layer:
    source = Source(display_path(file), file)
    data = _parse(text, source)
    source.index = LineIndex(text)
    if isinstance(data.get("keymap"), dict):
        # Unquoted ids (app.quit = ...) are nested tables in TOML: flatten, and let the
        # flattened id find its line.
        data["keymap"] = flatten_keymap(data["keymap"])
        for key in list(source.index.lines):
            if len(key) > 2 and key[0] == "keymap" and all(isinstance(p, str) for p in key):
                source.index.alias(key, ("keymap", ".".join(map(str, key[1:]))))
    backend = data.get("backend")
    if isinstance(backend, dict) and isinstance(backend.get("data_dir"), str):
        # Relative to the file, so the config means the same from any working directory.
        p = expand(backend["data_dir"], env)
        backend["data_dir"] = str(p if p.is_absolute() else file.parent / p)
    return Layer(source, data)


_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)|\s*\(at end of document\)")


def _parse(text: str, source: Source) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        line = col = None
        if m and m.group(1):
            line, col = int(m.group(1)), int(m.group(2))
        elif m:
            line = text.count("\n") + 1
        field = None
        if line is not None:
            before = "\n".join(text.splitlines()[: line - 1])
            table = LineIndex(before).table_before(line) if before else ()
            field = format_key(table + key_on_line(text, line)) or None
        reason = _TOML_POS.sub("", msg).strip()
        raise ConfigError(
            [
                ConfigIssue(
                    source.label,
                    f"invalid TOML: {reason}",
                    path=source.path,
                    line=line,
                    column=col,
                    field=field,
                )
            ]
        ) from None


def _env_layers(env: Mapping[str, str]) -> list[Layer]:
    layers = []
    for name, key, value in env_settings(env):
        v: Any = value
        if key == ("backend", "data_dir"):
            p = expand(value, env)
            v = str(p if p.is_absolute() else Path.cwd() / p)
        layers.append(Layer(Source(f"environment variable {name}"), nest(key, v)))
    return layers


def _overrides(overrides: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in overrides.items():
        if v is None:
            continue
        parts = k.split(".")
        if parts[0] == "keymap" and len(parts) > 1:
            parts = ["keymap", ".".join(parts[1:])]
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if isinstance(v, Mapping) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(v)
        else:
            node[parts[-1]] = dict(v) if isinstance(v, Mapping) else v
    backend = out.get("backend")
    value = backend.get("data_dir") if isinstance(backend, dict) else None
    if isinstance(value, (str, os.PathLike)):
        p = expand(value, env)
        out["backend"]["data_dir"] = str(p if p.is_absolute() else Path.cwd() / p)
    return out


def _derive(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fill the values whose default depends on the machine: the handle, the data dir."""
    backend = data.get("backend")
    if isinstance(backend, dict) and backend.get("data_dir") is None:
        backend["data_dir"] = data_dir(env)
    identity = data.get("identity")
    if isinstance(identity, dict) and identity.get("handle") is None:
        handle = handle_from_login(login_name(env))
        agents = data.get("agents")
        taken = {a.get("handle") for a in agents or [] if isinstance(a, dict)}
        n = 2
        base = handle[:30]
        while handle in taken:  # a login named like an agent must not break the first run
            handle, n = f"{base}{n}", n + 1
        identity["handle"] = handle


# -- errors -----------------------------------------------------------------------------------


def _issues(exc: ValidationError, merged: Merged) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for err in exc.errors(include_url=False):
        loc: Key = tuple(err["loc"])
        problem = (err.get("ctx") or {}).get("error")
        if isinstance(problem, FieldProblem):
            items = [(loc + sub, msg) for sub, msg in problem.problems]
        else:
            items = [(loc, _describe(err, _data_key(merged.data, loc)))]
        for key, msg in items:
            key = _data_key(merged.data, key)
            found = merged.origin(key)
            if found is None:
                issues.append(ConfigIssue(DEFAULTS_LABEL, msg, field=format_key(key)))
            else:
                issues.append(_issue(*found, msg))
    return issues


def _issue(source: Source, sub: Key, msg: str) -> ConfigIssue:
    return ConfigIssue(
        source.label,
        msg,
        path=source.path,
        line=source.line_of(sub),
        field=format_key(source.mount + sub) or None,
    )


def _data_key(data: Any, loc: Key) -> Key:
    """Drop the parts of a pydantic location that are not keys of the data (union member
    tags such as ``function-after[...]``), keeping a missing last key (``missing`` errors)."""
    out: list[str | int] = []
    node = data
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
            out.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            out.append(part)
        elif last:
            out.append(part)
        # else: a tag, skip it
    return tuple(out)


def _toml(value: Any) -> str:
    """A value as it would be written in TOML, for '(got ...)'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "path_type": "a path string",
}


# Keys older versions accepted, with why they went: named, rather than "unknown key".
REMOVED: dict[Key, str] = {
    ("locks", "sweep_every_s"): "leases are expired exactly at their end (a job scheduled per lease), "
                                "there is no sweep period",
}

_OPS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _describe(err: Mapping[str, Any], key: Key) -> str:
    kind: str = err["type"]
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        if tuple(key) in REMOVED:
            return f"was removed: {REMOVED[tuple(key)]}; delete this line"
        where = key[:-1]
        choices = _fields_at(where)
        what = "section" if not where else "key"
        hint = suggest(str(key[-1]), choices) if choices else ""
        if not hint and choices:
            hint = f" (known: {', '.join(choices)})"
        return f"unknown {what} {str(key[-1])!r}{hint}"
    if kind == "missing":
        return "is required"
    if kind in _TYPE_WORDS:
        word = _TYPE_WORDS[kind]
        if kind in ("list_type",) and key[-1:] == ("agents",):
            word = "an array of tables ([[agents]])"
        msg = f"must be {word}"
    elif kind == "literal_error":
        msg = f"must be one of {ctx.get('expected', '')}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = _OPS[kind]
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # "must be <= 2", not "<= 2.0"
        msg = f"must be {op} {bound}"
    elif kind in ("too_long", "too_short"):
        n = ctx.get("max_length" if kind == "too_long" else "min_length")
        if isinstance(value, str):
            msg = f"must be at {'most' if kind == 'too_long' else 'least'} {n} characters"
            value = None if len(value) > 40 else value
        else:
            msg = f"must have at {'most' if kind == 'too_long' else 'least'} {n} items"
            value = None
    elif kind == "string_pattern_mismatch":
        msg = f"does not match the expected form {ctx.get('pattern', '')!r}"
    elif kind == "value_error":
        msg = str(ctx.get("error", err.get("msg", "")))
    else:
        msg = str(err.get("msg", kind))
        msg = msg[:1].lower() + msg[1:]
    if value is not None and "(got " not in msg and not isinstance(value, (dict, list)):
        msg += f" (got {_toml(value)})"
    elif isinstance(value, (dict, list)) and kind in _TYPE_WORDS:
        msg += f" (got {_toml(value)})"
    return msg


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _fields_at(key: Key) -> list[str]:
    """Field names of the table at ``key`` (for 'did you mean'), or []."""
    tp: Any = Config
    for part in key:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            f = tp.model_fields.get(str(part))
            if f is None:
                return []
            tp = f.annotation
        elif typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return []
        tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    order = {label: n for n, label in enumerate(dict.fromkeys(i.source for i in issues))}
    not_files = ("environment", OVERRIDES_LABEL, DEFAULTS_LABEL)
    files_first = sorted(order, key=lambda s: (s.startswith(not_files), order[s]))
    rank = {s: n for n, s in enumerate(files_first)}
    return sorted(issues, key=lambda i: (rank[i.source], i.line or 0))
