"""Pipelines at the engine level (fake clock): the pipeline holds the artifact from start to
done, each stage's output waits for its approver, a rejection goes back with its reason, an
approval is a version that names the pipeline, the stage and the approver; failures stop the
pipeline and keep what was written; bad input changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.model._harness import Harness, expect_error, ident, space_with

OWNER, ALICE, BOB, VIEW = ident("olga"), ident("alice"), ident("bob"), ident("vic")
ADA, QUINN = ident("ada", "agent"), ident("quinn", "agent")
WRITING = [{"name": "draft", "actor": "ada"}, {"name": "edit", "actor": "human", "approver": "quinn"},
           {"name": "polish", "actor": "human:bob", "approver": "auto"}]


@pytest.fixture
def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path / "db.sqlite")
    yield harness
    harness.close()


@pytest.fixture
def w(h: Harness) -> dict[str, Any]:
    space, art = space_with(h, OWNER, ((ALICE, "editor"), (BOB, "editor"), (VIEW, "viewer"), (ADA, "editor"),
                                       (QUINN, "editor")))
    return {"space": space, "art": art}


def _start(h: Harness, w: dict[str, Any], stages: list[dict[str, Any]] | None = None, who: Any = ALICE,
           **extra: Any) -> str:
    return str(h.call("pipelines:start", {"artifactId": w["art"], "flow": "writing", "title": "Writing",
                                          "stages": stages or WRITING, **extra}, who)["pipelineId"])


def _get(h: Harness, pid: str) -> dict[str, Any]:
    return h.call("pipelines:get", {"pipelineId": pid}, VIEW)


def _current(h: Harness, pid: str) -> dict[str, Any]:
    return _get(h, pid)["runs"][-1]


def _work(h: Harness, pid: str, who: Any, text: str, *, stream: bool = False) -> dict[str, Any]:
    """The current stage's actor takes the lock and hands ``text`` in (an agent streams it into
    its proposal first)."""
    sr = _current(h, pid)
    token = h.call("locks:acquire", {"artifactId": sr["artifactId"] if "artifactId" in sr else
                                     _get(h, pid)["pipeline"]["artifactId"]}, who)["token"]
    args: dict[str, Any] = {"pipelineId": pid, "stageRunId": sr["_id"], "token": token}
    if stream:
        h.call("proposals:open", {"proposalId": sr["proposalId"], "key": "k" * 16, "token": token}, who)
        h.call("proposals:append", {"proposalId": sr["proposalId"], "text": text, "token": token}, who)
    else:
        args["content"] = text
    h.call("pipelines:submit", args, who)
    return {**sr, "token": token}


def _decide(h: Harness, pid: str, who: Any, reason: str | None = None, *, approve: bool = True) -> dict[str, Any]:
    sr = _current(h, pid)
    args: dict[str, Any] = {"pipelineId": pid, "stageRunId": sr["_id"]}
    if reason is not None:
        args["reason"] = reason
    return h.call("pipelines:approve" if approve else "pipelines:reject", args, who)


def test_start_holds_the_artifact_and_queues_the_first_stage_in_one_commit(h: Harness, w: dict[str, Any]) -> None:
    commits = h.engine.stats["commits"]
    pid = _start(h, w)
    assert h.engine.stats["commits"] == commits + 1
    got = _get(h, pid)
    assert got["pipeline"]["status"] == "running" and got["pipeline"]["current"] == 0
    assert [s["output"] for s in got["pipeline"]["stages"]] == ["content"] * 3
    assert [(r["stageName"], r["attempt"], r["status"], r["actorHandle"]) for r in got["runs"]] == [
        ("draft", 1, "working", "ada")]
    runs = h.call("runs:list", {"spaceId": w["space"]}, OWNER)
    assert [(r["kind"], r["status"], r["input"]["pipelineId"]) for r in runs] == [("stage", "queued", pid)]
    # everyone else is refused, with or without waiting, and told which pipeline and stage
    for who in (OWNER, BOB, QUINN):
        for wait in (True, False):
            data = expect_error(h, "locks:acquire", {"artifactId": w["art"], "wait": wait}, who)
            assert data["code"] == "LOCKED" and data["pipeline"]["stageName"] == "draft"
            assert "Writing pipeline holds this artifact" in data["message"] and "@ada" in data["message"]
    art = h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)
    assert art["lock"]["pipeline"]["title"] == "Writing" and art["lock"]["queueLength"] == 0
    assert h.call("locks:list", {"spaceId": w["space"]}, VIEW)[0]["pipeline"]["pipelineId"] == pid


@pytest.mark.parametrize("stages,extra,needle", [
    ([], {}, "1 to 10 stages"),
    ([{"name": " ", "actor": "ada"}], {}, "name must be"),
    ([{"name": "a", "actor": "nobody"}], {}, "@nobody is not an agent editor"),
    ([{"name": "a", "actor": "vic"}], {}, "@vic is not an agent editor"),
    ([{"name": "a", "actor": "human:vic"}], {}, "@vic is not a human editor"),
    ([{"name": "a", "actor": "auto"}], {}, "only approves"),
    ([{"name": "a", "actor": "ada", "approver": "@bob"}], {}, "must be an agent handle"),
    ([{"name": "a", "actor": "ada"}, {"name": "a", "actor": "ada"}], {}, "unique"),
    ([{"name": "a", "actor": "ada"}], {"maxAttempts": 0}, "maxAttempts"),
    ([{"name": "a", "actor": "ada"}], {"maxAttempts": 2.5}, "maxAttempts"),
    ([{"name": "a", "actor": "ada"}], {"maxAttempts": float("nan")}, "maxAttempts"),
    ([{"name": "a", "actor": "ada"}], {"maxAttempts": float("inf")}, "maxAttempts"),
])
def test_bad_start_changes_nothing(h: Harness, w: dict[str, Any], stages: list[dict[str, Any]],
                                   extra: dict[str, Any], needle: str) -> None:
    before = h.storage.last_ts
    data = expect_error(h, "pipelines:start", {"artifactId": w["art"], "stages": stages, **extra}, ALICE)
    assert data["code"] == "INVALID_ARGUMENT" and needle in data["message"], data
    assert h.storage.last_ts == before


def test_start_on_a_locked_or_piped_artifact_is_refused(h: Harness, w: dict[str, Any]) -> None:
    h.call("locks:acquire", {"artifactId": w["art"]}, BOB)
    before = h.storage.last_ts
    data = expect_error(h, "pipelines:start", {"artifactId": w["art"], "stages": WRITING}, ALICE)
    assert data["code"] == "LOCKED" and "@bob (human) holds the lock" in data["message"]
    assert h.storage.last_ts == before
    h.call("locks:release", {"artifactId": w["art"], "token": 1}, BOB)
    _start(h, w)
    data = expect_error(h, "pipelines:start", {"artifactId": w["art"], "stages": WRITING}, BOB)
    assert data["code"] == "LOCKED" and data["pipeline"]["title"] == "Writing"


def test_the_whole_writing_pipeline_with_a_rejection(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w)
    # draft by the agent, reviewed by any human: only a human may decide, a reason to reject
    first = _work(h, pid, ADA, "A first draft.", stream=True)
    assert _get(h, pid)["pipeline"]["status"] == "awaitingReview"
    assert expect_error(h, "pipelines:approve", {"pipelineId": pid, "stageRunId": first["_id"]}, QUINN)["code"] \
        == "FORBIDDEN"
    before = h.storage.last_ts
    for empty in ("", "   "):
        assert expect_error(h, "pipelines:reject", {"pipelineId": pid, "stageRunId": first["_id"],
                                                    "reason": empty}, BOB)["code"] == "INVALID_ARGUMENT"
    assert h.storage.last_ts == before
    assert _decide(h, pid, BOB, "It misses the intro.", approve=False) == {"status": "running", "attempt": 2}
    # the second attempt is on the same input, and a late decision on the first is refused
    assert expect_error(h, "pipelines:approve", {"pipelineId": pid, "stageRunId": first["_id"]}, ALICE)["code"] \
        == "STAGE_OVER"
    second = _work(h, pid, ADA, "Intro. A second draft.", stream=True)
    assert second["inputVersion"] == first["inputVersion"] == 1 and second["attempt"] == 2
    assert _decide(h, pid, ALICE, "good") == {"status": "running", "version": 2}
    art = h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)
    assert (art["version"], art["content"]) == (2, "Intro. A second draft.")
    # edit: any human works on it (alice takes it; bob is refused meanwhile), quinn reviews
    edit = _work(h, pid, ALICE, "Intro. An edited draft.")
    runs = [r for r in h.call("runs:list", {"spaceId": w["space"]}, OWNER) if r["kind"] == "review"]
    assert len(runs) == 1 and runs[0]["input"]["stageRunId"] == edit["_id"]
    assert expect_error(h, "pipelines:approve", {"pipelineId": pid, "stageRunId": edit["_id"]}, BOB)["code"] \
        == "FORBIDDEN"
    _decide(h, pid, QUINN, "clear now")
    # polish: only bob; auto-approved as soon as he hands it in
    assert expect_error(h, "locks:acquire", {"artifactId": w["art"]}, ALICE)["code"] == "LOCKED"
    _work(h, pid, BOB, "Intro. A polished draft.")
    got = _get(h, pid)
    assert got["pipeline"]["status"] == "done"
    assert [(r["stageName"], r["attempt"], r["status"], (r.get("reviewer") or {}).get("handle"), r.get("reason"),
             r.get("outputVersion")) for r in got["runs"]] == [
        ("draft", 1, "rejected", "bob", "It misses the intro.", None), ("draft", 2, "approved", "alice", "good", 2),
        ("edit", 1, "approved", "quinn", "clear now", 3), ("polish", 1, "approved", "auto", None, 4)]
    history = h.call("artifacts:history", {"artifactId": w["art"], "includeContent": True}, VIEW)
    assert [(v["version"], v["source"], v["provenance"]["stageName"], v["provenance"]["approver"])
            for v in history[:3]] == [(4, "human", "polish", "auto"), (3, "human", "edit", "quinn"),
                                      (2, "agent", "draft", "alice")]
    assert all(v["provenance"]["pipelineId"] == pid for v in history[:3])
    actors = {r["handle"]: r["actorId"] for r in h.call("spaces:members", {"spaceId": w["space"]}, VIEW)}
    assert [v["authorId"] for v in history[:3]] == [actors["bob"], actors["alice"], actors["ada"]]
    # every version names the hold its output was written under, ended by handing it in
    holds = {x["epoch"]: x for x in h.rows("lockHolds")}
    assert all(holds[v["lockEpoch"]]["endReason"] == "submitted" for v in history[:3])
    # done: the artifact is everybody's again
    assert h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)["lock"]["pipeline"] is None
    assert h.call("locks:acquire", {"artifactId": w["art"]}, OWNER)["status"] == "granted"
    kinds = [n["kind"] for n in h.call("notifications:list", {}, BOB)]
    assert "reviewNeeded" in kinds and "stageTurn" in kinds


def test_the_stage_actor_cannot_save_or_pick_it_hands_in(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w, [{"name": "edit", "actor": "human"}])
    token = h.call("locks:acquire", {"artifactId": w["art"]}, ALICE)["token"]
    for path, args in (("artifacts:save", {"content": "sneaky"}), ("artifacts:restore", {"version": 1})):
        data = expect_error(h, path, {"artifactId": w["art"], "token": token, **args}, ALICE)
        assert data["code"] == "PIPELINE_HOLDS" and "pipeline holds this artifact" in data["message"]
    # another human cannot take it while alice works on it
    assert expect_error(h, "locks:acquire", {"artifactId": w["art"]}, BOB)["code"] == "LOCKED"
    sr = _current(h, pid)
    assert sr["actorHandle"] == "alice" and sr["epoch"] == token
    data = expect_error(h, "pipelines:submit", {"pipelineId": pid, "stageRunId": sr["_id"], "token": token,
                                                "content": "  "}, ALICE)
    assert data["code"] == "INVALID_ARGUMENT"
    h.call("pipelines:submit", {"pipelineId": pid, "stageRunId": sr["_id"], "token": token, "content": "mine"}, ALICE)
    # handing in ended the hold: the token is stale and says why
    data = expect_error(h, "locks:renew", {"artifactId": w["art"], "token": token}, ALICE)
    assert data["code"] == "STALE_TOKEN" and data["reason"] == "submitted"
    assert h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)["version"] == 1


def test_notes_reach_the_record_not_the_artifact(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w, [{"name": "critique", "actor": "quinn", "output": "notes"},
                        {"name": "revise", "actor": "ada", "approver": "auto"}])
    _work(h, pid, QUINN, "1. The intro is missing.", stream=True)
    assert _decide(h, pid, ALICE) == {"status": "running", "version": None}
    assert h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)["version"] == 1
    got = _get(h, pid)
    assert got["runs"][0]["output"] == "1. The intro is missing." and got["runs"][1]["inputVersion"] == 1
    _work(h, pid, ADA, "Intro. v1", stream=True)
    assert _get(h, pid)["pipeline"]["status"] == "done"
    assert h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)["content"] == "Intro. v1"


def test_attempts_run_out_then_retry_or_cancel(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w, [{"name": "draft", "actor": "ada"}], maxAttempts=2)
    for n in (1, 2):
        _work(h, pid, ADA, f"draft {n}", stream=True)
        _decide(h, pid, BOB, f"no {n}", approve=False)
    p = _get(h, pid)["pipeline"]
    assert p["status"] == "failed" and "rejected 2 times, the maximum" in p["reason"] and "no 2" in p["reason"]
    # it still holds the artifact, and says so
    data = expect_error(h, "locks:acquire", {"artifactId": w["art"]}, BOB)
    assert data["code"] == "LOCKED" and "stopped at stage draft" in data["message"]
    assert expect_error(h, "pipelines:retry", {"pipelineId": pid}, BOB)["code"] == "FORBIDDEN"
    assert h.call("pipelines:retry", {"pipelineId": pid}, ALICE) == {"status": "running", "attempt": 3}
    assert expect_error(h, "pipelines:retry", {"pipelineId": pid}, ALICE)["code"] == "NOT_FAILED"
    assert expect_error(h, "pipelines:cancel", {"pipelineId": pid}, BOB)["code"] == "FORBIDDEN"
    h.call("pipelines:cancel", {"pipelineId": pid, "reason": "enough"}, OWNER)  # an owner may
    got = _get(h, pid)
    assert got["pipeline"]["status"] == "cancelled" and got["pipeline"]["reason"] == "enough"
    assert got["runs"][-1]["status"] == "cancelled"
    assert [r["status"] for r in h.call("runs:list", {"spaceId": w["space"]}, OWNER)].count("cancelled") == 1
    assert expect_error(h, "pipelines:cancel", {"pipelineId": pid}, OWNER)["code"] == "PIPELINE_OVER"
    assert h.call("locks:acquire", {"artifactId": w["art"]}, BOB)["status"] == "granted"


def test_a_dead_worker_fails_the_stage_keeps_its_output_and_frees_the_lock(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w, [{"name": "draft", "actor": "ada"}])
    run = h.call("runs:claim", {"spaceId": w["space"], "leaseMs": 5_000}, ADA)
    token = h.call("locks:acquire", {"artifactId": w["art"], "ttlMs": 10_000}, ADA)["token"]
    sr = _current(h, pid)
    stream = h.call("proposals:open", {"proposalId": sr["proposalId"], "key": "k" * 16, "token": token}, ADA)
    h.call("proposals:append", {"proposalId": sr["proposalId"], "text": "Half a dr", "token": token}, ADA)
    h.call("streams:push", {"chunks": [{"streamId": stream["streamId"], "key": "k" * 16, "text": "Half a draft",
                                       "seq": 1}]},
           ADA)
    h.advance(5_001)  # the claim's lease ends first: the run fails, the stage with it
    got = _get(h, pid)
    assert got["pipeline"]["status"] == "failed" and "stopped answering" in got["pipeline"]["reason"]
    assert got["runs"][0]["status"] == "failed" and got["runs"][0]["output"] == "Half a draft"  # tail folded in
    assert h.call("runs:get", {"runId": run["_id"]}, OWNER)["status"] == "failed"
    assert h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)["lock"]["held"]
    h.advance(5_000)  # then the lock's lease: free of holders, still the pipeline's
    lock = h.call("artifacts:get", {"artifactId": w["art"]}, VIEW)["lock"]
    assert not lock["held"] and lock["pipeline"]["status"] == "failed"
    assert expect_error(h, "proposals:append", {"proposalId": sr["proposalId"], "text": "x", "token": token},
                        ADA)["code"] == "NOT_STREAMING"
    assert expect_error(h, "runs:retry", {"runId": run["_id"]}, ALICE)["code"] == "PIPELINE_RUN"
    assert h.call("pipelines:retry", {"pipelineId": pid}, ALICE) == {"status": "running", "attempt": 2}
    again = _current(h, pid)
    assert again["status"] == "working" and again["runId"] != run["_id"] and again["output"] == ""


def test_stale_hold_cannot_write_the_stage_output(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w, [{"name": "draft", "actor": "ada"}])
    token = h.call("locks:acquire", {"artifactId": w["art"], "ttlMs": 1_000}, ADA)["token"]
    sr = _current(h, pid)
    assert expect_error(h, "proposals:open", {"proposalId": sr["proposalId"], "key": "k" * 16}, ADA)["code"] \
        == "INVALID_ARGUMENT"
    h.call("proposals:open", {"proposalId": sr["proposalId"], "key": "k" * 16, "token": token}, ADA)
    h.call("locks:forceRelease", {"artifactId": w["art"], "reason": "stuck"}, OWNER)
    data = expect_error(h, "proposals:append", {"proposalId": sr["proposalId"], "text": "x", "token": token}, ADA)
    assert data["code"] == "STALE_TOKEN" and data["reason"] == "forceReleased"
    assert expect_error(h, "proposals:finish", {"proposalId": sr["proposalId"], "status": "done"}, ADA)["code"] \
        == "STAGE_OUTPUT"
    # the agent may take the lock again for the same attempt; the old token stays dead
    fresh = h.call("locks:acquire", {"artifactId": w["art"]}, ADA)["token"]
    assert fresh == token + 1
    data = expect_error(h, "pipelines:submit", {"pipelineId": pid, "stageRunId": sr["_id"], "token": token,
                                                "content": "late"}, ADA)
    assert data["code"] == "STALE_TOKEN"
    h.call("pipelines:submit", {"pipelineId": pid, "stageRunId": sr["_id"], "token": fresh, "content": "ok"}, ADA)


def test_cancel_stops_the_agent_at_work_and_gives_the_artifact_back(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w, [{"name": "draft", "actor": "ada"}])
    h.call("runs:claim", {"spaceId": w["space"]}, ADA)
    token = h.call("locks:acquire", {"artifactId": w["art"]}, ADA)["token"]
    sr = _current(h, pid)
    h.call("proposals:open", {"proposalId": sr["proposalId"], "key": "k" * 16, "token": token}, ADA)
    h.call("proposals:append", {"proposalId": sr["proposalId"], "text": "partial", "token": token}, ADA)
    assert expect_error(h, "pipelines:cancel", {"pipelineId": pid}, BOB)["code"] == "FORBIDDEN"
    h.call("pipelines:cancel", {"pipelineId": pid}, ALICE)  # who started it may
    got = _get(h, pid)
    assert got["pipeline"]["reason"] == "cancelled by @alice" and got["runs"][0]["status"] == "cancelled"
    assert got["runs"][0]["output"] == "partial" and got["runs"][0]["outputStatus"] == "cancelled"
    assert h.call("runs:get", {"runId": sr["runId"]}, OWNER)["status"] == "cancelled"
    assert expect_error(h, "locks:renew", {"artifactId": w["art"], "token": token}, ADA)["code"] == "STALE_TOKEN"
    assert h.call("locks:acquire", {"artifactId": w["art"]}, BOB)["status"] == "granted"
    assert h.call("pipelines:forArtifact", {"artifactId": w["art"]}, VIEW)[0]["holding"] is False


def test_an_agent_run_that_ends_without_handing_in_fails_the_stage(h: Harness, w: dict[str, Any]) -> None:
    pid = _start(h, w, [{"name": "draft", "actor": "ada", "approver": "quinn"}])
    run = h.call("runs:claim", {"spaceId": w["space"]}, ADA)
    h.call("runs:complete", {"runId": run["_id"], "attempt": 1}, ADA)
    p = _get(h, pid)["pipeline"]
    assert p["status"] == "failed" and "without handing in" in p["reason"]
    h.call("pipelines:retry", {"pipelineId": pid}, ALICE)
    _work(h, pid, ADA, "done", stream=True)
    review = h.call("runs:claim", {"spaceId": w["space"]}, QUINN)
    h.call("runs:fail", {"runId": review["_id"], "attempt": 1, "error": "no verdict"}, QUINN)
    p = _get(h, pid)["pipeline"]
    assert p["status"] == "failed" and "the review of stage draft by @quinn failed: no verdict" in p["reason"]
    assert h.call("pipelines:retry", {"pipelineId": pid}, ALICE) == {"status": "awaitingReview", "attempt": 2}
    assert _decide(h, pid, QUINN, "fine") == {"status": "done", "version": 2}


def test_a_list_limit_that_is_not_a_number_is_refused(h: Harness, w: dict[str, Any]) -> None:
    data = expect_error(h, "pipelines:forArtifact", {"artifactId": w["art"], "limit": float("nan")}, ALICE)
    assert data["code"] == "INVALID_ARGUMENT" and "limit must be a number" in data["message"]
    assert h.call("pipelines:forArtifact", {"artifactId": w["art"], "limit": float("inf")}, ALICE) == []
