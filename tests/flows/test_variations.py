"""Variations end to end: the embedded backend, the run worker, litellm's real HTTP/SSE path
against the loopback server, and a human's client watching what the variations pane watches
(``variations:round`` + ``proposals:live``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collab.backend_client.api import api
from collab.backend_client.space import merge
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply
from tests.flows._world import World, make_config, worker, world
from tests.live import until

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

FIVE = ["rhea", "dara", "edwin", "quinn", "polly"]


async def _settled(w: World, round_id: str) -> list[dict[str, Any]]:
    with w.human.watch(api.variations.round, {"roundId": round_id}) as live:
        def done() -> list[dict[str, Any]] | None:
            rows = (live.value or {}).get("variations") or []
            return rows if rows and all(r["status"] in ("done", "failed", "cancelled") for r in rows) else None
        return await until(done, live, what="every variation to finish")


async def test_five_variations_stream_side_by_side_and_one_failing_fails_alone(
        tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    for i, h in enumerate(FIVE[:4]):
        openai_server.script(h, Reply(f"Version {i + 1}: " + "word " * 40, tokens_per_second=40))
    config = make_config(openai_server.base_url, {h: h for h in FIVE}, key_env={"polly": "COLLAB_TEST_NO_SUCH_KEY"})
    async with world(tmp_path, FIVE) as w:
        started = await w.human.mutation(api.variations.start, {"artifactId": w.artifact, "instruction": "say it",
                                                                "n": 5, "agents": FIVE})
        live = w.human.watch(api.proposals.live, {"artifactId": w.artifact})
        shown = w.human.watch(api.variations.round, {"roundId": started["roundId"]})
        most_at_once = 0

        def frame(_: Any) -> None:
            nonlocal most_at_once
            most_at_once = max(most_at_once, len(live.value or []))

        live.subscribe(frame)
        async with worker(w, config, FIVE):
            final = await _settled(w, started["roundId"])
        live.close()
        shown.close()
        by_author = {r["author"]: r for r in final}
        for i, h in enumerate(FIVE[:4]):
            row = by_author[h]
            assert row["status"] == "done" and row["content"] == f"Version {i + 1}: " + "word " * 40
            assert row["usage"]["completionTokens"] > 0 and row["costUsd"] == 0
        failed = by_author["polly"]
        assert failed["status"] == "failed" and "COLLAB_TEST_NO_SUCH_KEY" in failed["error"]
        assert most_at_once >= 2  # they streamed at the same time, not one after another
        assert await w.human.query(api.proposals.live, {"artifactId": w.artifact}) == []


async def test_one_agent_at_the_rounds_temperatures(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    openai_server.script("edwin", Reply("A take.", tokens_per_second=0))
    config = make_config(openai_server.base_url, {"edwin": "edwin"})
    async with world(tmp_path, ["edwin"]) as w, worker(w, config, ["edwin"]):
        started = await w.human.mutation(api.variations.start, {"artifactId": w.artifact, "instruction": "vary",
                                                                "n": 3, "temperatures": [0.1, 0.8, 1.5]})
        final = await _settled(w, started["roundId"])
        assert [r["status"] for r in final] == ["done"] * 3
        temps = sorted(req.body["temperature"] for req in openai_server.requests_for("edwin"))
        assert temps == [0.1, 0.8, 1.5]
        first = openai_server.requests_for("edwin")[0].messages
        assert "Step 1. Test the thing." in first[1]["content"] and "Instruction: vary" in first[1]["content"]


async def test_cancel_all_stops_the_streams_and_keeps_their_text(tmp_path: Path,
                                                                 openai_server: OpenAIStreamServer) -> None:
    for h in ("rhea", "dara"):
        openai_server.script(h, Reply("slow " * 400, tokens_per_second=20))
    config = make_config(openai_server.base_url, {h: h for h in ("rhea", "dara")})
    async with world(tmp_path, ["rhea", "dara"]) as w, worker(w, config, ["rhea", "dara"]) as wk:
        started = await w.human.mutation(api.variations.start, {"artifactId": w.artifact, "instruction": "x",
                                                                "n": 2, "agents": ["rhea", "dara"]})
        with w.human.watch(api.variations.round, {"roundId": started["roundId"]}) as shown, \
                w.human.watch(api.proposals.live, {"artifactId": w.artifact}) as tails:
            def both_writing() -> bool:
                rows = (shown.value or {}).get("variations") or []
                texts = {t["proposalId"]: t for t in tails.value or []}
                return len(rows) == 2 and all(len(merge(r["content"], texts.get(r["proposalId"]))) > 20 for r in rows)
            await until(both_writing, shown, tails, what="both variations to be writing")
        got = await w.human.mutation(api.variations.cancel, {"roundId": started["roundId"]})
        assert got == {"cancelled": 2}
        final = await _settled(w, started["roundId"])
        assert [r["status"] for r in final] == ["cancelled", "cancelled"]
        assert all(r["content"] and "slow" in r["content"] for r in final)  # what was written is kept

        def stopped() -> bool:
            return sum(1 for _, outcome in wk.finished if outcome == "cancelled") == 2 \
                and openai_server.stats.streams_abandoned == 2  # the HTTP streams were closed
        await until(stopped, what="the worker to stop both runs and close their streams")


async def test_compose_and_a_later_round_see_what_they_build_on(tmp_path: Path,
                                                               openai_server: OpenAIStreamServer) -> None:
    openai_server.script("edwin", Reply("def helper():\n    return 2\n\ndef main():\n    return helper()",
                                        tokens_per_second=0))
    openai_server.script("quinn", Reply("Merged: main calls the helper.", tokens_per_second=0))
    config = make_config(openai_server.base_url, {"edwin": "edwin", "quinn": "quinn"})
    async with world(tmp_path, ["edwin", "quinn"]) as w, worker(w, config, ["edwin", "quinn"]):
        first = await w.human.mutation(api.variations.start, {"artifactId": w.artifact, "instruction": "code it",
                                                              "n": 2, "agents": ["edwin"]})
        rows = await _settled(w, first["roundId"])
        made = await w.human.mutation(api.variations.compose, {
            "roundId": first["roundId"], "instruction": "take #2 but use the helper from #1", "agent": "quinn",
            "parts": [{"variationId": rows[1]["variationId"], "range": {"start": 3, "end": 5}},
                      {"variationId": rows[0]["variationId"], "range": {"start": 0, "end": 2}}]})
        assert made["composed"] == "agent"
        rows = await _settled(w, first["roundId"])
        composed = rows[2]
        assert composed["status"] == "done" and composed["content"] == "Merged: main calls the helper."
        assert [p["index"] for p in composed["provenance"]["parts"]] == [2, 1]
        asked = openai_server.requests_for("quinn")[0].messages[1]["content"]
        assert "def main():" in asked and "def helper():" in asked and "use the helper from #1" in asked
        # the next round carries the shortlist and the note into every prompt
        await w.human.mutation(api.variations.star, {"variationId": composed["variationId"]})
        nxt = await w.human.mutation(api.variations.more, {"roundId": first["roundId"], "n": 1,
                                                           "note": "shorter names"})
        await _settled(w, nxt["roundId"])
        later = openai_server.requests_for("edwin")[-1].messages[1]["content"]
        assert "Merged: main calls the helper." in later and "shorter names" in later
