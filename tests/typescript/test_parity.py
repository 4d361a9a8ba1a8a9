"""Parity of the two backends' function registries: the Python one
(``App.from_package("collab.backend.model")``) and the TypeScript one (``convex/``, dumped by
``convex/tools/registry.mjs``). A function on one side only, another kind or visibility, other
argument validators, another policy or scope, or a schema difference fails here, so the two
cannot drift apart silently."""

from __future__ import annotations

from typing import Any

import pytest
from collab.backend.functions import App

from tests.typescript._node import run_node, ts_registry

_APP: App | None = None


def py_app() -> App:
    global _APP
    if _APP is None:
        _APP = App.from_package("collab.backend.model")
    return _APP


def test_the_same_functions_exist_on_both_sides() -> None:
    py, ts = set(py_app().functions), set(ts_registry()["functions"])
    assert not py - ts, f"functions missing in convex/ (port them): {sorted(py - ts)}"
    assert not ts - py, f"functions missing in backend/model (or extra exports in convex/): {sorted(ts - py)}"


def test_kind_and_visibility_match() -> None:
    ts = ts_registry()["functions"]
    wrong = {path: ((fn.kind, fn.visibility), (ts[path]["kind"], ts[path]["visibility"]))
             for path, fn in py_app().functions.items()
             if path in ts and (fn.kind, fn.visibility) != (ts[path]["kind"], ts[path]["visibility"])}
    assert not wrong, f"(python, typescript) kind/visibility differ: {wrong}"


def _args_json(path: str) -> dict[str, Any]:
    fn = py_app().functions[path]
    return fn.args.json() if fn.args is not None else {"type": "any"}


@pytest.mark.parametrize("path", sorted(py_app().functions))
def test_argument_validators_match(path: str) -> None:
    ts = ts_registry()["functions"]
    if path not in ts:
        pytest.fail(f"{path} is missing in convex/")
    assert _args_json(path) == ts[path]["args"], f"{path}: argument validators differ (python left)"
    returns = py_app().functions[path].returns
    assert (returns.json() if returns is not None else None) == ts[path]["returns"], f"{path}: returns differ"


def test_policies_and_scopes_match() -> None:
    ts = ts_registry()["functions"]
    wrong = {}
    for path, fn in py_app().functions.items():
        if path not in ts:
            continue
        mine = (fn.meta.get("policy"), fn.meta.get("scope"))
        theirs = (ts[path]["policy"], ts[path]["scope"])
        if mine != theirs:
            wrong[path] = (mine, theirs)
    assert not wrong, f"(python, typescript) policy/scope differ: {wrong}"


def test_schemas_match() -> None:
    py = py_app().schema.tables
    ts = {t["tableName"]: t for t in ts_registry()["schema"]["tables"]}
    assert set(py) == set(ts), f"tables differ: python only {set(py) - set(ts)}, typescript only {set(ts) - set(py)}"
    for name, table in py.items():
        assert table.fields is not None
        assert table.fields.json() == ts[name]["documentType"], f"table {name}: field validators differ"
        ts_indexes = {ix["indexDescriptor"]: ix["fields"] for ix in ts[name]["indexes"]}
        assert table.indexes == ts_indexes, f"table {name}: indexes differ"


def test_generated_files_are_current() -> None:
    """convex/_generated is committed (codegen needs a deployment); it must list every module."""
    done = run_node("tools/codegen.mjs", "--check", timeout=60)
    assert done.returncode == 0, done.stderr
