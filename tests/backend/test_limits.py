"""Convex's limits on the embedded backend (backend/limits.py): each one fails the call with a
deployment's wording and changes nothing (the transaction is rolled back). The shared scenarios
(tests/scenarios/limits_*.json) check the same limits through the collaboration functions on
both backends; here each limit is driven directly, including those convex-test cannot check
(nesting, array length, object fields, user time) and those the Python client refuses to send.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collab.backend.engine import ADMIN, Engine, Outcome
from collab.backend.functions import App, mutation, query
from collab.backend.limits import (
    MAX_DOCUMENT_SIZE,
    LimitExceeded,
    Meter,
    TransactionLimits,
    format_size,
    nesting,
    value_size,
)
from collab.backend.schema import define_schema, define_table
from collab.backend.storage import Storage
from collab.backend.validators import v

schema = define_schema({"items": define_table({"n": v.number(), "blob": v.any()}).index("by_n", ["n"])})


@mutation(args={"count": v.number(), "blob": v.optional(v.any())})
def write(ctx: Any, args: dict[str, Any]) -> int:
    for i in range(int(args["count"])):
        ctx.db.insert("items", {"n": i, "blob": args.get("blob")})
    return int(args["count"])


@query(args={"limit": v.optional(v.number()), "over": v.optional(v.number())})
def scan(ctx: Any, args: dict[str, Any]) -> int:
    q = ctx.db.query("items")
    if "over" in args:  # filtered out documents were still scanned (and count)
        q = q.filter(lambda f: f.gt(f.field("n"), args["over"]))
    docs = q.take(int(args["limit"])) if "limit" in args else q.collect()
    return len(docs)


@query(args={"count": v.number()})
def ranges(ctx: Any, args: dict[str, Any]) -> int:
    for i in range(int(args["count"])):
        ctx.db.query("items").with_index("by_n", lambda q, i=i: q.eq("n", i)).first()
    return int(args["count"])


@mutation(args={"count": v.number()})
def schedule(ctx: Any, args: dict[str, Any]) -> int:
    for _ in range(int(args["count"])):
        ctx.scheduler.run_after(60_000, "limits:write", {"count": 1})
    ctx.db.insert("items", {"n": -1, "blob": None})
    return int(args["count"])


@mutation(args={"ms": v.number()})
def spin(ctx: Any, args: dict[str, Any]) -> None:
    ctx.db.insert("items", {"n": -2, "blob": None})
    end = time.thread_time() + args["ms"] / 1000
    while time.thread_time() < end:
        pass


@mutation(args={"ms": v.number()})
def spin_reads(ctx: Any, args: dict[str, Any]) -> None:
    """A loop that reads: the limit stops it at a database call, long before it ends."""
    end = time.thread_time() + args["ms"] / 1000
    while time.thread_time() < end:
        ctx.db.query("items").first()


@mutation(args={"count": v.number()})
def swallow(ctx: Any, args: dict[str, Any]) -> int:
    """Catches the limit error and carries on: the transaction must fail anyway."""
    try:
        for i in range(int(args["count"])):
            ctx.db.insert("items", {"n": i, "blob": None})
    except LimitExceeded:
        pass
    return 0


@query(args={"size": v.number()})
def big_result(ctx: Any, args: dict[str, Any]) -> list[int]:
    return [0] * int(args["size"])


@mutation(args={"blob": v.any()})
def store(ctx: Any, args: dict[str, Any]) -> str:
    return str(ctx.db.insert("items", {"n": 0, "blob": args["blob"]}))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    app = App(schema, {"limits": sys.modules[__name__]})
    storage = Storage(tmp_path / "db.sqlite", schema)
    yield Engine(storage, app)
    storage.close()


def mutate(engine: Engine, path: str, args: dict[str, Any]) -> Outcome:
    return engine.run_mutation(f"limits:{path}", [args], ADMIN)


def count(engine: Engine) -> int:
    out = engine.run_query("limits:scan", [{}], ADMIN)
    assert out.success, out.error_message
    return int(out.value)


def failed_with(outcome: Outcome, text: str) -> None:
    assert not outcome.success, "the call succeeded; a limit error was expected"
    assert outcome.error_data_json is None, "limits are plain errors, not ConvexError data"
    assert text in outcome.error_message, outcome.error_message


def unchanged(engine: Engine, before_ts: int, before_rows: int) -> None:
    assert engine.storage.last_ts == before_ts, "a failed transaction committed"
    assert count(engine) == before_rows


def test_documents_written(engine: Engine) -> None:
    engine.limits = TransactionLimits(documents_written=10)
    assert mutate(engine, "write", {"count": 10}).success
    ts = engine.storage.last_ts
    failed_with(mutate(engine, "write", {"count": 11}),
                "Uncaught Error: Too many writes in a single function execution (limit: 10)")
    unchanged(engine, ts, 10)


def test_default_documents_written_is_16000(engine: Engine) -> None:
    # 16,000 inserts take more than 1 s of CPU in Python: lift only the time limit here
    engine.limits = TransactionLimits(user_time_ms=600_000)
    failed_with(mutate(engine, "write", {"count": 16_001}), "(limit: 16000)")
    assert count(engine) == 0


def test_bytes_written(engine: Engine) -> None:
    engine.limits = TransactionLimits(bytes_written=10_000)
    failed_with(mutate(engine, "write", {"count": 2, "blob": "x" * 6_000}),
                "Too many bytes written in a single function execution (limit: 9.77 KiB)")
    assert count(engine) == 0
    assert mutate(engine, "write", {"count": 1, "blob": "x" * 6_000}).success


def test_documents_read_count_scanned_documents(engine: Engine) -> None:
    assert mutate(engine, "write", {"count": 30}).success
    engine.limits = TransactionLimits(documents_read=20)
    assert engine.run_query("limits:scan", [{"limit": 20}], ADMIN).success
    failed_with(engine.run_query("limits:scan", [{}], ADMIN),
                "Too many documents read in a single function execution (limit: 20). Consider using")
    # a filter does not reduce what was scanned: only 2 match, 30 were read
    failed_with(engine.run_query("limits:scan", [{"over": 27}], ADMIN), "Too many documents read")


def test_bytes_read(engine: Engine) -> None:
    assert mutate(engine, "write", {"count": 3, "blob": "y" * 5_000}).success
    engine.limits = TransactionLimits(bytes_read=12_000)
    assert engine.run_query("limits:scan", [{"limit": 2}], ADMIN).success
    failed_with(engine.run_query("limits:scan", [{}], ADMIN),
                "Too many bytes read in a single function execution (limit: 12000 bytes)")


def test_index_ranges(engine: Engine) -> None:
    engine.limits = TransactionLimits(index_ranges=50)
    assert engine.run_query("limits:ranges", [{"count": 50}], ADMIN).success
    failed_with(engine.run_query("limits:ranges", [{"count": 51}], ADMIN),
                "Too many reads in a single function execution (limit: 50)")


def test_default_index_ranges_is_4096(engine: Engine) -> None:
    assert engine.run_query("limits:ranges", [{"count": 4096}], ADMIN).success
    failed_with(engine.run_query("limits:ranges", [{"count": 4097}], ADMIN), "(limit: 4096)")


def test_functions_scheduled(engine: Engine) -> None:
    ts = engine.storage.last_ts
    failed_with(mutate(engine, "schedule", {"count": 1001}),
                "Too many functions scheduled by this mutation (limit: 1000)")
    unchanged(engine, ts, 0)
    jobs = engine.storage.db.execute("SELECT count(*) FROM scheduled").fetchone()[0]
    assert jobs == 0, "the scheduled jobs of a failed mutation were rolled back"
    assert mutate(engine, "schedule", {"count": 1000}).success


def test_user_time(engine: Engine) -> None:
    engine.limits = TransactionLimits(user_time_ms=50)
    ts = engine.storage.last_ts
    failed_with(mutate(engine, "spin", {"ms": 120}), "Function execution timed out (maximum duration: 50ms)")
    unchanged(engine, ts, 0)
    assert mutate(engine, "spin", {"ms": 1}).success


def test_user_time_stops_a_reading_loop_at_a_database_call(engine: Engine) -> None:
    engine.limits = TransactionLimits(user_time_ms=50, index_ranges=10**9, documents_read=10**9)
    started = time.thread_time()
    failed_with(mutate(engine, "spin_reads", {"ms": 5_000}), "Function execution timed out")
    assert time.thread_time() - started < 2.0, "the loop ran on past the limit"


def test_default_user_time_is_one_second() -> None:
    assert TransactionLimits().user_time_ms == 1000
    meter = Meter()
    assert meter.limits.user_time_ms == 1000


def test_a_caught_limit_still_fails_the_transaction(engine: Engine) -> None:
    engine.limits = TransactionLimits(documents_written=5)
    ts = engine.storage.last_ts
    failed_with(mutate(engine, "swallow", {"count": 8}), "Too many writes")
    unchanged(engine, ts, 0)


def test_document_size(engine: Engine) -> None:
    ts = engine.storage.last_ts
    failed_with(mutate(engine, "store", {"blob": "z" * MAX_DOCUMENT_SIZE}),
                "Value is too large (1 MiB > maximum size 1 MiB)")
    unchanged(engine, ts, 0)
    assert mutate(engine, "store", {"blob": "z" * (MAX_DOCUMENT_SIZE - 200)}).success


def test_document_nesting(engine: Engine) -> None:
    blob: Any = "leaf"
    for _ in range(15):
        blob = {"a": blob}
    assert mutate(engine, "store", {"blob": blob}).success  # the document is 16 deep
    failed_with(mutate(engine, "store", {"blob": {"a": blob}}),
                "Document is too nested (nested 17 levels deep > maximum nesting 16)")
    assert count(engine) == 1


def test_array_length_in_arguments_results_and_documents(engine: Engine) -> None:
    failed_with(mutate(engine, "store", {"blob": [0] * 8193}),
                "Array length is too long (8193 > maximum length 8192)")
    assert mutate(engine, "store", {"blob": [0] * 8192}).success
    failed_with(engine.run_query("limits:big_result", [{"size": 8193}], ADMIN), "Array length is too long")
    assert engine.run_query("limits:big_result", [{"size": 8192}], ADMIN).success


def test_object_fields(engine: Engine) -> None:
    failed_with(mutate(engine, "store", {"blob": {f"f{i}": i for i in range(1025)}}),
                "Object has too many fields (1025 > maximum number 1024)")
    assert mutate(engine, "store", {"blob": {f"f{i}": i for i in range(1024)}}).success


def test_sizes_are_convex_sizes() -> None:
    # the same numbers as convex/values getConvexSize (and the Rust ConvexValue::size)
    assert value_size(None) == 1 and value_size(True) == 1 and value_size(1.5) == 9
    assert value_size("é") == 4  # 2 + its UTF-8 bytes
    assert value_size({"a": "xy", "b": [1, None]}) == 22
    assert nesting({"a": [1]}) == 2 and nesting(3) == 0
    assert format_size(1 << 20) == "1 MiB" and format_size(1_100_000) == "1.05 MiB"
