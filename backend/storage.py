"""SQLite storage: documents, index entries, commit timestamps, system records.

One connection, one writer (the engine runs mutations one at a time on the event loop), WAL
journal. ``synchronous=NORMAL`` in WAL mode keeps every committed transaction across a killed
process (the WAL is written before COMMIT returns; only an OS crash or power loss can lose the
last transactions). ``durability="full"`` fsyncs every commit for those cases too.

Index entries are rows ``(ix, key, id)`` where ``key`` is the order-preserving encoding of the
indexed fields + ``_creationTime`` + ``_id`` (see keys.py), so an index range is a plain
``key >= lo AND key < hi`` scan on the primary key.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collab.backend import keys
from collab.backend.ids import FIRST_USER_TABLE_NUMBER
from collab.backend.schema import BY_CREATION_TIME, BY_ID, Schema
from collab.wire import dumps, loads

_DDL = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tables (name TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, tbl TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_entries (
    ix TEXT NOT NULL, key BLOB NOT NULL, id TEXT NOT NULL, PRIMARY KEY (ix, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_requests (
    session_id TEXT NOT NULL, request_id INTEGER NOT NULL, ts INTEGER NOT NULL,
    result TEXT NOT NULL, PRIMARY KEY (session_id, request_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scheduled (
    id TEXT PRIMARY KEY, run_at_ms REAL NOT NULL, udf_path TEXT NOT NULL, args TEXT NOT NULL,
    state TEXT NOT NULL, created_ts INTEGER NOT NULL, completed_ts INTEGER, error TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scheduled_due ON scheduled (state, run_at_ms);
"""

SCHEMA_VERSION = "1"
# Mutation dedupe records only matter while a client may still replay (minutes); a week is
# far beyond any reconnect and keeps the table from growing forever.
SESSION_REQUEST_RETENTION_NS = 7 * 24 * 3600 * 10**9


def index_name(table: str, index: str) -> str:
    return f"{table}.{index}"


def creation_time_ms(ns: int) -> float:
    """``_creationTime``: float milliseconds with a microsecond fraction (PROTOCOL 4.3)."""
    return (ns // 1000) / 1000.0


class Storage:
    def __init__(self, path: Path | str, schema: Schema, *, durability: str = "normal") -> None:
        self.path = str(path)
        self.schema = schema
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        self.db.execute("PRAGMA foreign_keys=OFF")
        self.db.executescript(_DDL)
        self.last_ts = int(self._meta("last_ts") or 0)
        self.table_numbers: dict[str, int] = dict(self.db.execute("SELECT name, number FROM tables"))
        self.tables_by_number: dict[int, str] = {n: t for t, n in self.table_numbers.items()}
        self._in_tx = False
        self._migrate_indexes()
        self._prune_session_requests()

    # --- meta and tables ----------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def table_number(self, table: str) -> int:
        """The stable number of a table (assigned once, kept across restarts)."""
        number = self.table_numbers.get(table)
        if number is None:
            number = max(self.table_numbers.values(), default=FIRST_USER_TABLE_NUMBER - 1) + 1
            self.db.execute("INSERT INTO tables (name, number) VALUES (?, ?)", (table, number))
            self.table_numbers[table] = number
            self.tables_by_number[number] = table
        return number

    def _migrate_indexes(self) -> None:
        """Rebuild index entries whose definition changed since the last start."""
        wanted = self.schema.index_signature()
        stored = json.loads(self._meta("indexes") or "{}")
        if stored == wanted:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table in set(stored) | set(wanted):
                if stored.get(table) == wanted.get(table):
                    continue
                # every stored index of the table, by_creation_time included ('/' follows '.')
                self.db.execute(
                    "DELETE FROM index_entries WHERE ix >= ? AND ix < ?", (f"{table}.", f"{table}/")
                )
                if table in self.schema.tables:
                    for (body,) in self.db.execute(
                        "SELECT body FROM documents WHERE tbl = ?", (table,)
                    ).fetchall():
                        doc = loads(body)
                        for ix, key in self.user_index_keys(table, doc):
                            self.db.execute(
                                "INSERT INTO index_entries (ix, key, id) VALUES (?, ?, ?)",
                                (ix, key, doc["_id"]),
                            )
            self._set_meta("indexes", json.dumps(wanted, sort_keys=True))
            self._set_meta("schema_version", SCHEMA_VERSION)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _prune_session_requests(self) -> None:
        cutoff = time.time_ns() - SESSION_REQUEST_RETENTION_NS
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM session_requests WHERE ts < ?", (cutoff,))

    # --- transactions -------------------------------------------------------------------------

    def begin(self, inserts_hint: int = 0) -> int:
        """Start the write transaction; returns the base timestamp (ns) it will commit at."""
        self.db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        now = time.time_ns() // 1000 * 1000
        return max(now, self.last_ts + 1000)

    def commit(self, ts: int) -> None:
        self._set_meta("last_ts", str(ts))
        self.db.execute("COMMIT")
        self._in_tx = False
        self.last_ts = ts

    def rollback(self) -> None:
        if self._in_tx:
            self.db.execute("ROLLBACK")
            self._in_tx = False
        # Table numbers assigned inside a rolled-back transaction are gone from disk.
        self.table_numbers = dict(self.db.execute("SELECT name, number FROM tables"))
        self.tables_by_number = {n: t for t, n in self.table_numbers.items()}

    # --- documents ----------------------------------------------------------------------------

    def get(self, doc_id: str) -> tuple[str, dict[str, Any]] | None:
        row = self.db.execute("SELECT tbl, body FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        return row[0], loads(row[1])

    def user_index_keys(self, table: str, doc: dict[str, Any]) -> list[tuple[str, bytes]]:
        """(ix, key) of a document for every stored index (all but by_id)."""
        tail = [doc["_creationTime"], doc["_id"]]
        out = [(index_name(table, BY_CREATION_TIME), keys.encode_key(tail))]
        tdef = self.schema.tables.get(table)
        if tdef is not None:
            for name, fields in tdef.indexes.items():
                values = [field_value(doc, f) for f in fields] + tail
                out.append((index_name(table, name), keys.encode_key(values)))
        return out

    def all_index_keys(self, table: str, doc: dict[str, Any]) -> list[tuple[str, bytes]]:
        """Every index key of a document, by_id included: the write set of a write."""
        return [(index_name(table, BY_ID), keys.encode_value(doc["_id"]))] + self.user_index_keys(
            table, doc
        )

    def write(
        self, table: str, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None, ts: int
    ) -> None:
        """Insert / replace / delete one document and its index entries (inside a tx)."""
        if old is not None:
            for ix, key in self.user_index_keys(table, old):
                self.db.execute("DELETE FROM index_entries WHERE ix = ? AND key = ?", (ix, key))
        if new is None:
            self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            return
        self.db.execute(
            "INSERT OR REPLACE INTO documents (id, tbl, ts, body) VALUES (?, ?, ?, ?)",
            (doc_id, table, ts, dumps(new)),
        )
        for ix, key in self.user_index_keys(table, new):
            self.db.execute("INSERT INTO index_entries (ix, key, id) VALUES (?, ?, ?)", (ix, key, doc_id))

    def scan(
        self, ix: str, lo: bytes, hi: bytes | None, descending: bool
    ) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """Index entries in [lo, hi), in key order, joined with their documents."""
        order = "DESC" if descending else "ASC"
        if hi is None:
            sql = (
                "SELECT e.key, d.body FROM index_entries e JOIN documents d ON d.id = e.id "
                f"WHERE e.ix = ? AND e.key >= ? ORDER BY e.key {order}"
            )
            cursor = self.db.execute(sql, (ix, lo))
        else:
            sql = (
                "SELECT e.key, d.body FROM index_entries e JOIN documents d ON d.id = e.id "
                f"WHERE e.ix = ? AND e.key >= ? AND e.key < ? ORDER BY e.key {order}"
            )
            cursor = self.db.execute(sql, (ix, lo, hi))
        while True:
            rows = cursor.fetchmany(64)
            if not rows:
                return
            for key, body in rows:
                yield key, loads(body)

    # --- mutation dedupe (PROTOCOL 3.4) --------------------------------------------------------

    def session_request(self, session_id: str, request_id: int) -> tuple[int, str] | None:
        row = self.db.execute(
            "SELECT ts, result FROM session_requests WHERE session_id = ? AND request_id = ?",
            (session_id, request_id),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def record_session_request(self, session_id: str, request_id: int, ts: int, result: str) -> None:
        self.db.execute(
            "INSERT INTO session_requests (session_id, request_id, ts, result) VALUES (?, ?, ?, ?)",
            (session_id, request_id, ts, result),
        )

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass


def field_value(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted field path, or ``keys.MISSING`` (Convex ``undefined``)."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return keys.MISSING
        value = value[part]
    return value
