"""Teams in the backend: invite codes (one clear error per way a code can fail), the code
exchange's handle rules, roles changed and members removed with a notification and an audit
row naming who did it, usage totals and the space's budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from collab.backend.model.spaces import normalize_code

from tests.model._harness import Harness, expect_error, ident

OWNER = ident("olga")
BOB = ident("bob")
AGENT = ident("ada", "agent")


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path / "db.sqlite")
    yield harness
    harness.close()


def _space(h: Harness) -> str:
    return h.call("spaces:create", {"name": "main"}, OWNER)


def _redeem(h: Harness, code: str, handle: str) -> Any:
    out = h.engine.run_mutation("spaces:redeem", [{"code": code, "handle": handle}], _admin(), internal_ok=True)
    if out.success:
        return out.value
    import json
    return {"error": json.loads(out.error_data_json)}


def _admin() -> Any:
    from collab.backend.engine import ADMIN
    return ADMIN


def test_each_failed_code_has_its_own_message(h: Harness) -> None:
    space = _space(h)
    assert expect_error(h, "spaces:join", {"code": "aaaaa-bbbbb-ccccc-ddddd"}, BOB)["code"] == "INVITE_UNKNOWN"

    expiring = h.call("spaces:invite", {"spaceId": space, "expiresInMs": 60_000}, OWNER)
    h.advance(60_001)
    err = expect_error(h, "spaces:join", {"code": expiring["code"]}, BOB)
    assert err["code"] == "INVITE_EXPIRED" and "expired" in err["message"]

    once = h.call("spaces:invite", {"spaceId": space, "maxUses": 1}, OWNER)
    assert h.call("spaces:join", {"code": once["code"]}, BOB)["role"] == "editor"
    err = expect_error(h, "spaces:join", {"code": once["code"]}, ident("carol"))
    assert err["code"] == "INVITE_USED_UP" and "used" in err["message"]

    revoked = h.call("spaces:invite", {"spaceId": space, "role": "viewer"}, OWNER)
    h.call("spaces:revokeInvite", {"spaceId": space, "inviteId": revoked["inviteId"]}, OWNER)
    err = expect_error(h, "spaces:join", {"code": revoked["code"]}, ident("carol"))
    assert err["code"] == "INVITE_REVOKED" and "@olga" in err["message"]

    listed = {i["hint"]: i for i in h.call("spaces:invites", {"spaceId": space}, OWNER)}
    assert listed[revoked["code"][:5]]["revoked"] is True and listed[once["code"][:5]]["uses"] == 1
    assert not any("code" in i for i in listed.values())  # the code itself is never stored
    assert all("code" not in row and row["codeHash"] for row in h.rows("invites"))


def test_codes_forgive_case_spaces_and_dashes(h: Harness) -> None:
    space = _space(h)
    code = h.call("spaces:invite", {"spaceId": space}, OWNER)["code"]
    assert len(normalize_code(code)) == 20
    typed = " " + code.upper().replace("-", " ") + " "
    assert h.call("spaces:join", {"code": typed}, BOB)["spaceId"] == space


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_max_uses_that_is_not_a_number_is_refused_clearly(h: Harness, bad: float) -> None:
    space = _space(h)
    err = expect_error(h, "spaces:invite", {"spaceId": space, "maxUses": bad}, OWNER)
    assert err["code"] == "INVALID_ARGUMENT" and "maxUses must be a whole number" in err["message"]
    assert h.call("spaces:invites", {"spaceId": space}, OWNER) == []  # nothing was written


def test_multi_use_code_and_joining_twice(h: Harness) -> None:
    space = _space(h)
    code = h.call("spaces:invite", {"spaceId": space, "maxUses": 2, "role": "viewer"}, OWNER)["code"]
    h.call("spaces:join", {"code": code}, BOB)
    assert h.call("spaces:join", {"code": code}, BOB)["role"] == "viewer"  # again: no second use
    h.call("spaces:join", {"code": code}, ident("carol"))
    assert expect_error(h, "spaces:join", {"code": code}, ident("dan"))["code"] == "INVITE_USED_UP"
    joined = [n for n in h.call("notifications:list", {}, OWNER) if n["kind"] == "memberJoined"]
    assert len(joined) == 2 and "@carol joined main as viewer" in joined[0]["text"]


def test_redeem_refuses_a_handle_that_is_someone_elses(h: Harness) -> None:
    space = _space(h)
    code = h.call("spaces:invite", {"spaceId": space, "maxUses": 5}, OWNER)["code"]
    # the owner's own handle: a token for it would be the owner's
    assert _redeem(h, code, "olga")["error"]["code"] == "HANDLE_TAKEN"
    assert _redeem(h, code, "All")["error"]["code"] == "INVALID_HANDLE"
    assert _redeem(h, code, "all")["error"]["code"] == "INVALID_HANDLE"
    got = _redeem(h, code, "bob")
    assert got == {"spaceId": space, "spaceName": "main", "role": "editor", "handle": "bob"}
    assert _redeem(h, code, "bob")["error"]["code"] == "HANDLE_TAKEN"
    # an agent member's handle is taken in the space too (mentions would be ambiguous)
    h.call("spaces:addMember", {"spaceId": space, "handle": "edwin", "kind": "agent", "role": "editor"}, OWNER)
    assert _redeem(h, code, "edwin")["error"]["code"] == "HANDLE_TAKEN"
    assert [i["uses"] for i in h.call("spaces:invites", {"spaceId": space}, OWNER)] == [1]


def test_role_change_and_removal_notify_and_audit_who(h: Harness) -> None:
    space = _space(h)
    code = h.call("spaces:invite", {"spaceId": space}, OWNER)["code"]
    h.call("spaces:join", {"code": code}, BOB)
    bob = h.call("actors:me", {}, BOB)["_id"]
    h.call("spaces:setRole", {"spaceId": space, "actorId": bob, "role": "viewer"}, OWNER)
    note = h.call("notifications:list", {}, BOB)[0]
    assert note["kind"] == "roleChanged" and "@olga made you viewer in main" in note["text"]
    err = expect_error(h, "artifacts:create", {"spaceId": space, "title": "x", "kind": "document",
                                                "content": ""}, BOB)
    assert err["code"] == "INSUFFICIENT_ROLE"
    h.call("spaces:removeMember", {"spaceId": space, "actorId": bob}, OWNER)
    assert h.call("notifications:list", {}, BOB)[0]["kind"] == "removed"
    audit = {a["type"]: a for a in h.call("audit:list", {"spaceId": space}, OWNER)}
    assert audit["member.role"]["data"]["byHandle"] == "olga"
    assert audit["member.removed"]["data"] == {"handle": "bob", "byHandle": "olga"}


def _agent_run(h: Harness, space: str) -> str:
    agent = h.call("actors:me", {}, AGENT)["_id"]
    return h.call("runs:enqueue", {"spaceId": space, "agentId": agent, "kind": "discussion"}, OWNER)


def test_usage_totals_windows_and_the_budget(h: Harness) -> None:
    space = _space(h)
    code = h.call("spaces:invite", {"spaceId": space}, OWNER)["code"]
    h.call("spaces:join", {"code": code}, AGENT)
    h.call("spaces:setBudget", {"spaceId": space, "budgetUsd": 0.01}, OWNER)
    run = _agent_run(h, space)
    h.call("runs:claim", {"spaceId": space}, AGENT)
    msg = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True}, AGENT)
    h.call("runs:complete", {"runId": run, "attempt": 1, "output": {"messageId": msg},
                             "usage": {"promptTokens": 100, "completionTokens": 40}, "costUsd": 0.004}, AGENT)
    t1 = h.now + 1
    h.advance(10)
    run2 = _agent_run(h, space)
    h.call("runs:claim", {"spaceId": space}, AGENT)
    h.call("runs:fail", {"runId": run2, "attempt": 1, "error": "boom",
                         "usage": {"promptTokens": 10, "completionTokens": 5}, "costUsd": 0.007}, AGENT)
    got = h.call("usage:summary", {"spaceId": space, "since": [0, t1]}, OWNER)
    assert got["budgetUsd"] == 0.01
    assert got["allTime"]["total"] == {"runs": 2, "promptTokens": 110, "completionTokens": 45,
                                       "costUsd": pytest.approx(0.011)}
    assert got["allTime"]["agents"][0]["handle"] == "ada"
    assert got["windows"][0]["total"]["runs"] == 2 and got["windows"][1]["total"]["completionTokens"] == 5
    # the reply shows its run's tokens and cost
    reply = next(m for m in h.call("messages:list", {"spaceId": space}, OWNER) if m["_id"] == msg)
    assert reply["usage"]["completionTokens"] == 40 and reply["usage"]["costUsd"] == 0.004
    # spent 0.011 >= 0.01: asking an agent is refused before a run starts, and nothing is posted
    agent = h.call("actors:me", {}, AGENT)["_id"]
    before = len(h.rows("messages"))
    err = expect_error(h, "messages:post", {"spaceId": space, "body": "@ada more please"}, OWNER)
    assert err["code"] == "BUDGET_EXCEEDED" and "$0.01 budget" in err["message"]
    assert len(h.rows("messages")) == before
    assert expect_error(h, "runs:enqueue", {"spaceId": space, "agentId": agent, "kind": "discussion"},
                        OWNER)["code"] == "BUDGET_EXCEEDED"
    h.call("messages:post", {"spaceId": space, "body": "humans can still talk"}, OWNER)
    # the owner's config raises it: spaces:open carries the budget
    h.call("spaces:open", {"name": "main", "budgetUsd": 1.0}, OWNER)
    assert h.call("messages:post", {"spaceId": space, "body": "@ada go on"}, OWNER)
