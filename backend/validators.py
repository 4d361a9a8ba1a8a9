"""Validators for function arguments and table fields, shaped like Convex's ``v``.

``v.object({"name": v.string(), "tags": v.optional(v.array(v.string()))})`` reads the same as
its TypeScript twin, so porting a function to ``convex/`` is mechanical.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from collab.wire import Int64
from collab.backend.ids import InvalidId, table_number_of

# id -> table name of that id, or None when the table is unknown.
IdResolver = Callable[[str], "str | None"]


class ValidationError(Exception):
    def __init__(self, message: str, path: str, value: Any, validator: "Validator") -> None:
        self.path = path or "(root)"
        shown = _show(value)
        super().__init__(
            f"{message}\nPath: {self.path}\nValue: {shown}\nValidator: {validator.describe()}"
        )


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class Validator(ABC):
    optional = False

    @abstractmethod
    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None: ...

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def json(self) -> dict[str, Any]:
        """The validator in Convex's export format (what ``exportArgs()`` / ``schema.export()``
        give for the TypeScript twin), for the parity check with ``convex/``."""

    def _fail(self, value: Any, path: str, why: str = "Value does not match validator.") -> None:
        raise ValidationError(why, path, value, self)


# Convex's export names where they differ from the ``v.<name>()`` constructor.
_JSON_TYPE = {"float64": "number", "int64": "bigint"}


class _Simple(Validator):
    def __init__(self, name: str, test: Callable[[Any], bool]) -> None:
        self._name, self._test = name, test

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        if not self._test(value):
            self._fail(value, path)

    def describe(self) -> str:
        return f"v.{self._name}()"

    def json(self) -> dict[str, Any]:
        return {"type": _JSON_TYPE.get(self._name, self._name)}


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, (bool, Int64))


class _Id(Validator):
    def __init__(self, table: str) -> None:
        self.table = table

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        if not isinstance(value, str):
            self._fail(value, path)
        try:
            table_number_of(value)
        except InvalidId:
            self._fail(value, path, f"Value is not a valid id for table {self.table!r}.")
        if ids is not None and ids(value) != self.table:
            self._fail(value, path, f"Value is not an id of table {self.table!r}.")

    def describe(self) -> str:
        return f'v.id("{self.table}")'

    def json(self) -> dict[str, Any]:
        return {"type": "id", "tableName": self.table}


class _Literal(Validator):
    def __init__(self, value: Any) -> None:
        self.value = value

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        if type(value) is not type(self.value) or value != self.value:
            self._fail(value, path)

    def describe(self) -> str:
        return f"v.literal({json.dumps(self.value)})"

    def json(self) -> dict[str, Any]:
        return {"type": "literal", "value": self.value}


class _Optional(Validator):
    optional = True

    def __init__(self, inner: Validator) -> None:
        self.inner = inner

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        self.inner.check(value, path, ids)

    def describe(self) -> str:
        return f"v.optional({self.inner.describe()})"

    def json(self) -> dict[str, Any]:
        return self.inner.json()  # optionality is a property of the object field


class _Array(Validator):
    def __init__(self, item: Validator) -> None:
        self.item = item

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        if not isinstance(value, list):
            self._fail(value, path)
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]", ids)

    def describe(self) -> str:
        return f"v.array({self.item.describe()})"

    def json(self) -> dict[str, Any]:
        return {"type": "array", "value": self.item.json()}


class _Record(Validator):
    def __init__(self, keys: Validator, values: Validator) -> None:
        self.keys, self.values = keys, values

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        if not isinstance(value, dict):
            self._fail(value, path)
        for k, item in value.items():
            self.keys.check(k, f"{path}.{k}", ids)
            self.values.check(item, f"{path}.{k}", ids)

    def describe(self) -> str:
        return f"v.record({self.keys.describe()}, {self.values.describe()})"

    def json(self) -> dict[str, Any]:
        return {"type": "record", "keys": self.keys.json(),
                "values": {"fieldType": self.values.json(), "optional": False}}


class ObjectValidator(Validator):
    def __init__(self, fields: dict[str, Validator]) -> None:
        self.fields = fields

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        if not isinstance(value, dict):
            self._fail(value, path)
        for name, validator in self.fields.items():
            if name not in value:
                if not validator.optional:
                    self._fail(value, path, f"Object is missing the required field `{name}`.")
                continue
            validator.check(value[name], f"{path}.{name}", ids)
        extra = [k for k in value if k not in self.fields]
        if extra:
            self._fail(value, path, f"Object contains extra field `{extra[0]}` that is not in the validator.")

    def describe(self) -> str:
        inner = ", ".join(f"{k}: {v.describe()}" for k, v in self.fields.items())
        return f"v.object({{{inner}}})"

    def json(self) -> dict[str, Any]:
        return {"type": "object", "value": {name: {"fieldType": val.json(), "optional": val.optional}
                                            for name, val in self.fields.items()}}


class _Union(Validator):
    def __init__(self, members: tuple[Validator, ...]) -> None:
        self.members = members

    def check(self, value: Any, path: str = "", ids: IdResolver | None = None) -> None:
        for member in self.members:
            try:
                member.check(value, path, ids)
                return
            except ValidationError:
                continue
        self._fail(value, path)

    def describe(self) -> str:
        return "v.union(" + ", ".join(m.describe() for m in self.members) + ")"

    def json(self) -> dict[str, Any]:
        return {"type": "union", "value": [m.json() for m in self.members]}


class _V:
    """The ``v`` namespace."""

    @staticmethod
    def string() -> Validator:
        return _Simple("string", lambda x: isinstance(x, str))

    @staticmethod
    def number() -> Validator:
        return _Simple("number", _is_number)

    float64 = number

    @staticmethod
    def int64() -> Validator:
        return _Simple("int64", lambda x: isinstance(x, Int64))

    @staticmethod
    def boolean() -> Validator:
        return _Simple("boolean", lambda x: isinstance(x, bool))

    @staticmethod
    def null() -> Validator:
        return _Simple("null", lambda x: x is None)

    @staticmethod
    def bytes() -> Validator:
        return _Simple("bytes", lambda x: isinstance(x, bytes))

    @staticmethod
    def any() -> Validator:
        return _Simple("any", lambda x: True)

    @staticmethod
    def id(table: str) -> Validator:
        return _Id(table)

    @staticmethod
    def literal(value: Any) -> Validator:
        return _Literal(value)

    @staticmethod
    def optional(inner: Validator) -> Validator:
        return _Optional(inner)

    @staticmethod
    def array(item: Validator) -> Validator:
        return _Array(item)

    @staticmethod
    def object(fields: dict[str, Validator]) -> ObjectValidator:
        return ObjectValidator(fields)

    @staticmethod
    def record(keys: Validator, values: Validator) -> Validator:
        return _Record(keys, values)

    @staticmethod
    def union(*members: Validator) -> Validator:
        return _Union(members)


v = _V()
