"""Live streams (``streams:*``), mention-started runs and how streams end with their message,
lock hold or run (engine level, fake clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from collab.backend.model._live import merge

from tests.model._harness import Harness, expect_error, ident, space_with
from tests.model.test_functions import _Session

OWNER, ED, VIEW = ident("olga"), ident("edwin"), ident("vic")
AG, AG2, AG3 = ident("quinn", "agent"), ident("ada", "agent"), ident("bob", "agent")
KEY = "k" * 16


@pytest.fixture
def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path / "db.sqlite")
    yield harness
    harness.close()


@pytest.fixture
def world(h: Harness) -> dict[str, Any]:
    space, art = space_with(h, OWNER, ((ED, "editor"), (AG, "editor"), (AG2, "editor"), (AG3, "viewer"), (VIEW, "viewer")))
    ids = {k: h.call("actors:me", {}, who)["_id"] for k, who in (("ag", AG), ("ag2", AG2), ("ag3", AG3))}
    return {"space": space, "art": art, **ids}


def err(h: Harness, path: str, args: dict[str, Any], who: Any) -> dict[str, Any]:
    return expect_error(h, path, args, who)


def test_merge_rule() -> None:
    assert merge("abc", None) == "abc"
    assert merge("abc", {"base": 3, "text": "def"}) == "abcdef"
    assert merge("abcde", {"base": 3, "text": "def"}) == "abcdef"  # durable overtook part of the tail
    assert merge("abcdefgh", {"base": 3, "text": "def"}) == "abcdefgh"
    assert merge("ab", {"base": 3, "text": "def"}) == "ab"  # cannot place the tail: durable only


def test_mentions_queue_one_run_per_agent(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    mid = h.call("messages:post", {"spaceId": space, "body": "@ada and @quinn: thoughts on #test-plan?"}, ED)
    runs = h.call("runs:list", {"spaceId": space}, VIEW)
    assert sorted(r["agentId"] for r in runs) == sorted([world["ag"], world["ag2"]])
    assert all(r["kind"] == "discussion" and r["messageId"] == mid and r["input"]["threadId"] == mid for r in runs)
    assert [r["_id"] for r in h.call("runs:pending", {}, AG)] == [r["_id"] for r in runs if r["agentId"] == world["ag"]]
    assert h.call("runs:pending", {}, ident("stranger", "agent")) == []
    # @all: every agent with the editor role (bob is a viewer), none twice
    h.call("messages:post", {"spaceId": space, "body": "@all @ada go"}, ED)
    assert len(h.call("runs:list", {"spaceId": space}, VIEW)) == 4
    # agents mentioning agents never start runs; revise needs an artifact
    h.call("messages:post", {"spaceId": space, "body": "@ada over to you"}, AG)
    assert len(h.call("runs:list", {"spaceId": space}, VIEW)) == 4
    assert err(h, "messages:post", {"spaceId": space, "body": "@ada fix it", "task": "revise"}, ED)["code"] == \
        "INVALID_ARGUMENT"
    h.call("messages:post", {"spaceId": space, "body": "@quinn tighten #test-plan", "task": "revise"}, ED)
    revise = h.call("runs:list", {"spaceId": space}, VIEW)[0]
    assert revise["kind"] == "revise" and revise["artifactId"] == world["art"] and revise["agentId"] == world["ag"]


def test_message_stream_push_merge_finish(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    reply = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True}, AG)
    assert err(h, "streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": KEY}, ED)["code"] == \
        "NOT_AUTHOR"
    sid = h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": KEY}, AG)
    assert h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": KEY}, AG) == sid
    assert err(h, "streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": "z" * 16},
               AG)["code"] == "STREAM_OPEN"
    # one push, another identity (the worker's pusher), carries the key
    out = h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "Hello ", "seq": 1}]}, AG2)
    assert out == [{"streamId": sid, "status": "ok", "seq": 1}]
    h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "world", "seq": 2}]}, AG)
    bad = h.call("streams:push", {"chunks": [{"streamId": sid, "key": "x" * 16, "text": "!", "seq": 3},
                                             {"streamId": sid, "key": KEY, "text": "again", "seq": 2}]}, AG)
    assert [c["status"] for c in bad] == ["forbidden", "duplicate"]
    row = h.call("streams:forMessage", {"messageId": reply}, VIEW)
    assert "key" not in row and row["text"] == "Hello world" and row["base"] == 0
    # persisted "Hello " (acknowledged), then the next push announces base 6: the tail shrinks
    h.call("messages:append", {"messageId": reply, "text": "Hello "}, AG)
    h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "!", "seq": 3, "base": 6}]}, AG)
    row = h.call("streams:forSpace", {"spaceId": space}, VIEW)[0]
    assert row["text"] == "world!" and row["base"] == 6
    body = h.call("messages:list", {"spaceId": space}, VIEW)[-1]["body"]
    assert merge(body, row) == "Hello world!"
    h.call("messages:finish", {"messageId": reply, "state": "done", "body": "Hello world!"}, AG)
    assert h.call("streams:forSpace", {"spaceId": space}, VIEW) == []
    closed = h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "late", "seq": 4}]}, AG)
    assert closed[0]["status"] == "closed"


def test_draft_stream_is_fenced_and_ends_with_the_hold(h: Harness, world: dict[str, Any]) -> None:
    space, art = world["space"], world["art"]
    tok = h.call("locks:acquire", {"artifactId": art}, AG)["token"]
    assert err(h, "streams:open", {"spaceId": space, "kind": "draft", "artifactId": art, "token": tok + 1,
                                   "key": KEY}, AG)["code"] == "INVALID_TOKEN"
    sid = h.call("streams:open", {"spaceId": space, "kind": "draft", "artifactId": art, "token": tok, "key": KEY}, AG)
    h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "draft text", "seq": 1}]}, AG)
    assert h.call("streams:forArtifact", {"artifactId": art}, VIEW)["text"] == "draft text"
    h.call("artifacts:save", {"artifactId": art, "token": tok, "content": "draft text"}, AG)
    assert h.call("streams:forArtifact", {"artifactId": art}, VIEW) is None
    # an expired hold: the tail goes, the durable draft is kept as orphaned
    tok = h.call("locks:acquire", {"artifactId": art, "ttlMs": 5_000}, AG)["token"]
    sid = h.call("streams:open", {"spaceId": space, "kind": "draft", "artifactId": art, "token": tok, "key": KEY}, AG)
    h.call("drafts:append", {"artifactId": art, "token": tok, "text": "partial"}, AG)
    h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "partial more", "seq": 1}]}, AG)
    h.advance(6_000)
    assert h.call("streams:forArtifact", {"artifactId": art}, VIEW) is None
    assert [d["content"] for d in h.call("drafts:list", {"artifactId": art}, VIEW)] == ["partial"]


def test_run_end_closes_its_streams_and_keeps_text(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    h.call("messages:post", {"spaceId": space, "body": "@quinn hi"}, ED)
    run = h.call("runs:claim", {"spaceId": space, "leaseMs": 5_000}, AG)
    reply = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True, "runId": run["_id"]}, AG)
    sid = h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": KEY,
                                  "runId": run["_id"]}, AG)
    h.call("messages:append", {"messageId": reply, "text": "half "}, AG)
    h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "half an answer", "seq": 1}]}, AG)
    h.advance(6_000)  # the worker died: lease expiry fails the run (one attempt) and closes the stream
    msg = h.call("messages:list", {"spaceId": space}, VIEW)[-1]
    assert msg["state"] == "failed" and msg["body"] == "half an answer" and "lease" in msg["error"]
    assert h.call("streams:forSpace", {"spaceId": space}, VIEW) == []
    assert h.call("runs:get", {"runId": run["_id"]}, VIEW)["status"] == "failed"
    assert err(h, "runs:retry", {"runId": run["_id"]}, VIEW)["code"] == "INSUFFICIENT_ROLE"
    assert h.call("runs:retry", {"runId": run["_id"]}, ED) == {"status": "queued"}
    assert err(h, "runs:retry", {"runId": run["_id"]}, ED)["code"] == "RUN_ACTIVE"
    # cancel from the UI closes the stream of the next attempt too
    run = h.call("runs:claim", {"spaceId": space}, AG)
    assert run["attempt"] == 2
    reply = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True, "runId": run["_id"]}, AG)
    h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": KEY,
                            "runId": run["_id"]}, AG)
    h.call("runs:cancel", {"runId": run["_id"], "reason": "stopped by edwin"}, ED)
    msg = h.call("messages:list", {"spaceId": space}, VIEW)[-1]
    assert msg["state"] == "failed" and msg["error"] == "stopped by edwin"


def test_abandoned_stream_is_swept(h: Harness, world: dict[str, Any]) -> None:
    space = world["space"]
    reply = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True}, AG)
    sid = h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": KEY}, AG)
    h.advance(40_000)
    h.call("streams:push", {"chunks": [{"streamId": sid, "key": KEY, "text": "still here", "seq": 1}]}, AG)
    h.advance(30_000)  # first check: pushed 30 s ago, kept
    assert h.call("streams:forMessage", {"messageId": reply}, VIEW) is not None
    h.advance(31_000)
    assert h.call("streams:forMessage", {"messageId": reply}, VIEW) is None
    assert h.call("messages:list", {"spaceId": space}, VIEW)[-1]["body"] == "still here"


def test_pushes_do_not_rerun_message_or_draft_queries(h: Harness, world: dict[str, Any]) -> None:
    """The 30 ms lane touches only liveStreams: message lists, drafts and artifacts stay put."""
    space, art = world["space"], world["art"]
    reply = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True}, AG)
    tok = h.call("locks:acquire", {"artifactId": art}, AG2)["token"]
    s1 = h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": reply, "key": KEY}, AG)
    s2 = h.call("streams:open", {"spaceId": space, "kind": "draft", "artifactId": art, "token": tok, "key": KEY}, AG2)
    session = _Session()
    subs = {1: ("messages:list", {"spaceId": space}), 2: ("drafts:get", {"artifactId": art}),
            3: ("artifacts:get", {"artifactId": art}), 4: ("streams:forSpace", {"spaceId": space}),
            5: ("streams:forMessage", {"messageId": reply})}
    for qid, (path, args) in subs.items():
        h.engine.subscribe(session, qid, path, args, VIEW)
    session.changed.clear()
    for i in range(1, 11):
        h.call("streams:push", {"chunks": [{"streamId": s1, "key": KEY, "text": "a", "seq": i},
                                           {"streamId": s2, "key": KEY, "text": "b", "seq": i}]}, AG)
    assert set(session.changed) == {4, 5}


def test_a_waiting_stream_of_a_live_run_is_not_swept(h: Harness, world: dict[str, Any]) -> None:
    """A reply waiting for its model (which serves other runs first) pushes nothing for
    minutes; while its worker keeps the run's claim alive it is not "abandoned". When the
    worker goes away, the run's lease expiry closes it with its text."""
    h.call("messages:post", {"spaceId": world["space"], "body": "@quinn hello"}, OWNER)
    run = h.call("runs:claim", {"spaceId": world["space"], "leaseMs": 20_000}, AG)
    opened = h.call("messages:openReply", {"spaceId": world["space"], "key": KEY, "runId": run["_id"]}, AG)
    for _ in range(6):  # three minutes of heartbeats and no push
        h.advance(15_000)
        h.call("runs:heartbeat", {"runId": run["_id"], "attempt": 1, "leaseMs": 20_000}, AG)
        h.advance(15_000)
        h.call("runs:heartbeat", {"runId": run["_id"], "attempt": 1, "leaseMs": 20_000}, AG)
    assert [r["_id"] for r in h.call("streams:forSpace", {"spaceId": world["space"]}, VIEW)] == [opened["streamId"]]
    h.advance(200_000)  # the worker is gone: no heartbeat, the lease and then the stream end
    assert h.call("streams:forSpace", {"spaceId": world["space"]}, VIEW) == []
    reply = next(m for m in h.call("messages:list", {"spaceId": world["space"]}, VIEW)
                 if m["_id"] == opened["messageId"])
    assert reply["state"] == "failed"
