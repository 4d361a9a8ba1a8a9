"""Table declarations: field validators and named indexes, as in Convex's ``defineSchema``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from collab.backend.validators import ObjectValidator, Validator, v

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
BY_ID = "by_id"
BY_CREATION_TIME = "by_creation_time"


def check_identifier(name: str, what: str) -> str:
    if not _IDENT.match(name) or set(name) == {"_"}:
        raise ValueError(f"invalid {what} name {name!r}")
    return name


@dataclass
class TableDef:
    fields: ObjectValidator | None  # None: any document shape
    indexes: dict[str, list[str]] = field(default_factory=dict)

    def index(self, name: str, fields: list[str]) -> "TableDef":
        check_identifier(name, "index")
        if name in (BY_ID, BY_CREATION_TIME) or name in self.indexes:
            raise ValueError(f"index name {name!r} is reserved or already used")
        if not fields:
            raise ValueError(f"index {name!r} needs at least one field")
        # Convex appends _creationTime to every index; we also append _id for unique keys.
        self.indexes[name] = list(fields)
        return self

    def index_fields(self, name: str) -> list[str]:
        if name == BY_CREATION_TIME:
            return []
        try:
            return self.indexes[name]
        except KeyError:
            raise KeyError(name) from None


def define_table(fields: dict[str, Validator] | ObjectValidator | None = None) -> TableDef:
    if isinstance(fields, dict):
        fields = v.object(fields)
    return TableDef(fields=fields)


@dataclass
class Schema:
    tables: dict[str, TableDef]

    def table(self, name: str) -> TableDef:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"table {name!r} is not in the schema") from None

    def index_signature(self) -> dict[str, Any]:
        """What the stored index entries depend on; a change triggers a backfill."""
        return {t: {k: list(f) for k, f in d.indexes.items()} for t, d in self.tables.items()}


def define_schema(tables: dict[str, TableDef]) -> Schema:
    for name in tables:
        check_identifier(name, "table")
        if name.startswith("_"):
            raise ValueError(f"table names starting with '_' are reserved: {name!r}")
    return Schema(tables=dict(tables))
