"""``artifacts:delete``: refused while someone else holds the lock, audited, and everything that
hung on the artifact (its lock and queue, runs, live tails, versions, drafts) goes with it."""

from __future__ import annotations

from pathlib import Path

from tests.model._harness import Harness, expect_error, ident, space_with

OWNER, EDITOR, AGENT = ident("olga"), ident("eddie"), ident("ada", "agent")


def _world(tmp_path: Path) -> tuple[Harness, str, str]:
    h = Harness(tmp_path / "db.sqlite")
    space, art = space_with(h, OWNER, ((EDITOR, "editor"), (AGENT, "editor")))
    return h, space, art


def test_refused_while_someone_else_holds_the_lock(tmp_path: Path) -> None:
    h, space, art = _world(tmp_path)
    h.call("locks:acquire", {"artifactId": art, "ttlMs": 10_000}, EDITOR)
    err = expect_error(h, "artifacts:delete", {"artifactId": art}, OWNER)
    assert err["code"] == "LOCKED" and err["holder"]["handle"] == "eddie"
    assert h.call("artifacts:get", {"artifactId": art}, OWNER)["title"] == "Test plan"
    # a lease that ended no longer protects it (the lazy sweep runs first)
    h.now += 10_001
    assert h.call("artifacts:delete", {"artifactId": art}, OWNER)["deleted"]


def test_the_callers_own_hold_ends_with_it_and_waiters_leave(tmp_path: Path) -> None:
    h, space, art = _world(tmp_path)
    h.call("locks:acquire", {"artifactId": art}, EDITOR)
    h.call("drafts:append", {"artifactId": art, "token": 1, "text": "half"}, EDITOR)
    queued = h.call("locks:acquire", {"artifactId": art, "idempotencyKey": "k1"}, OWNER)
    assert queued["status"] == "queued"
    assert h.call("artifacts:delete", {"artifactId": art}, EDITOR)["title"] == "Test plan"
    assert h.rows("locks") == [] and h.rows("lockWaiters") == []
    # the waiter's retry learns its wait is over instead of waiting forever
    assert expect_error(h, "locks:acquire", {"artifactId": art, "idempotencyKey": "k1"}, OWNER)["code"] == "NOT_FOUND"
    assert h.rows("idempotencyKeys")[0]["result"] == {"status": "cancelled"}


def test_unfinished_runs_are_cancelled_and_their_streams_closed(tmp_path: Path) -> None:
    h, space, art = _world(tmp_path)
    ask = h.call("messages:post", {"spaceId": space, "body": "@ada tighten #test-plan", "task": "revise"}, OWNER)
    other = h.call("messages:post", {"spaceId": space, "body": "@ada what now?"}, OWNER)
    run = h.call("runs:claim", {"spaceId": space}, AGENT)
    assert run["artifactId"] == art and run["messageId"] == ask
    reply = h.call("messages:openReply", {"spaceId": space, "key": "k" * 16, "runId": run["_id"]}, AGENT)
    h.call("artifacts:delete", {"artifactId": art}, OWNER)
    runs = {r["messageId"]: r for r in h.call("runs:list", {"spaceId": space}, OWNER)}
    assert runs[ask]["status"] == "cancelled" and runs[ask]["error"] == "the artifact was deleted by @olga"
    assert runs[other]["status"] == "queued"  # not about the artifact
    assert h.call("streams:forMessage", {"messageId": reply["messageId"]}, OWNER) is None
    msg = next(m for m in h.call("messages:list", {"spaceId": space}, OWNER) if m["_id"] == reply["messageId"])
    assert msg["state"] == "failed"
    assert expect_error(h, "runs:heartbeat", {"runId": run["_id"], "attempt": 1}, AGENT)["code"] == "RUN_CANCELLED"


def test_history_is_purged_in_batches_and_the_deletion_audited(tmp_path: Path) -> None:
    h, space, art = _world(tmp_path)
    for n in range(40):  # 41 versions and 40 lock holds: several purge batches
        token = h.call("locks:acquire", {"artifactId": art}, OWNER)["token"]
        h.call("artifacts:save", {"artifactId": art, "token": token, "content": f"v{n + 2}"}, OWNER)
    h.call("locks:acquire", {"artifactId": art}, EDITOR)
    h.call("drafts:append", {"artifactId": art, "token": 41, "text": "x"}, EDITOR)
    h.call("locks:forceRelease", {"artifactId": art, "reason": "leaving"}, OWNER)  # an orphaned draft
    keep = h.call("artifacts:create", {"spaceId": space, "title": "Other", "kind": "document",
                                       "content": "o"}, OWNER)
    got = h.call("artifacts:delete", {"artifactId": art}, OWNER)
    assert got == {"deleted": True, "title": "Test plan", "slug": "test-plan", "version": 41}
    assert expect_error(h, "artifacts:history", {"artifactId": art}, OWNER)["code"] == "NOT_FOUND"
    for _ in range(20):
        h.advance(0)
    for table in ("versions", "lockHolds", "drafts"):
        assert [r["artifactId"] for r in h.rows(table)] == ([keep] if table == "versions" else []), table
    audit = [e for e in h.call("audit:list", {"spaceId": space}, OWNER) if e["type"] == "artifact.deleted"]
    assert [(e["artifactId"], e["data"]["title"], e["data"]["version"]) for e in audit] == [(art, "Test plan", 41)]
    # the slug is free again
    again = h.call("artifacts:create", {"spaceId": space, "title": "Test plan", "kind": "document",
                                        "content": ""}, OWNER)
    assert h.call("artifacts:get", {"artifactId": again}, OWNER)["slug"] == "test-plan"


def test_a_viewer_cannot_delete(tmp_path: Path) -> None:
    h = Harness(tmp_path / "db.sqlite")
    viewer = ident("vic")
    space, art = space_with(h, OWNER, ((viewer, "viewer"),))
    assert expect_error(h, "artifacts:delete", {"artifactId": art}, viewer)["code"] == "INSUFFICIENT_ROLE"


def test_variation_rounds_and_proposals_go_with_it(tmp_path: Path) -> None:
    h, space, art = _world(tmp_path)
    rnd = h.call("variations:start", {"artifactId": art, "instruction": "tighten", "n": 2, "agents": ["ada"]}, OWNER)
    variants = h.call("variations:round", {"roundId": rnd["roundId"]}, OWNER)["variations"]
    h.call("proposals:open", {"proposalId": variants[0]["proposalId"], "key": "v" * 16}, AGENT)
    h.call("proposals:append", {"proposalId": variants[0]["proposalId"], "text": "half a varia"}, AGENT)
    h.call("artifacts:delete", {"artifactId": art}, OWNER)
    runs = h.call("runs:list", {"spaceId": space}, OWNER)
    assert {r["status"] for r in runs} == {"cancelled"} and len(runs) == 2
    assert h.rows("liveStreams") == []
    for _ in range(5):
        h.advance(0)
    for table in ("variationRounds", "variations", "proposals", "versions"):
        assert h.rows(table) == [], table
