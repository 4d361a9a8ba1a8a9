"""``ctx.db``: document reads and writes for functions, recording read sets and write sets.

Reads record the index key intervals they scanned (a ``get`` is a point interval on the
table's ``by_id`` index). A scan that stops early (``take``, ``first``, a page) records only
the part it actually scanned, so a subscription to "the last 50 messages" is not invalidated
by a write to message 51. Writes record the old and new index keys of every written
document. The engine matches the two (invalidation.py).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from collab.backend import keys
from collab.backend.errors import ConvexError
from collab.backend.ids import InvalidId, new_id, table_number_of
from collab.backend.limits import Meter, check_document
from collab.backend.schema import BY_CREATION_TIME, BY_ID, Schema
from collab.backend.storage import Storage, creation_time_ms, field_value, index_name
from collab.backend.validators import ValidationError

Interval = tuple[bytes, bytes | None]


@dataclass
class ReadSet:
    intervals: dict[str, list[Interval]] = field(default_factory=dict)

    def add(self, ix: str, lo: bytes, hi: bytes | None) -> None:
        self.intervals.setdefault(ix, []).append((lo, hi))

    def overlaps(self, writes: list[tuple[str, bytes]]) -> bool:
        for ix, key in writes:
            for lo, hi in self.intervals.get(ix, ()):
                if keys.in_interval(key, lo, hi):
                    return True
        return False


@dataclass
class WriteSet:
    keys: list[tuple[str, bytes]] = field(default_factory=list)
    documents: int = 0


class _IndexRange:
    """``q`` in ``with_index("by_x", lambda q: q.eq("a", 1).gt("b", 2))``."""

    def __init__(self, fields: list[str]) -> None:
        self._fields = fields
        self._eq: list[Any] = []
        self._lower: tuple[str, Any] | None = None
        self._upper: tuple[str, Any] | None = None

    def _next_field(self, name: str, op: str) -> None:
        pos = len(self._eq)
        if pos >= len(self._fields) or self._fields[pos] != name:
            expected = self._fields[pos] if pos < len(self._fields) else "(no more fields)"
            raise ValueError(f"index range .{op}({name!r}, ...) must name field {expected!r}")

    def eq(self, name: str, value: Any) -> "_IndexRange":
        if self._lower or self._upper:
            raise ValueError("eq() must come before range bounds in an index range")
        self._next_field(name, "eq")
        self._eq.append(value)
        return self

    def _bound(self, name: str, value: Any, op: str, upper: bool) -> "_IndexRange":
        self._next_field(name, op)
        slot = self._upper if upper else self._lower
        if slot is not None:
            raise ValueError(f"two {'upper' if upper else 'lower'} bounds in one index range")
        if upper:
            self._upper = (op, value)
        else:
            self._lower = (op, value)
        return self

    def gt(self, name: str, value: Any) -> "_IndexRange":
        return self._bound(name, value, "gt", upper=False)

    def gte(self, name: str, value: Any) -> "_IndexRange":
        return self._bound(name, value, "gte", upper=False)

    def lt(self, name: str, value: Any) -> "_IndexRange":
        return self._bound(name, value, "lt", upper=True)

    def lte(self, name: str, value: Any) -> "_IndexRange":
        return self._bound(name, value, "lte", upper=True)

    def interval(self) -> Interval:
        prefix = keys.encode_key(self._eq)
        lo: bytes = prefix
        hi: bytes | None = keys.prefix_end(prefix)
        if self._lower:
            op, value = self._lower
            bound = prefix + keys.encode_value(value)
            # Encodings start with a type tag < 0xFF, so prefix_end of one is never None.
            lo = bound if op == "gte" else keys.prefix_end(bound)  # type: ignore[assignment]
        if self._upper:
            op, value = self._upper
            bound = prefix + keys.encode_value(value)
            hi = bound if op == "lt" else keys.prefix_end(bound)
        return lo, hi


class Expr:
    """A filter expression (``q.eq(q.field("x"), 1)``), compared in Convex value order."""

    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.fn = fn


def _lift(x: Any) -> Expr:
    return x if isinstance(x, Expr) else Expr(lambda doc, _x=x: _x)


def _key(x: Any) -> bytes:
    return keys.encode_value(keys.MISSING if x is keys.MISSING else x)


class FilterBuilder:
    @staticmethod
    def field(path: str) -> Expr:
        return Expr(lambda doc: field_value(doc, path))

    @staticmethod
    def _cmp(a: Any, b: Any, test: Callable[[bytes, bytes], bool]) -> Expr:
        ea, eb = _lift(a), _lift(b)
        return Expr(lambda d: test(_key(ea.fn(d)), _key(eb.fn(d))))

    def eq(self, a: Any, b: Any) -> Expr:
        return self._cmp(a, b, lambda x, y: x == y)

    def neq(self, a: Any, b: Any) -> Expr:
        return self._cmp(a, b, lambda x, y: x != y)

    def lt(self, a: Any, b: Any) -> Expr:
        return self._cmp(a, b, lambda x, y: x < y)

    def lte(self, a: Any, b: Any) -> Expr:
        return self._cmp(a, b, lambda x, y: x <= y)

    def gt(self, a: Any, b: Any) -> Expr:
        return self._cmp(a, b, lambda x, y: x > y)

    def gte(self, a: Any, b: Any) -> Expr:
        return self._cmp(a, b, lambda x, y: x >= y)

    def and_(self, *exprs: Any) -> Expr:
        lifted = [_lift(e) for e in exprs]
        return Expr(lambda d: all(e.fn(d) is True for e in lifted))

    def or_(self, *exprs: Any) -> Expr:
        lifted = [_lift(e) for e in exprs]
        return Expr(lambda d: any(e.fn(d) is True for e in lifted))

    def not_(self, expr: Any) -> Expr:
        e = _lift(expr)
        return Expr(lambda d: e.fn(d) is not True)


_FILTER = FilterBuilder()


class Query:
    """``ctx.db.query(table)...``: an index range, an order, filters, then a terminal call."""

    def __init__(self, db: "DatabaseReader", table: str) -> None:
        self._db = db
        self._table = table
        self._index = BY_CREATION_TIME
        self._interval: Interval = (b"", None)
        self._descending = False
        self._filters: list[Expr] = []
        self._index_set = False

    def with_index(self, name: str, range_fn: Callable[[_IndexRange], Any] | None = None) -> "Query":
        if self._index_set:
            raise ValueError("with_index() may be called once")
        tdef = self._db.schema.table(self._table)
        try:
            fields = tdef.index_fields(name) + ["_creationTime"]
        except KeyError:
            raise ValueError(f"table {self._table!r} has no index {name!r}") from None
        rng = _IndexRange(fields)
        if range_fn is not None:
            range_fn(rng)
        self._index, self._interval, self._index_set = name, rng.interval(), True
        return self

    def order(self, direction: str) -> "Query":
        if direction not in ("asc", "desc"):
            raise ValueError("order() takes 'asc' or 'desc'")
        self._descending = direction == "desc"
        return self

    def filter(self, predicate: Callable[[FilterBuilder], Expr]) -> "Query":
        expr = predicate(_FILTER)
        if not isinstance(expr, Expr):
            raise TypeError("filter() takes a function of q returning a q expression")
        self._filters.append(expr)
        return self

    def _scan(self, lo: bytes, hi: bytes | None) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """Yield matching docs; records the scanned interval when the iteration ends."""
        ix = index_name(self._table, self._index)
        last: bytes | None = None
        complete = False
        meter = self._db.meter
        if meter is not None:
            meter.index_range()
        try:
            for key, doc in self._db.storage.scan(ix, lo, hi, self._descending):
                last = key
                if meter is not None:
                    meter.read(doc)  # scanned documents count, filtered out or not (as on Convex)
                if all(f.fn(doc) is True for f in self._filters):
                    yield key, doc
            complete = True
        finally:
            if complete or last is None:
                self._db.reads.add(ix, lo, hi)
            elif self._descending:
                self._db.reads.add(ix, last, hi)
            else:
                self._db.reads.add(ix, lo, keys.successor(last))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for _, doc in self._scan(*self._interval):
            yield doc

    def collect(self) -> list[dict[str, Any]]:
        return list(self)

    def take(self, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if n <= 0:
            return out
        it = iter(self)
        try:
            for doc in it:
                out.append(doc)
                if len(out) >= n:
                    break
        finally:
            it.close()  # type: ignore[attr-defined]
        return out

    def first(self) -> dict[str, Any] | None:
        docs = self.take(1)
        return docs[0] if docs else None

    def unique(self) -> dict[str, Any] | None:
        docs = self.take(2)
        if len(docs) > 1:
            raise ValueError(f"unique() found more than one document in {self._table!r}")
        return docs[0] if docs else None

    def paginate(self, opts: dict[str, Any]) -> dict[str, Any]:
        """``{"numItems": n, "cursor": str | None}`` -> ``{page, isDone, continueCursor}``."""
        num = int(opts.get("numItems", 0))
        cursor = opts.get("cursor")
        lo, hi = self._interval
        if cursor:
            try:
                after = base64.urlsafe_b64decode(cursor.encode())
            except (ValueError, TypeError):
                raise ConvexError({"code": "BAD_CURSOR", "message": "invalid pagination cursor"}) from None
            if self._descending:
                hi = after
            else:
                lo = keys.successor(after)
        page: list[dict[str, Any]] = []
        last_key = cursor.encode() if cursor else b""
        is_done = True
        gen = self._scan(lo, hi)
        try:
            for key, doc in gen:
                if len(page) >= num:
                    is_done = False
                    break
                page.append(doc)
                last_key = base64.urlsafe_b64encode(key)
        finally:
            gen.close()
        return {"page": page, "isDone": is_done, "continueCursor": last_key.decode() if page or cursor else ""}


class DatabaseReader:
    def __init__(self, storage: Storage, schema: Schema, meter: Meter | None = None) -> None:
        self.storage = storage
        self.schema = schema
        self.reads = ReadSet()
        # Convex's transaction limits (limits.py); the engine always passes one, direct readers
        # in tests need not.
        self.meter = meter

    def table_of(self, doc_id: str) -> str | None:
        try:
            return self.storage.tables_by_number.get(table_number_of(doc_id))
        except InvalidId:
            return None

    def get(self, doc_id: str) -> dict[str, Any] | None:
        table = self.table_of(doc_id)
        if table is None:
            return None
        if self.meter is not None:
            self.meter.index_range()
        self.reads.add(index_name(table, BY_ID), keys.encode_value(doc_id), keys.successor(keys.encode_value(doc_id)))
        found = self.storage.get(doc_id)
        if found is not None and self.meter is not None:
            self.meter.read(found[1])
        return found[1] if found else None

    def query(self, table: str) -> Query:
        self.schema.table(table)
        return Query(self, table)

    def normalize_id(self, table: str, doc_id: str) -> str | None:
        return doc_id if self.table_of(doc_id) == table else None


class DatabaseWriter(DatabaseReader):
    def __init__(self, storage: Storage, schema: Schema, ts: int, meter: Meter | None = None) -> None:
        super().__init__(storage, schema, meter)
        self.ts = ts
        self.writes = WriteSet()
        self._inserts = 0

    @property
    def commit_ts(self) -> int:
        # Each insert took a microsecond slot for its _creationTime; commit after the last.
        return self.ts + self._inserts * 1000

    def _validate(self, table: str, doc: dict[str, Any]) -> None:
        body = {k: val for k, val in doc.items() if k not in ("_id", "_creationTime")}
        bad = [k for k in body if k.startswith("_")]
        if bad:
            raise ValueError(f"field {bad[0]!r}: fields starting with '_' are reserved")
        tdef = self.schema.table(table)
        if tdef.fields is not None:
            try:
                tdef.fields.check(body, "", self.table_of)
            except ValidationError as exc:
                raise ValueError(f"Failed to insert or update a document in table {table!r}: {exc}") from None

    def _record(self, table: str, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        # Convex's document limits (size, nesting, arrays, fields) before anything is stored.
        size = check_document(new) if new is not None else 0
        if self.meter is not None:
            self.meter.write(size)
        for doc in (old, new):
            if doc is not None:
                self.writes.keys.extend(self.storage.all_index_keys(table, doc))
        self.writes.documents += 1
        self.storage.write(table, doc_id, old, new, self.ts)

    def insert(self, table: str, value: dict[str, Any]) -> str:
        self._validate(table, value)
        number = self.storage.table_number(table)
        doc_id = new_id(number)
        created = creation_time_ms(self.ts + self._inserts * 1000)
        self._inserts += 1
        doc = {**value, "_id": doc_id, "_creationTime": created}
        self._record(table, doc_id, None, doc)
        return doc_id

    def _existing(self, doc_id: str) -> tuple[str, dict[str, Any]]:
        table = self.table_of(doc_id)
        found = self.storage.get(doc_id) if table else None
        if found is None:
            raise ValueError(f"Document {doc_id!r} does not exist")
        # Writing depends on the document: a mutation reads what it overwrites.
        if self.meter is not None:
            self.meter.read(found[1])
        self.reads.add(index_name(found[0], BY_ID), keys.encode_value(doc_id), keys.successor(keys.encode_value(doc_id)))
        return found

    def patch(self, doc_id: str, fields: dict[str, Any]) -> None:
        table, old = self._existing(doc_id)
        new = dict(old)
        for k, val in fields.items():
            if k in ("_id", "_creationTime"):
                if val != old[k]:
                    raise ValueError(f"cannot change system field {k!r}")
                continue
            if val is UNDEFINED:
                new.pop(k, None)
            else:
                new[k] = val
        self._validate(table, new)
        self._record(table, doc_id, old, new)

    def replace(self, doc_id: str, value: dict[str, Any]) -> None:
        table, old = self._existing(doc_id)
        new = {**value, "_id": doc_id, "_creationTime": old["_creationTime"]}
        self._validate(table, new)
        self._record(table, doc_id, old, new)

    def delete(self, doc_id: str) -> None:
        table, old = self._existing(doc_id)
        self._record(table, doc_id, old, None)


class _Undefined:
    """Pass ``UNDEFINED`` as a patch value to remove a field (JS ``undefined``)."""

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()

