"""Declaring functions: ``query`` / ``mutation`` / ``action`` and their internal variants.

Python::

    @mutation(args={"name": v.string()})
    def create(ctx: MutationCtx, args: dict) -> str:
        return ctx.db.insert("spaces", {"name": args["name"]})

TypeScript (the ``convex/`` port)::

    export const create = mutation({ args: { name: v.string() },
      handler: async (ctx, args) => ctx.db.insert("spaces", { name: args.name }) });

Queries and mutations are plain (synchronous) functions: the engine runs them one at a time
on its thread, so a mutation is a serializable transaction without any locking in user code.
Actions are ``async`` and reach the database only through ``ctx.run_query`` /
``ctx.run_mutation``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

from collab.backend.schema import Schema
from collab.backend.validators import ObjectValidator, Validator, v

Kind = Literal["query", "mutation", "action"]
Visibility = Literal["public", "internal"]


@dataclass
class FunctionDef:
    kind: Kind
    visibility: Visibility
    handler: Callable[..., Any]
    args: ObjectValidator | None
    returns: Validator | None = None
    # Free-form metadata for wrappers (e.g. the authorization policy of collab functions).
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def __call__(self, *a: Any, **kw: Any) -> Any:  # direct calls in unit tests
        return self.handler(*a, **kw)


def _declare(kind: Kind, visibility: Visibility) -> Callable[..., Any]:
    def decorator_factory(
        args: dict[str, Validator] | ObjectValidator | None = None,
        returns: Validator | None = None,
        **meta: Any,
    ) -> Callable[[Callable[..., Any]], FunctionDef]:
        validator = v.object(args) if isinstance(args, dict) else args

        def wrap(handler: Callable[..., Any]) -> FunctionDef:
            return FunctionDef(kind, visibility, handler, validator, returns, dict(meta))

        return wrap

    return decorator_factory


query = _declare("query", "public")
mutation = _declare("mutation", "public")
action = _declare("action", "public")
internal_query = _declare("query", "internal")
internal_mutation = _declare("mutation", "internal")
internal_action = _declare("action", "internal")


def canonical_path(udf_path: str) -> str:
    """``"dir/mod.js:fn"`` -> ``"dir/mod:fn"``; no colon means the ``default`` export."""
    module, _, name = udf_path.partition(":")
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{name or 'default'}"


class App:
    """A schema plus the registered functions, addressed by ``"module:name"`` paths."""

    def __init__(self, schema: Schema, modules: dict[str, ModuleType] | None = None) -> None:
        self.schema = schema
        self.functions: dict[str, FunctionDef] = {}
        for module_path, module in (modules or {}).items():
            self.register_module(module_path, module)

    def register_module(self, module_path: str, module: ModuleType) -> None:
        for name, obj in vars(module).items():
            if isinstance(obj, FunctionDef) and not name.startswith("_"):
                self.register(f"{module_path}:{name}", obj)

    def register(self, path: str, fn: FunctionDef) -> None:
        if path in self.functions and self.functions[path] is not fn:
            raise ValueError(f"function {path} registered twice")
        fn.path = path
        self.functions[path] = fn

    def lookup(self, udf_path: str) -> FunctionDef | None:
        return self.functions.get(canonical_path(udf_path))

    @classmethod
    def from_package(cls, package: str) -> "App":
        """Every module of ``package`` (recursively) except ``schema``; the schema comes from
        ``<package>.schema:schema``. ``pkg/a/b.py`` registers as ``"a/b:fn"``."""
        root = importlib.import_module(package)
        schema_module = importlib.import_module(f"{package}.schema")
        app = cls(schema_module.schema)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            rel = info.name[len(package) + 1 :]
            if rel == "schema" or rel.split(".")[-1].startswith("_") or info.ispkg:
                continue
            app.register_module(rel.replace(".", "/"), importlib.import_module(info.name))
        return app

    def describe(self) -> list[dict[str, str]]:
        """The registry, for clients that check their function references."""
        return [
            {"path": p, "kind": f.kind, "visibility": f.visibility}
            for p, f in sorted(self.functions.items())
        ]
