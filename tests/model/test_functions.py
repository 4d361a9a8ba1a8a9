"""Behaviour of the model functions at the engine level (fake clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from collab.backend.model._util import parse_mentions, parse_refs, slugify

from tests.model._harness import CallError, Harness, expect_error, ident, space_with

OWNER, ED, AG, VIEW = ident("olga"), ident("edwin"), ident("quinn", "agent"), ident("vic")


@pytest.fixture
def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path / "db.sqlite")
    yield harness
    harness.close()


@pytest.fixture
def world(h: Harness) -> dict[str, Any]:
    space, art = space_with(h, OWNER, ((ED, "editor"), (AG, "editor"), (VIEW, "viewer")))
    ids = {k: h.call("actors:me", {}, who)["_id"] for k, who in (("owner", OWNER), ("ed", ED), ("ag", AG))}
    return {"space": space, "art": art, **ids}


def err(h: Harness, path: str, args: dict[str, Any], who: Any) -> dict[str, Any]:
    return expect_error(h, path, args, who)


def test_parsing_rules() -> None:
    assert parse_mentions("@edwin what do you think of what @quinn said about #test-plan?") == ["edwin", "quinn"]
    assert parse_mentions("mail a@b.com, @all. @edwin. @edwin") == ["all", "edwin"]
    assert parse_refs("see #Test-Plan? and #notes/v2. and a#b, #test-plan") == ["test-plan", "notes/v2"]
    assert slugify("Test plan (v2)!") == "test-plan-v2"


def test_lock_conflict_queue_and_grant_notification(h: Harness, world: dict[str, Any]) -> None:
    art = world["art"]
    mine = h.call("locks:acquire", {"artifactId": art}, ED)
    assert mine["status"] == "granted" and mine["token"] == 1
    data = err(h, "locks:acquire", {"artifactId": art, "wait": False}, AG)
    assert data["code"] == "LOCKED" and data["holder"]["handle"] == "edwin" and data["holder"]["kind"] == "human"
    queued = h.call("locks:acquire", {"artifactId": art, "idempotencyKey": "k"}, AG)
    assert queued["status"] == "queued" and queued["position"] == 1 and queued["holder"]["since"] == h.now
    state = h.call("artifacts:get", {"artifactId": art}, VIEW)["lock"]
    assert state["holder"]["handle"] == "edwin" and state["queueLength"] == 1 and "token" not in str(state)
    h.call("artifacts:save", {"artifactId": art, "token": 1, "content": "v2"}, ED)
    # the agent got it: a notification, the holder in artifacts:get, its token by the same key
    assert h.call("artifacts:get", {"artifactId": art}, VIEW)["lock"]["holder"]["handle"] == "quinn"
    assert [n["kind"] for n in h.call("notifications:list", {}, AG)] == ["lockGranted"]
    again = h.call("locks:acquire", {"artifactId": art, "idempotencyKey": "k"}, AG)
    assert again["status"] == "granted" and again["token"] == 2
    assert h.call("locks:acquire", {"artifactId": art}, AG)["token"] == 2  # re-entrant
    assert err(h, "artifacts:save", {"artifactId": art, "token": 2, "content": "x"}, ED)["code"] == "NOT_HOLDER"
    assert err(h, "locks:renew", {"artifactId": art, "token": 9}, AG)["code"] == "INVALID_TOKEN"


def test_force_release_fences_and_keeps_draft(h: Harness, world: dict[str, Any]) -> None:
    art = world["art"]
    h.call("locks:acquire", {"artifactId": art}, AG)
    h.call("drafts:append", {"artifactId": art, "token": 1, "text": "half a "}, AG)
    h.call("drafts:append", {"artifactId": art, "token": 1, "text": "thought", "seq": 2}, AG)
    assert h.call("drafts:append", {"artifactId": art, "token": 1, "text": "dup", "seq": 2}, AG)["duplicate"]
    assert h.call("drafts:get", {"artifactId": art}, VIEW)["content"] == "half a thought"
    assert err(h, "locks:forceRelease", {"artifactId": art, "reason": "x"}, ED)["code"] == "INSUFFICIENT_ROLE"
    out = h.call("locks:forceRelease", {"artifactId": art, "reason": "stuck agent"}, OWNER)
    assert out["previousHolder"]["handle"] == "quinn" and out["grantedTo"] is None
    data = err(h, "artifacts:save", {"artifactId": art, "token": 1, "content": "late"}, AG)
    assert data["code"] == "STALE_TOKEN" and data["reason"] == "forceReleased"
    assert data["byHandle"] == "olga" and data["forceReason"] == "stuck agent"
    orphans = h.call("drafts:list", {"artifactId": art}, VIEW)
    assert [d["content"] for d in orphans] == ["half a thought"] and orphans[0]["status"] == "orphaned"
    assert h.call("artifacts:get", {"artifactId": art}, VIEW)["content"] == "v1"  # never merged
    lost = h.call("notifications:list", {}, AG)[0]
    assert lost["kind"] == "lockLost" and lost["data"]["reason"] == "forceReleased"
    audit = h.call("audit:list", {"spaceId": world["space"], "artifactId": art}, VIEW)
    assert audit[0]["type"] == "lock.released" and audit[0]["data"]["forceReason"] == "stuck agent"
    assert err(h, "drafts:discard", {"artifactId": art, "draftId": orphans[0]["_id"]}, ED)["code"] == "FORBIDDEN"
    h.call("drafts:discard", {"artifactId": art, "draftId": orphans[0]["_id"]}, AG)


def test_expiry_by_sweeper_and_renewal(h: Harness, world: dict[str, Any]) -> None:
    art = world["art"]
    h.call("locks:acquire", {"artifactId": art, "ttlMs": 10_000}, ED)
    h.advance(8_000)
    assert h.call("locks:renew", {"artifactId": art, "token": 1}, ED)["expiresAt"] == h.now + 10_000
    h.advance(8_000)  # the first expiry job was cancelled by the renewal
    assert h.call("artifacts:get", {"artifactId": art}, VIEW)["lock"]["held"]
    h.advance(2_000)
    assert not h.call("artifacts:get", {"artifactId": art}, VIEW)["lock"]["held"]
    data = err(h, "drafts:append", {"artifactId": art, "token": 1, "text": "x"}, ED)
    assert data["code"] == "STALE_TOKEN" and data["reason"] == "expired"


def test_history_restore_and_save_idempotency(h: Harness, world: dict[str, Any]) -> None:
    art = world["art"]
    tok = h.call("locks:acquire", {"artifactId": art}, ED)["token"]
    first = h.call("artifacts:save", {"artifactId": art, "token": tok, "content": "v2", "idempotencyKey": "s"}, ED)
    assert h.call("artifacts:save", {"artifactId": art, "token": tok, "content": "v2", "idempotencyKey": "s"}, ED) == first
    assert err(h, "locks:acquire", {"artifactId": art, "idempotencyKey": "s"}, ED)["code"] == "INVALID_ARGUMENT"
    tok = h.call("locks:acquire", {"artifactId": art}, AG)["token"]
    out = h.call("artifacts:restore", {"artifactId": art, "token": tok, "version": 1}, AG)
    assert out["version"] == 3
    hist = h.call("artifacts:history", {"artifactId": art}, VIEW)
    assert [(v["version"], v["source"], v.get("restoredFrom")) for v in hist] == [
        (3, "agent", 1), (2, "human", None), (1, "human", None)]
    assert "content" not in hist[0]
    assert h.call("artifacts:get", {"artifactId": art}, VIEW)["content"] == "v1"


def test_messages_mentions_refs_threads(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    body = "@quinn what do you think of what @edwin said about #test-plan? cc @nobody #nothing"
    mid = h.call("messages:post", {"spaceId": space, "body": body}, OWNER)
    msg = h.call("messages:list", {"spaceId": space}, VIEW)[0]
    assert msg["_id"] == mid and msg["mentions"] == [world["ag"], world["ed"]] and msg["refs"] == [world["art"]]
    assert [n["kind"] for n in h.call("notifications:list", {}, AG)] == ["mention"]
    reply = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True, "threadId": mid}, AG)
    h.call("messages:append", {"messageId": reply, "text": "I think "}, AG)
    assert err(h, "messages:append", {"messageId": reply, "text": "x"}, ED)["code"] == "NOT_AUTHOR"
    h.call("messages:append", {"messageId": reply, "text": "@all should agree"}, AG)
    h.call("messages:finish", {"messageId": reply, "state": "done"}, AG)
    thread = h.call("messages:list", {"spaceId": space, "threadId": mid}, VIEW)
    assert [m["body"] for m in thread] == [body, "I think @all should agree"] and thread[1]["mentionsAll"]
    assert len(h.call("notifications:list", {"unreadOnly": True}, VIEW)) == 1
    h.call("messages:markDecision", {"messageId": reply, "decision": True}, ED)
    h.call("messages:markQuestion", {"messageId": mid, "open": True}, ED)
    outline = h.call("messages:outline", {"spaceId": space}, VIEW)
    assert [m["_id"] for m in outline["decisions"]] == [reply] and [m["_id"] for m in outline["openQuestions"]] == [mid]
    assert err(h, "messages:post", {"spaceId": space, "body": "hi"}, VIEW)["code"] == "INSUFFICIENT_ROLE"


def test_runs_lifecycle_and_lease(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    rid = h.call("runs:enqueue", {"spaceId": space, "agentId": world["ag"], "kind": "discussion",
                                  "input": {"q": 1}, "maxAttempts": 2}, ED)
    assert err(h, "runs:enqueue", {"spaceId": space, "agentId": world["ed"], "kind": "x"}, ED)["code"] == "NOT_AN_AGENT"
    assert h.call("runs:claim", {"spaceId": space}, ED) is None  # not edwin's run
    run = h.call("runs:claim", {"spaceId": space, "leaseMs": 5_000}, AG)
    assert run["_id"] == rid and run["status"] == "claimed" and run["attempt"] == 1
    h.advance(6_000)  # lease expired: requeued, attempt 1 fenced
    assert h.call("runs:get", {"runId": rid}, VIEW)["status"] == "queued"
    assert err(h, "runs:heartbeat", {"runId": rid, "attempt": 1}, AG)["code"] == "RUN_LOST"
    run = h.call("runs:claim", {"spaceId": space}, AG)
    h.call("runs:heartbeat", {"runId": rid, "attempt": 2, "streaming": True}, AG)
    h.call("runs:complete", {"runId": rid, "attempt": 2, "output": "ok", "usage": {"tokens": 3}, "costUsd": 0.01}, AG)
    done = h.call("runs:get", {"runId": rid}, VIEW)
    assert done["status"] == "done" and done["costUsd"] == 0.01
    rid2 = h.call("runs:enqueue", {"spaceId": space, "agentId": world["ag"], "kind": "variation"}, ED)
    h.call("runs:claim", {"spaceId": space}, AG)
    assert h.call("runs:cancel", {"runId": rid2}, ED) == {"status": "cancelled"}
    assert err(h, "runs:complete", {"runId": rid2, "attempt": 1}, AG)["code"] == "RUN_CANCELLED"
    assert [r["_id"] for r in h.call("runs:list", {"spaceId": space}, VIEW)] == [rid2, rid]


def test_presence_expires(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    h.call("presence:heartbeat", {"spaceId": space, "client": "pane1", "artifactId": world["art"]}, VIEW)
    h.call("presence:heartbeat", {"spaceId": space, "client": "pane2", "typing": True}, VIEW)
    h.advance(20_000)
    h.call("presence:heartbeat", {"spaceId": space, "client": "pane1"}, VIEW)
    h.advance(15_000)
    rows = h.call("presence:list", {"spaceId": space}, VIEW)
    assert [r["client"] for r in rows] == ["pane1"]


class _Session:
    def __init__(self) -> None:
        self.changed: list[int] = []

    def queries_changed(self, ids: set[int]) -> None:
        self.changed += sorted(ids)

    def wake(self) -> None:
        pass


def test_fast_tables_do_not_rerun_content_queries(h: Harness, world: dict[str, Any]) -> None:
    """Presence heartbeats and (coalesced) draft deltas never re-run artifact/member queries."""
    space, art = world["space"], world["art"]
    session = _Session()
    subs = {1: ("artifacts:get", {"artifactId": art}), 2: ("artifacts:list", {"spaceId": space}),
            3: ("spaces:members", {"spaceId": space}), 4: ("messages:list", {"spaceId": space})}
    for qid, (path, args) in subs.items():
        h.engine.subscribe(session, qid, path, args, VIEW)
    tok = h.call("locks:acquire", {"artifactId": art}, AG)["token"]
    session.changed.clear()
    runs = h.engine.stats["query_runs"]
    for i in range(20):
        h.call("presence:heartbeat", {"spaceId": space, "typing": i % 2 == 0}, ED)
        h.now += 250
        h.call("drafts:append", {"artifactId": art, "token": tok, "text": "x"}, AG)
    assert session.changed == [] and h.engine.stats["query_runs"] == runs
    h.call("artifacts:save", {"artifactId": art, "token": tok, "content": "new"}, AG)
    assert 1 in session.changed and 2 in session.changed and 3 not in session.changed


def test_members_roles(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    h.call("spaces:addMember", {"spaceId": space, "handle": "bot", "kind": "agent", "role": "editor"}, OWNER)
    handles = {m["handle"]: m["role"] for m in h.call("spaces:members", {"spaceId": space}, VIEW)}
    assert handles == {"olga": "owner", "edwin": "editor", "quinn": "editor", "vic": "viewer", "bot": "editor"}
    # the agent's token maps onto the actor the owner created
    assert h.call("spaces:list", {}, ident("bot", "agent"))[0]["role"] == "editor"
    assert err(h, "spaces:setRole", {"spaceId": space, "actorId": world["owner"], "role": "editor"},
               OWNER)["code"] == "LAST_OWNER"
    h.call("spaces:removeMember", {"spaceId": space, "actorId": h.call("actors:me", {}, VIEW)["_id"]}, VIEW)
    assert err(h, "spaces:get", {"spaceId": space}, VIEW)["code"] == "NOT_A_MEMBER"
    # a waiter who lost its editor role is skipped by the queue
    h.call("locks:acquire", {"artifactId": world["art"]}, OWNER)
    h.call("locks:acquire", {"artifactId": world["art"]}, ED)
    h.call("locks:acquire", {"artifactId": world["art"]}, AG)
    h.call("spaces:setRole", {"spaceId": space, "actorId": world["ed"], "role": "viewer"}, OWNER)
    out = h.call("locks:release", {"artifactId": world["art"], "token": 1}, OWNER)
    assert out["grantedTo"]["handle"] == "quinn"


def test_ids_of_the_wrong_table_are_rejected(h: Harness, world: dict[str, Any]) -> None:
    """An id of another table fails argument validation (v.id checks the table), naming it."""
    space, art = world["space"], world["art"]
    mid = h.call("messages:post", {"spaceId": space, "body": "x"}, OWNER)
    member_id = h.call("spaces:members", {"spaceId": space}, OWNER)[0]["memberId"]
    for path, args in [
        ("artifacts:get", {"artifactId": mid}),
        ("messages:post", {"spaceId": space, "body": "y", "threadId": art}),
        ("notifications:markRead", {"notificationId": member_id}),
        ("runs:enqueue", {"spaceId": space, "agentId": world["ag"], "kind": "k", "messageId": art}),
    ]:
        with pytest.raises(CallError) as e:
            h.call(path, args, OWNER)
        assert "ArgumentValidationError" in str(e.value) and "not an id of table" in str(e.value), path