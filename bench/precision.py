"""Invalidation precision: how many queries a write re-runs, against the ideal.

1,000 live subscriptions over several tables (point gets, index ranges, newest-N windows,
counters), 10,000 random writes. For each write we count
  - re-runs:   subscriptions the engine re-executed,
  - ideal:     subscriptions whose result actually changed,
  - table:     subscriptions reading the written table (what table-level invalidation re-runs).
Every 500 writes all subscriptions are re-run from scratch and compared with the engine's
cached results, so a missed invalidation would show up as an error, not as a good ratio.

    python bench/precision.py [--subs 1000] [--writes 10000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from _common import ROOT  # noqa: F401  (puts the repo on sys.path)
from collab.backend.engine import ANONYMOUS, Engine, SharedQuery
from collab.backend.functions import App
from collab.backend.storage import Storage
from collab.backend.testing import TEST_APP

GROUPS = [f"g{i}" for i in range(40)]
CHANNELS = [f"c{i}" for i in range(40)]
COUNTERS = [f"k{i}" for i in range(500)]


class Counting:
    def queries_changed(self, ids: set[int]) -> None:
        pass

    def wake(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    app = App.from_package(TEST_APP)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Storage(Path(tmp) / "db.sqlite3", app.schema), app)

        def mut(path: str, **a: object) -> object:
            out = engine.run_mutation(path, [a])
            assert out.success, out.error_message
            return out.value

        items = [mut("items:add", group=rng.choice(GROUPS), rank=rng.randrange(100), label="x") for _ in range(2000)]
        for ch in CHANNELS:
            for i in range(5):
                mut("messages:send", channel=ch, body=f"{ch}-{i}")
        session = Counting()
        # Subscribed: half the groups, half the channels, half the counters; the rest get
        # writes nobody reads.
        sub_groups, sub_channels, sub_counters = GROUPS[:20], CHANNELS[:20], COUNTERS[:250]
        # Every subscription is a distinct query (no sharing flatters the figures).
        quarter = args.subs // 4
        gets = [("items:get", {"id": i}, "items") for i in rng.sample(items, quarter)]
        ranges = [("items:below", {"group": g, "below": b}, "items")
                  for g, b in rng.sample([(g, b) for g in sub_groups for b in range(10, 60)], quarter)]
        windows = [("messages:list", {"channel": c, "limit": n}, "messages")
                   for c, n in rng.sample([(c, n) for c in sub_channels for n in range(1, 16)], quarter)]
        counts = [("counter:get", {"name": k}, "counters") for k in sub_counters[: args.subs - 3 * quarter]]
        table_of: dict[tuple[str, str, str | None], str] = {}
        for qid, (path, a, table) in enumerate(gets + ranges + windows + counts):
            sq = engine.subscribe(session, qid, path, a, ANONYMOUS)
            table_of[sq.key] = table
        live: list[SharedQuery] = list(engine.queries.values())
        per_table = {t: sum(1 for sq in live if table_of[sq.key] == t) for t in ("items", "messages", "counters")}

        reruns = ideal = table_level = 0
        untouched_writes = untouched_reruns = 0
        errors = 0
        t0 = time.perf_counter()
        for w in range(1, args.writes + 1):
            before_runs = engine.stats["query_runs"]
            versions = {sq.key: sq.version for sq in live}
            r = rng.random()
            if r < 0.35:
                item = rng.choice(items)
                mut("items:relabel", id=item, label=f"l{w}")
                table = "items"
                touched = True
            elif r < 0.55:
                group = rng.choice(GROUPS)
                items.append(mut("items:add", group=group, rank=rng.randrange(100), label=f"n{w}"))  # type: ignore[arg-type]
                table, touched = "items", group in sub_groups
            elif r < 0.8:
                ch = rng.choice(CHANNELS)
                mut("messages:send", channel=ch, body=f"m{w}")
                table, touched = "messages", ch in sub_channels
            else:
                name = rng.choice(COUNTERS)
                mut("counter:inc", name=name)
                table, touched = "counters", name in sub_counters
            engine.flush()
            ran = engine.stats["query_runs"] - before_runs
            changed = sum(1 for sq in live if sq.version != versions[sq.key])
            reruns += ran
            ideal += changed
            table_level += per_table[table]
            if not touched:
                untouched_writes += 1
                untouched_reruns += ran
            if w % 500 == 0:
                for sq in live:
                    fresh = engine.run_query(sq.path, [sq.args])
                    if sq.outcome is None or fresh.fingerprint() != sq.outcome.fingerprint():
                        errors += 1
        elapsed = time.perf_counter() - t0
    print(f"precision: {len(live)} live subscriptions (all distinct), {args.writes} random writes, {elapsed:.1f} s")
    print(f"  re-executed queries      {reruns:8d}  ({reruns / args.writes:.3f} per write)")
    print(f"  ideal (result changed)   {ideal:8d}  ({ideal / args.writes:.3f} per write)")
    print(f"  table-level invalidation {table_level:8d}  ({table_level / args.writes:.3f} per write)")
    print(f"  ratio re-runs / ideal    {reruns / max(1, ideal):.3f}x  (floor: <= 1.25x)")
    print(f"  ratio table / ideal      {table_level / max(1, ideal):.1f}x")
    print(f"  writes touching no subscribed range: {untouched_writes}, re-runs caused: {untouched_reruns} (floor: 0)")
    print(f"  stale cached results found by full re-check: {errors} (must be 0)")


if __name__ == "__main__":
    main()
