"""Engine behaviour without the network: read-set precision, scans, timestamps, scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collab.backend.engine import ANONYMOUS, Engine
from collab.backend.functions import App
from collab.backend.schema import define_schema, define_table
from collab.backend.storage import Storage
from collab.backend.testing import TEST_APP
from collab.backend.validators import v


class FakeSession:
    def __init__(self) -> None:
        self.changed: set[int] = set()

    def queries_changed(self, ids: set[int]) -> None:
        self.changed |= ids

    def wake(self) -> None:
        pass

    def take(self) -> set[int]:
        out, self.changed = self.changed, set()
        return out


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    app = App.from_package(TEST_APP)
    return Engine(Storage(tmp_path / "db.sqlite3", app.schema), app)


def mut(engine: Engine, path: str, **args: Any) -> Any:
    outcome = engine.run_mutation(path, [args])
    assert outcome.success, outcome.error_message
    return outcome.value


def test_write_outside_range_does_not_rerun(engine: Engine) -> None:
    s = FakeSession()
    engine.subscribe(s, 1, "items:below", {"group": "g", "below": 5}, ANONYMOUS)
    runs = engine.stats["query_runs"]
    mut(engine, "items:add", group="g", rank=7, label="high")  # same group, outside the range
    mut(engine, "items:add", group="h", rank=1, label="other")  # other group
    mut(engine, "counter:inc", name="x")  # other table
    assert s.take() == set() and engine.stats["query_runs"] == runs
    mut(engine, "items:add", group="g", rank=1, label="low")
    assert s.take() == {1}
    sq = next(iter(engine.queries.values()))
    assert sq.outcome is not None and sq.outcome.value == ["low"]


def test_moving_a_document_out_of_a_range_reruns(engine: Engine) -> None:
    item = mut(engine, "items:add", group="g", rank=1, label="a")
    s = FakeSession()
    engine.subscribe(s, 1, "items:get", {"id": item}, ANONYMOUS)
    engine.subscribe(s, 2, "items:below", {"group": "g", "below": 5}, ANONYMOUS)
    mut(engine, "items:relabel", id=item, label="b")
    assert s.take() == {1, 2}


def test_point_get_only_reruns_for_its_document(engine: Engine) -> None:
    a = mut(engine, "items:add", group="g", rank=1, label="a")
    b = mut(engine, "items:add", group="g", rank=2, label="b")
    s = FakeSession()
    engine.subscribe(s, 1, "items:get", {"id": a}, ANONYMOUS)
    mut(engine, "items:relabel", id=b, label="bb")
    assert s.take() == set()
    mut(engine, "items:relabel", id=a, label="aa")
    assert s.take() == {1}


def test_take_records_only_the_scanned_window(engine: Engine) -> None:
    for i in range(10):
        mut(engine, "messages:send", channel="c", body=f"m{i}")
    s = FakeSession()
    engine.subscribe(s, 1, "messages:list", {"channel": "c", "limit": 3}, ANONYMOUS)
    sq = next(iter(engine.queries.values()))
    assert [m["body"] for m in sq.outcome.value] == ["m9", "m8", "m7"]  # type: ignore[union-attr]
    # a new message lands inside the newest-first window
    mut(engine, "messages:send", channel="c", body="m10")
    assert s.take() == {1}


def test_unchanged_result_keeps_version(engine: Engine) -> None:
    s = FakeSession()
    sq = engine.subscribe(s, 1, "counter:get", {"name": "z"}, ANONYMOUS)
    mut(engine, "counter:inc", name="z", by=0)  # creates the row: result 0 -> 0
    assert sq.version == 1 and s.take() == set()


def test_pagination_walks_every_document_once(engine: Engine) -> None:
    for i in range(25):
        mut(engine, "messages:send", channel="p", body=str(i))
    seen: list[str] = []
    cursor = None
    while True:
        out = engine.run_query("messages:page", [{"channel": "p", "numItems": 10, "cursor": cursor}])
        assert out.success, out.error_message
        page = out.value
        seen += [m["body"] for m in page["page"]]
        if page["isDone"]:
            break
        cursor = page["continueCursor"]
    assert seen == [str(i) for i in range(25)]


def test_timestamps_unique_increasing_and_monotonic_across_restarts(tmp_path: Path) -> None:
    app = App.from_package(TEST_APP)
    seen: list[int] = []
    for _ in range(3):
        storage = Storage(tmp_path / "db.sqlite3", app.schema)
        engine = Engine(storage, app)
        for _ in range(20):
            out = engine.run_mutation("counter:inc", [{"name": "t"}])
            assert out.ts is not None
            seen.append(out.ts)
        total = engine.run_query("counter:get", [{"name": "t"}]).value
        storage.close()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert total == 60


def test_creation_times_strictly_increase(engine: Engine) -> None:
    ids = [mut(engine, "items:add", group="g", rank=i, label="x") for i in range(5)]
    times = [engine.run_query("items:get", [{"id": i}]).value["_creationTime"] for i in ids]
    assert times == sorted(times) and len(set(times)) == 5


def test_failed_mutation_leaves_no_trace(engine: Engine) -> None:
    out = engine.run_mutation("counter:fail", [{"data": {"code": "X"}}])
    assert not out.success and out.error_data_json == '{"code":"X"}'
    assert engine.run_query("counter:get", [{"name": "x"}]).value == 0


def test_schema_validation_on_write(tmp_path: Path) -> None:
    from collab.backend.functions import mutation

    @mutation(args={})
    def bad(ctx: Any, args: Any) -> None:
        ctx.db.insert("counters", {"name": "x", "value": "not a number"})

    app = App.from_package(TEST_APP)
    app.register("bad:insert", bad)
    engine = Engine(Storage(tmp_path / "db.sqlite3", app.schema), app)
    out = engine.run_mutation("bad:insert", [{}])
    assert not out.success and "value" in out.error_message


def test_new_index_is_backfilled(tmp_path: Path) -> None:
    from collab.backend.functions import query

    schema1 = define_schema({"notes": define_table({"tag": v.string()})})
    app1 = App(schema1)
    st = Storage(tmp_path / "db.sqlite3", schema1)
    eng = Engine(st, app1)
    from collab.backend.functions import mutation

    @mutation(args={"tag": v.string()})
    def add(ctx: Any, args: Any) -> str:
        return ctx.db.insert("notes", {"tag": args["tag"]})

    app1.register("notes:add", add)
    for tag in ["a", "b", "a"]:
        assert eng.run_mutation("notes:add", [{"tag": tag}]).success
    st.close()

    schema2 = define_schema({"notes": define_table({"tag": v.string()}).index("by_tag", ["tag"])})

    @query(args={"tag": v.string()})
    def by_tag(ctx: Any, args: Any) -> int:
        return len(ctx.db.query("notes").with_index("by_tag", lambda q: q.eq("tag", args["tag"])).collect())

    app2 = App(schema2)
    app2.register("notes:byTag", by_tag)
    eng2 = Engine(Storage(tmp_path / "db.sqlite3", schema2), app2)
    assert eng2.run_query("notes:byTag", [{"tag": "a"}]).value == 2


async def test_scheduled_mutation_runs_once_and_survives_restart(tmp_path: Path) -> None:
    now = [1_000_000.0]
    app = App.from_package(TEST_APP)
    storage = Storage(tmp_path / "db.sqlite3", app.schema)
    engine = Engine(storage, app, clock=lambda: now[0])
    assert engine.run_mutation("counter:inc_later", [{"name": "s", "by": 2, "delayMs": 5000}]).success
    engine.run_due_jobs()
    assert engine.run_query("counter:get", [{"name": "s"}]).value == 0
    storage.close()
    # restart before it is due
    storage = Storage(tmp_path / "db.sqlite3", app.schema)
    engine = Engine(storage, app, clock=lambda: now[0])
    now[0] += 5000
    engine.run_due_jobs()
    engine.run_due_jobs()
    assert engine.run_query("counter:get", [{"name": "s"}]).value == 2
    storage.close()
    storage = Storage(tmp_path / "db.sqlite3", app.schema)
    engine = Engine(storage, app, clock=lambda: now[0])
    engine.run_due_jobs()
    assert engine.run_query("counter:get", [{"name": "s"}]).value == 2


def test_internal_functions_are_not_public(engine: Engine) -> None:
    out = engine.run_mutation("counter:inc_internal", [{"name": "i", "by": 1}])
    assert not out.success and "Could not find public function" in out.error_message


async def test_action_calls_mutations(engine: Engine) -> None:
    out = await engine.run_action("slow:bump_twice", [{"name": "a"}])
    assert out.success and out.value == 2


def test_old_dedupe_records_are_pruned_at_start(tmp_path: Path) -> None:
    import time

    app = App.from_package(TEST_APP)
    storage = Storage(tmp_path / "db.sqlite3", app.schema)
    storage.db.execute("BEGIN")
    storage.record_session_request("old-session", 1, 1, "null")  # ts 1: decades ago
    live_ts = time.time_ns()
    storage.record_session_request("live-session", 1, live_ts, "null")
    storage.db.execute("COMMIT")
    storage.close()
    storage = Storage(tmp_path / "db.sqlite3", app.schema)
    assert storage.session_request("old-session", 1) is None
    assert storage.session_request("live-session", 1) == (live_ts, "null")
