"""The client choreography that used to take several round trips is one mutation each:
opening a streaming reply (message + live stream), cancelling a space's runs, opening (or
creating) a space with its default agents. One transaction: all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.model._harness import Harness, expect_error, ident, space_with

OWNER, ED, AG, AG2, VIEW = ident("olga"), ident("edwin"), ident("quinn", "agent"), ident("rhea", "agent"), ident("vic")


@pytest.fixture
def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path / "db.sqlite")
    yield harness
    harness.close()


def test_open_reply_creates_the_message_and_its_stream_in_one_commit(h: Harness) -> None:
    space, _ = space_with(h, OWNER, ((AG, "editor"),))
    asked = h.call("messages:post", {"spaceId": space, "body": "hello"}, OWNER)
    commits = h.engine.stats["commits"]
    got = h.call("messages:openReply", {"spaceId": space, "key": "k" * 16, "threadId": asked}, AG)
    assert h.engine.stats["commits"] == commits + 1  # the message and its stream: one commit
    msg = next(m for m in h.call("messages:list", {"spaceId": space}, OWNER) if m["_id"] == got["messageId"])
    assert msg["state"] == "streaming" and msg["body"] == "" and msg["authorHandle"] == "quinn"
    assert msg["threadId"] == asked
    rows = h.call("streams:forSpace", {"spaceId": space}, OWNER)
    assert [(r["_id"], r["messageId"], r["base"], r["text"]) for r in rows] == [
        (got["streamId"], got["messageId"], 0, "")]
    assert "key" not in rows[0]
    # The stream takes pushes with its key, and finishing the message ends the stream.
    out = h.call("streams:push", {"chunks": [{"streamId": got["streamId"], "key": "k" * 16, "text": "Hi",
                                              "seq": 1}]}, AG)
    assert out[0]["status"] == "ok"
    h.call("messages:finish", {"messageId": got["messageId"], "state": "done", "body": "Hi"}, AG)
    assert h.call("streams:forSpace", {"spaceId": space}, OWNER) == []


def test_open_reply_refuses_a_short_key_or_a_foreign_thread_and_writes_nothing(h: Harness) -> None:
    space, _ = space_with(h, OWNER, ((AG, "editor"),))
    other = h.call("spaces:create", {"name": "other"}, OWNER)
    foreign = h.call("messages:post", {"spaceId": other, "body": "elsewhere"}, OWNER)
    before = h.storage.last_ts
    assert expect_error(h, "messages:openReply", {"spaceId": space, "key": "short"}, AG)["code"] == "INVALID_ARGUMENT"
    data = expect_error(h, "messages:openReply", {"spaceId": space, "key": "k" * 16, "threadId": foreign}, AG)
    assert data["code"] == "NOT_FOUND"
    assert h.storage.last_ts == before


def test_cancel_all_stops_every_unfinished_run_of_the_space_only(h: Harness) -> None:
    space, _ = space_with(h, OWNER, ((AG, "editor"), (AG2, "editor"), (ED, "editor")))
    other, _ = space_with(h, OWNER, ((AG, "editor"),))
    h.call("messages:post", {"spaceId": space, "body": "@quinn @rhea ideas?"}, OWNER)
    h.call("messages:post", {"spaceId": other, "body": "@quinn elsewhere"}, OWNER)
    claimed = h.call("runs:claim", {"spaceId": space}, AG)
    h.call("runs:heartbeat", {"runId": claimed["_id"], "attempt": 1, "streaming": True}, AG)
    stopped = h.call("runs:cancelAll", {"spaceId": space}, ED)
    assert [s["agentHandle"] for s in stopped] == ["quinn", "rhea"]
    runs = h.call("runs:list", {"spaceId": space}, OWNER)
    assert {r["status"] for r in runs} == {"cancelled"}
    assert {r["error"] for r in runs} == {"cancelled by @edwin"}
    assert [r["status"] for r in h.call("runs:list", {"spaceId": other}, OWNER)] == ["queued"]
    # The worker holding the streaming run learns it on its next heartbeat.
    data = expect_error(h, "runs:heartbeat", {"runId": claimed["_id"], "attempt": 1}, AG)
    assert data["code"] == "RUN_CANCELLED"
    assert h.call("runs:cancelAll", {"spaceId": space, "reason": "again"}, ED) == []


def test_cancel_all_is_for_editors(h: Harness) -> None:
    space, _ = space_with(h, OWNER, ((AG, "editor"), (VIEW, "viewer")))
    h.call("messages:post", {"spaceId": space, "body": "@quinn go"}, OWNER)
    assert expect_error(h, "runs:cancelAll", {"spaceId": space}, VIEW)["code"] == "INSUFFICIENT_ROLE"
    assert [r["status"] for r in h.call("runs:list", {"spaceId": space}, OWNER)] == ["queued"]


AGENTS = [{"handle": "rhea", "name": "Rhea"}, {"handle": "quinn"}]


def test_open_creates_the_space_with_its_agents_then_finds_it(h: Harness) -> None:
    first = h.call("spaces:open", {"name": "main", "actorName": "Olga O.", "agents": AGENTS}, OWNER)
    assert first["role"] == "owner" and first["created"] and first["me"]["name"] == "Olga O."
    members = h.call("spaces:members", {"spaceId": first["spaceId"]}, OWNER)
    assert sorted((m["handle"], m["kind"], m["role"]) for m in members) == [
        ("olga", "human", "owner"), ("quinn", "agent", "editor"), ("rhea", "agent", "editor")]
    assert next(m for m in members if m["handle"] == "rhea")["name"] == "Rhea"
    again = h.call("spaces:open", {"name": "main", "agents": [*AGENTS, {"handle": "dara"}]}, OWNER)
    assert again["spaceId"] == first["spaceId"] and not again["created"]
    handles = {m["handle"] for m in h.call("spaces:members", {"spaceId": first["spaceId"]}, OWNER)}
    assert handles == {"olga", "rhea", "quinn", "dara"}
    assert len(h.call("spaces:list", {}, OWNER)) == 1


def test_open_without_create_answers_none_and_a_member_never_adds_agents(h: Harness) -> None:
    assert h.call("spaces:open", {"name": "team", "create": False}, ED) is None
    assert h.call("spaces:list", {}, ED) == []
    opened = h.call("spaces:open", {"name": "team"}, OWNER)
    code = h.call("spaces:invite", {"spaceId": opened["spaceId"], "role": "editor"}, OWNER)["code"]
    h.call("spaces:join", {"code": code}, ED)
    got = h.call("spaces:open", {"name": "team", "agents": AGENTS, "create": False}, ED)
    assert got is not None and got["spaceId"] == opened["spaceId"] and got["role"] == "editor"
    assert {m["handle"] for m in h.call("spaces:members", {"spaceId": opened["spaceId"]}, ED)} == {"olga", "edwin"}
    assert expect_error(h, "spaces:open", {"name": "  "}, ED)["code"] == "INVALID_ARGUMENT"
