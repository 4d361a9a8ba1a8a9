"""Merge config layers (defaults, presets, the file, env vars, overrides) and remember, for
every key of the result, which layer wrote it and under which key *in that layer*.

That origin is what lets a validation error on the merged data (``agents[6].temperature``)
be reported where the user wrote it (``config.toml:14: agents[2].temperature``): the file's
``[[agents]]`` are merged into the built-in ones by handle, so indexes differ.

Merge rules:
* tables merge key by key (a later layer changes only what it sets);
* ``agents`` merges by ``handle`` (same handle: merge; new handle: append);
* ``models.aliases.<name>`` is replaced whole (a partly inherited model would mix providers);
* anything else (scalars, arrays) is replaced.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Key
from .toml_lines import LineIndex

KEYED_LISTS: dict[Key, str] = {("agents",): "handle"}


def _replaced_whole(path: Key) -> bool:
    return len(path) == 3 and path[:2] == ("models", "aliases")


@dataclass(eq=False)
class Source:
    """Where a layer comes from. ``label`` is what error messages start with."""

    label: str
    path: Path | None = None
    index: LineIndex | None = None
    # Where the layer's data sits in the whole config (a preset file is one flow's table).
    mount: Key = ()

    def line_of(self, key: Key) -> int | None:
        return self.index.line_of(key) if self.index else None


@dataclass
class Layer:
    source: Source
    data: dict[str, Any]


@dataclass
class Merged:
    data: dict[str, Any] = field(default_factory=dict)
    # merged key -> (layer source, key inside that layer's data)
    origins: dict[Key, tuple[Source, Key]] = field(default_factory=dict)
    # Problems found while merging (duplicate handles inside one layer).
    problems: list[tuple[Source, Key, str]] = field(default_factory=list)

    def origin(self, key: Key) -> tuple[Source, Key] | None:
        """The layer that wrote ``key`` (or its longest written prefix), and the key in that
        layer (the unmatched tail appended)."""
        for n in range(len(key), -1, -1):
            found = self.origins.get(tuple(key[:n]))
            if found is not None:
                source, sub = found
                return source, sub + tuple(key[n:])
        return None


def merge_layers(layers: list[Layer]) -> Merged:
    m = Merged()
    for layer in layers:
        _apply(m, layer)
    return m


def _apply(m: Merged, layer: Layer) -> None:
    src = layer.source
    dst: dict[str, Any] = m.data
    # Walk (creating) the tables down to the mount point.
    for n, part in enumerate(src.mount):
        key = src.mount[: n + 1]
        nxt = dst.get(str(part))
        if not isinstance(nxt, dict):
            nxt = {}
            dst[str(part)] = nxt
        m.origins.setdefault(key, (src, ()))
        dst = nxt
    _merge_table(m, dst, layer.data, src.mount, (), src)


def _merge_table(
    m: Merged, dst: dict[str, Any], new: dict[str, Any], path: Key, sub: Key, src: Source
) -> None:
    m.origins[path] = (src, sub)
    for k, v in new.items():
        p, s = path + (k,), sub + (k,)
        old = dst.get(k)
        if isinstance(v, dict) and isinstance(old, dict) and not _replaced_whole(p):
            _merge_table(m, old, v, p, s, src)
        elif p in KEYED_LISTS and isinstance(v, list) and isinstance(old, list):
            _merge_keyed(m, old, v, p, s, src, KEYED_LISTS[p])
        else:
            _drop(m, p)
            dst[k] = copy.deepcopy(v)
            _record(m, v, p, s, src)


def _merge_keyed(
    m: Merged, dst: list[Any], new: list[Any], path: Key, sub: Key, src: Source, key: str
) -> None:
    m.origins[path] = (src, sub)
    at = {item.get(key): i for i, item in enumerate(dst) if isinstance(item, dict)}
    seen: dict[Any, int] = {}
    for j, item in enumerate(new):
        ident = item.get(key) if isinstance(item, dict) else None
        hashable = isinstance(ident, str)
        if hashable and ident in seen:
            m.problems.append(
                (src, sub + (j, key), f"{ident!r} is already used by {_fmt(sub + (seen[ident],))}")
            )
            continue
        if hashable:
            seen[ident] = j
        if hashable and ident in at:
            _merge_table(m, dst[at[ident]], item, path + (at[ident],), sub + (j,), src)
        else:
            dst.append(copy.deepcopy(item))
            _record(m, item, path + (len(dst) - 1,), sub + (j,), src)
            if hashable:
                at[ident] = len(dst) - 1


def _fmt(key: Key) -> str:
    from .errors import format_key

    return format_key(key)


def _record(m: Merged, value: Any, path: Key, sub: Key, src: Source) -> None:
    m.origins[path] = (src, sub)
    if isinstance(value, dict):
        for k, v in value.items():
            _record(m, v, path + (k,), sub + (k,), src)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _record(m, v, path + (i,), sub + (i,), src)


def _drop(m: Merged, path: Key) -> None:
    n = len(path)
    for k in [k for k in m.origins if len(k) > n and k[:n] == path]:
        del m.origins[k]
