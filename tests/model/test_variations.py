"""Variations at the engine level (fake clock): rounds queue their runs in one transaction,
stars make the shortlist the next round starts from, a pick is a fenced save that records the
variation, compose records every part, cancel keeps what was written, bad arguments change
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.model._harness import Harness, expect_error, ident, space_with

OWNER, ED, VIEW = ident("olga"), ident("edwin"), ident("vic")
ADA, BEN = ident("ada", "agent"), ident("ben", "agent")


@pytest.fixture
def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path / "db.sqlite")
    yield harness
    harness.close()


@pytest.fixture
def w(h: Harness) -> dict[str, Any]:
    space, art = space_with(h, OWNER, ((ED, "editor"), (VIEW, "viewer"), (ADA, "editor"), (BEN, "editor")))
    h.call("locks:acquire", {"artifactId": art}, OWNER)
    h.call("artifacts:save", {"artifactId": art, "token": 1, "content": "one\ntwo\nthree"}, OWNER)
    return {"space": space, "art": art}


def _round(h: Harness, rid: str, who: Any = OWNER) -> list[dict[str, Any]]:
    return h.call("variations:round", {"roundId": rid}, who)["variations"]


def _write(h: Harness, prop: str, author: Any, text: str, status: str = "done") -> None:
    h.call("proposals:open", {"proposalId": prop, "key": "k" * 16}, author)
    h.call("proposals:finish", {"proposalId": prop, "status": status, "content": text}, author)


def test_start_queues_one_run_per_variation_in_one_commit(h: Harness, w: dict[str, Any]) -> None:
    commits = h.engine.stats["commits"]
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "make it shorter", "n": 3,
                                      "agents": ["ada"], "temperatures": [0.2, 0.7, 1.2]}, ED)
    assert h.engine.stats["commits"] == commits + 1 and got["number"] == 1 and len(got["variationIds"]) == 3
    rows = _round(h, got["roundId"], VIEW)
    assert [(r["index"], r["author"], r["temperature"], r["status"], r["baseVersion"]) for r in rows] == [
        (1, "ada", 0.2, "queued", 2), (2, "ada", 0.7, "queued", 2), (3, "ada", 1.2, "queued", 2)]
    runs = sorted(h.call("runs:list", {"spaceId": w["space"]}, OWNER), key=lambda r: r["input"]["index"])
    assert [(r["kind"], r["status"], r["input"]["temperature"], r["artifactId"]) for r in runs] == [
        ("variation", "queued", t, w["art"]) for t in (0.2, 0.7, 1.2)]
    # several agents take turns
    two = h.call("variations:start", {"artifactId": w["art"], "instruction": "bolder", "n": 3,
                                      "agents": ["ada", "ben"]}, ED)
    assert [r["author"] for r in _round(h, two["roundId"])] == ["ada", "ben", "ada"] and two["number"] == 2


@pytest.mark.parametrize("args,code", [
    ({"n": 0}, "INVALID_ARGUMENT"), ({"n": 6}, "INVALID_ARGUMENT"), ({"n": 11, "maxN": 10}, "INVALID_ARGUMENT"),
    ({"n": 8, "maxN": 12}, "INVALID_ARGUMENT"), ({"n": 2.5}, "INVALID_ARGUMENT"),
    ({"n": 2, "agents": ["nobody"]}, "INVALID_ARGUMENT"), ({"n": 2, "agents": ["edwin"]}, "INVALID_ARGUMENT"),
    ({"n": 2, "temperatures": [0.5]}, "INVALID_ARGUMENT"), ({"n": 1, "temperatures": [3]}, "INVALID_ARGUMENT"),
    ({"n": 2, "instruction": "  "}, "INVALID_ARGUMENT"),
    ({"n": float("nan")}, "INVALID_ARGUMENT"), ({"n": float("inf")}, "INVALID_ARGUMENT"),
    ({"n": 2, "maxN": float("nan")}, "INVALID_ARGUMENT"), ({"n": 2, "maxN": float("inf")}, "INVALID_ARGUMENT"),
])
def test_bad_start_arguments_change_nothing(h: Harness, w: dict[str, Any], args: dict[str, Any], code: str) -> None:
    before = h.storage.last_ts
    data = expect_error(h, "variations:start", {"artifactId": w["art"], "instruction": "x", **args}, ED)
    assert data["code"] == code and data["message"]
    assert h.storage.last_ts == before


def test_a_flow_may_allow_up_to_ten(h: Harness, w: dict[str, Any]) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "x", "n": 8, "maxN": 10,
                                      "flow": "coding", "flowInstructions": "keep the API"}, ED)
    rnd = h.call("variations:round", {"roundId": got["roundId"]}, OWNER)["round"]
    assert rnd["n"] == 8 and rnd["flow"] == "coding" and rnd["flowInstructions"] == "keep the API"


def test_stars_are_the_shortlist_the_next_round_starts_from(h: Harness, w: dict[str, Any]) -> None:
    first = h.call("variations:start", {"artifactId": w["art"], "instruction": "shorter", "n": 3}, ED)
    v = first["variationIds"]
    assert expect_error(h, "variations:more", {"roundId": first["roundId"]}, ED)["code"] == "INVALID_ARGUMENT"
    h.call("variations:star", {"variationId": v[0]}, ED)
    h.call("variations:star", {"variationId": v[2]}, OWNER)
    h.call("variations:unstar", {"variationId": v[0]}, OWNER)  # the shortlist is shared
    assert [r["starred"] for r in _round(h, first["roundId"], VIEW)] == [False, False, True]
    assert expect_error(h, "variations:star", {"variationId": v[1]}, VIEW)["code"] == "INSUFFICIENT_ROLE"
    nxt = h.call("variations:more", {"roundId": first["roundId"], "note": "even shorter", "n": 2}, ED)
    rnd = h.call("variations:round", {"roundId": nxt["roundId"]}, OWNER)["round"]
    assert rnd["parentRoundId"] == first["roundId"] and rnd["shortlist"] == [v[2]] and rnd["note"] == "even shorter"
    assert rnd["instruction"] == "shorter" and rnd["number"] == 2 and len(nxt["variationIds"]) == 2
    rounds = h.call("variations:forArtifact", {"artifactId": w["art"]}, VIEW)
    assert [(r["number"], r["counts"], r["stars"]) for r in rounds] == [(2, {"queued": 2}, 0), (1, {"queued": 3}, 1)]


def test_pick_is_a_fenced_save_that_records_the_variation(h: Harness, w: dict[str, Any]) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "shorter", "n": 2, "agents": ["ada"]}, ED)
    rows = _round(h, got["roundId"])
    _write(h, rows[0]["proposalId"], ADA, "one\nthree")
    _write(h, rows[1]["proposalId"], ADA, "half", status="failed")
    # a failed variation, or a queued one, cannot be picked; nothing changes
    lock = h.call("locks:acquire", {"artifactId": w["art"]}, ED)
    before = h.storage.last_ts
    assert expect_error(h, "variations:pick", {"variationId": rows[1]["variationId"], "token": lock["token"]},
                        ED)["code"] == "NOT_READY"
    assert h.storage.last_ts == before
    # someone else holds the lock: the picker's token is not the live one
    assert expect_error(h, "variations:pick", {"variationId": rows[0]["variationId"], "token": lock["token"]},
                        OWNER)["code"] == "NOT_HOLDER"
    picked = h.call("variations:pick", {"variationId": rows[0]["variationId"], "token": lock["token"]}, ED)
    art = h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)
    assert art["content"] == "one\nthree" and art["version"] == picked["version"] == 3 and not art["lock"]["held"]
    version = h.call("artifacts:history", {"artifactId": w["art"], "includeContent": True}, VIEW)[0]
    assert version["source"] == "agent" and version["provenance"]["variationId"] == rows[0]["variationId"]
    assert version["provenance"]["roundId"] == got["roundId"] and version["provenance"]["author"] == "ada"
    after = _round(h, got["roundId"])
    assert after[0]["picked"] and not after[1]["picked"]
    assert h.call("variations:round", {"roundId": got["roundId"]}, OWNER)["round"]["picked"]["version"] == 3


def test_pick_races_a_human_editing(h: Harness, w: dict[str, Any]) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "x", "n": 1, "agents": ["ada"]}, ED)
    row = _round(h, got["roundId"])[0]
    _write(h, row["proposalId"], ADA, "variation text")
    human = h.call("locks:acquire", {"artifactId": w["art"]}, OWNER)  # the owner is editing
    queued = h.call("locks:acquire", {"artifactId": w["art"], "idempotencyKey": "pick"}, ED)
    assert queued["status"] == "queued"
    h.call("artifacts:save", {"artifactId": w["art"], "token": human["token"], "content": "the human's text"}, OWNER)
    grant = h.call("locks:acquire", {"artifactId": w["art"], "idempotencyKey": "pick"}, ED)
    picked = h.call("variations:pick", {"variationId": row["variationId"], "token": grant["token"]}, ED)
    history = h.call("artifacts:history", {"artifactId": w["art"], "includeContent": True}, VIEW)
    assert [(v["version"], v["content"]) for v in history[:2]] == [(4, "variation text"), (3, "the human's text")]
    assert picked["version"] == 4 and history[0]["provenance"]["baseVersion"] == 2


def test_compose_concatenates_non_overlapping_parts_with_provenance(h: Harness, w: dict[str, Any]) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "x", "n": 2, "agents": ["ada", "ben"]}, ED)
    rows = _round(h, got["roundId"])
    _write(h, rows[0]["proposalId"], ADA, "a1\na2\na3")
    _write(h, rows[1]["proposalId"], BEN, "b1\nb2")
    parts = [{"variationId": rows[1]["variationId"], "range": {"start": 0, "end": 1}},
             {"variationId": rows[0]["variationId"], "range": {"start": 1, "end": 3}}]
    made = h.call("variations:compose", {"roundId": got["roundId"], "parts": parts}, ED)
    assert made["composed"] == "concatenated"
    third = _round(h, got["roundId"])[2]
    assert third["content"] == "b1\na2\na3" and third["status"] == "done" and third["author"] == "edwin"
    prov = third["provenance"]
    assert prov["kind"] == "compose" and [(p["index"], p["range"]) for p in prov["parts"]] == [
        (2, {"start": 0, "end": 1}), (1, {"start": 1, "end": 3})]
    # picking a composition is a merge
    lock = h.call("locks:acquire", {"artifactId": w["art"]}, ED)
    h.call("variations:pick", {"variationId": third["variationId"], "token": lock["token"]}, ED)
    assert h.call("artifacts:history", {"artifactId": w["art"]}, VIEW)[0]["source"] == "merge"


def test_compose_with_an_instruction_or_overlap_asks_an_agent(h: Harness, w: dict[str, Any]) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "x", "n": 1, "agents": ["ada"]}, ED)
    row = _round(h, got["roundId"])[0]
    _write(h, row["proposalId"], ADA, "a1\na2\na3")
    overlap = [{"variationId": row["variationId"], "range": {"start": 0, "end": 2}},
               {"variationId": row["variationId"], "range": {"start": 1, "end": 3}}]
    made = h.call("variations:compose", {"roundId": got["roundId"], "parts": overlap}, ED)
    assert made["composed"] == "agent"
    guided = h.call("variations:compose", {"roundId": got["roundId"], "instruction": "use the helper from #1",
                                           "agent": "ben", "parts": overlap[:1]}, ED)
    runs = [r for r in h.call("runs:list", {"spaceId": w["space"]}, OWNER) if r["kind"] == "compose"]
    assert len(runs) == 2
    by_prop = {r["input"]["proposalId"]: r for r in runs}
    guided_run = by_prop[guided["proposalId"]]
    assert guided_run["input"]["instruction"] == "use the helper from #1"
    assert guided_run["input"]["parts"][0]["text"] == "a1\na2"
    assert {r["author"] for r in _round(h, got["roundId"])[1:]} == {"ada", "ben"}


@pytest.mark.parametrize("part,code", [
    ({"range": {"start": 0, "end": 9}}, "INVALID_ARGUMENT"), ({"range": {"start": 2, "end": 2}}, "INVALID_ARGUMENT"),
    ({"range": {"start": -1, "end": 1}}, "INVALID_ARGUMENT"),
    ({"range": {"start": float("nan"), "end": 1}}, "INVALID_ARGUMENT"),
    ({"range": {"start": 0, "end": float("inf")}}, "INVALID_ARGUMENT"),
])
def test_bad_parts_change_nothing(h: Harness, w: dict[str, Any], part: dict[str, Any], code: str) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "x", "n": 2, "agents": ["ada"]}, ED)
    rows = _round(h, got["roundId"])
    _write(h, rows[0]["proposalId"], ADA, "a1\na2")
    before = h.storage.last_ts
    data = expect_error(h, "variations:compose", {"roundId": got["roundId"], "parts": [
        {"variationId": rows[0]["variationId"], **part}]}, ED)
    assert data["code"] == code
    queued = expect_error(h, "variations:compose", {"roundId": got["roundId"], "parts": [
        {"variationId": rows[1]["variationId"], "range": {"start": 0, "end": 1}}]}, ED)
    assert queued["code"] == "NOT_READY"
    assert h.storage.last_ts == before


def test_cancel_one_or_all_keeps_what_was_written(h: Harness, w: dict[str, Any]) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "x", "n": 3, "agents": ["ada"]}, ED)
    rows = _round(h, got["roundId"])
    run = h.call("runs:claim", {"spaceId": w["space"]}, ADA)
    prop = run["input"]["proposalId"]
    opened = h.call("proposals:open", {"proposalId": prop, "key": "k" * 16}, ADA)
    h.call("proposals:append", {"proposalId": prop, "text": "durable "}, ADA)
    h.call("streams:push", {"chunks": [{"streamId": opened["streamId"], "key": "k" * 16, "text": "durable tail", "seq": 1}]}, ADA)
    one = next(r for r in rows if r["proposalId"] == prop)
    assert h.call("variations:cancel", {"roundId": got["roundId"], "variationId": one["variationId"]}, ED) == {
        "cancelled": 1}
    after = {r["variationId"]: r for r in _round(h, got["roundId"])}
    assert after[one["variationId"]]["status"] == "cancelled"
    assert after[one["variationId"]]["content"] == "durable tail"  # the live tail folded in
    assert [r["status"] for r in after.values()].count("queued") == 2
    assert h.call("proposals:live", {"artifactId": w["art"]}, VIEW) == []
    assert h.call("variations:cancel", {"roundId": got["roundId"]}, ED) == {"cancelled": 2}
    assert {r["status"] for r in _round(h, got["roundId"])} == {"cancelled"}
    assert {r["status"] for r in h.call("runs:list", {"spaceId": w["space"]}, OWNER)} == {"cancelled"}


def test_a_run_that_fails_fails_only_its_variation(h: Harness, w: dict[str, Any]) -> None:
    got = h.call("variations:start", {"artifactId": w["art"], "instruction": "x", "n": 2, "agents": ["ada"]}, ED)
    first = h.call("runs:claim", {"spaceId": w["space"]}, ADA)
    h.call("proposals:open", {"proposalId": first["input"]["proposalId"], "key": "k" * 16}, ADA)
    h.call("runs:fail", {"runId": first["_id"], "attempt": 1, "error": "no key for the model"}, ADA)
    rows = {r["proposalId"]: r for r in _round(h, got["roundId"])}
    assert rows[first["input"]["proposalId"]]["status"] == "failed"
    assert rows[first["input"]["proposalId"]]["error"] == "no key for the model"
    assert sorted(r["status"] for r in rows.values()) == ["failed", "queued"]
