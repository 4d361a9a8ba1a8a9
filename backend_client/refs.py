"""Typed function references: ``api.artifacts.get`` instead of ``"artifacts:get"`` strings.

A reference knows its canonical udfPath and its kind (query / mutation / action), and is
generic in its argument and return types so a type checker sees ``client.watch(api.x.get, ...)``
as a ``LiveQuery[ReturnType]``. References are declared once (see ``collab.backend_client.api``)
and :func:`check_refs` compares a set of references with the server's function registry, so a
misspelt name or a query used as a mutation fails in a test, not in front of a user.

Plain strings (``"counter:get"``) are accepted everywhere a reference is, for scripts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, Literal, TypeVar, Union

__all__ = [
    "FunctionKind",
    "FunctionRef",
    "QueryRef",
    "MutationRef",
    "ActionRef",
    "FnLike",
    "Namespace",
    "AnyApi",
    "any_api",
    "canonical_udf_path",
    "udf_path_of",
    "iter_refs",
    "check_refs",
]

FunctionKind = Literal["query", "mutation", "action"]
A = TypeVar("A")  # argument mapping type
R = TypeVar("R")  # return type


def canonical_udf_path(path: str) -> str:
    """``module/path:export``; no colon means the ``default`` export; a ``.js`` suffix on the
    module is dropped (PROTOCOL.md 2.1, the JS canonicalizer), so one function has one name."""
    module, sep, export = path.rpartition(":")
    if not sep:
        module, export = path, "default"
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{export}"


class FunctionRef(Generic[A, R]):
    """A reference to one public function. Immutable and hashable."""

    __slots__ = ("udf_path", "kind")
    kind_default: FunctionKind | None = None

    def __init__(self, udf_path: str, kind: FunctionKind | None = None) -> None:
        object.__setattr__(self, "udf_path", canonical_udf_path(udf_path))
        object.__setattr__(self, "kind", kind or self.kind_default)

    udf_path: str
    kind: FunctionKind | None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FunctionRef is immutable")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.udf_path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunctionRef) and (other.udf_path, other.kind) == (
            self.udf_path,
            self.kind,
        )

    def __hash__(self) -> int:
        return hash((self.udf_path, self.kind))


class QueryRef(FunctionRef[A, R]):
    __slots__ = ()
    kind_default = "query"


class MutationRef(FunctionRef[A, R]):
    __slots__ = ()
    kind_default = "mutation"


class ActionRef(FunctionRef[A, R]):
    __slots__ = ()
    kind_default = "action"


FnLike = Union[FunctionRef[Any, Any], str]


def udf_path_of(fn: FnLike) -> str:
    if isinstance(fn, FunctionRef):
        return fn.udf_path
    if isinstance(fn, str):
        return canonical_udf_path(fn)
    if isinstance(fn, AnyApi):
        return fn.ref.udf_path
    raise TypeError(f"expected a FunctionRef or 'module:function' string, got {fn!r}")


class Namespace:
    """Base for declared API trees: subclass attributes are refs or nested namespaces.

    Example::

        class counter(Namespace):
            get: QueryRef[dict[str, Any], float] = QueryRef("counter:get")

        class api(Namespace):
            counter = counter
    """


def iter_refs(root: Any) -> Iterator[FunctionRef[Any, Any]]:
    """Every FunctionRef reachable from a namespace class/object, module, or iterable."""
    seen: set[int] = set()

    def walk(obj: Any) -> Iterator[FunctionRef[Any, Any]]:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, FunctionRef):
            yield obj
        elif isinstance(obj, (list, tuple, set, frozenset)):
            for item in obj:
                yield from walk(item)
        elif isinstance(obj, Mapping):
            for item in obj.values():
                yield from walk(item)
        elif isinstance(obj, type) and issubclass(obj, Namespace) or hasattr(obj, "__dict__"):
            for name, item in vars(obj).items():
                if not name.startswith("_"):
                    yield from walk(item)

    yield from walk(root)


def check_refs(refs: Iterable[FunctionRef[Any, Any]], registry: Mapping[str, str]) -> list[str]:
    """Compare references with a registry ``{udfPath: kind}`` (kind "query"/"mutation"/"action",
    any case). Returns human-readable problems; empty means every reference resolves."""
    normalized = {canonical_udf_path(k): str(v).lower() for k, v in registry.items()}
    problems: list[str] = []
    for ref in refs:
        kind = normalized.get(ref.udf_path)
        if kind is None:
            problems.append(f"{ref.udf_path}: no such public function on the server")
        elif ref.kind is not None and kind != ref.kind:
            problems.append(f"{ref.udf_path}: declared as {ref.kind}, server has a {kind}")
    return problems


class AnyApi:
    """Untyped dynamic references, like Convex's ``anyApi``: ``any_api.messages.list`` is
    ``FunctionRef("messages:list")`` (kind unknown). Nested folders: ``any_api.dir.file.fn``
    is ``dir/file:fn``."""

    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[str, ...] = ()) -> None:
        self._parts = parts

    def __getattr__(self, name: str) -> "AnyApi":
        if name.startswith("__"):
            raise AttributeError(name)
        return AnyApi(self._parts + (name,))

    @property
    def ref(self) -> FunctionRef[Any, Any]:
        if len(self._parts) < 2:
            raise ValueError("a function reference needs a module and a function name")
        return FunctionRef("/".join(self._parts[:-1]) + ":" + self._parts[-1])


any_api = AnyApi()
