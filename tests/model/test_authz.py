"""Authorization: every public function has a policy, and the matrix of every public function x
{no token, non-member, viewer, editor, agent of another space, owner} gives the expected answer.

A caller the policy admits gets exactly the answer its place in the world calls for, and its
effect is checked (``EXPECT``): the write landed (read back through the API), the query
returned the space's data, or the precise domain error (the editor is not the lock holder, not
the author...). A caller the policy refuses gets UNAUTHENTICATED / NOT_A_MEMBER /
INSUFFICIENT_ROLE and nothing is written.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from collab.backend.engine import ANONYMOUS, Identity
from collab.backend.model._auth import POLICIES, ROLE_RANK

from tests.model._harness import T0, CallError, Harness, ident, model_app

AUTH_CODES = {"UNAUTHENTICATED", "NOT_A_MEMBER", "INSUFFICIENT_ROLE"}
CALLERS: dict[str, Identity] = {
    "anonymous": ANONYMOUS,
    "nonMember": ident("nina"),
    "viewer": ident("vic"),
    "editor": ident("eddie"),
    "otherAgent": ident("xander", "agent"),  # owner of another space, stranger here
    "owner": ident("olga"),
}
ROLE_OF = {"anonymous": None, "nonMember": None, "otherAgent": None, "viewer": "viewer", "editor": "editor",
           "owner": "owner"}
AGENT = ident("ada", "agent")  # an editor agent of the space: runs are assigned to it

W = dict[str, Any]
# Valid arguments for every public function, given the world; a new public function without an
# entry here fails test_matrix_covers_every_public_function.
ARGS: dict[str, Callable[[W], dict[str, Any]]] = {
    "actors:me": lambda w: {},
    "actors:ensure": lambda w: {"name": "New Name"},
    "spaces:create": lambda w: {"name": "another"},
    "spaces:open": lambda w: {"name": "main", "agents": [{"handle": "zed"}]},
    "spaces:list": lambda w: {},
    "spaces:get": lambda w: {"spaceId": w["space"]},
    "spaces:members": lambda w: {"spaceId": w["space"]},
    "spaces:invite": lambda w: {"spaceId": w["space"], "role": "viewer"},
    "spaces:join": lambda w: {"code": w["code"]},
    "spaces:invites": lambda w: {"spaceId": w["space"]},
    "spaces:revokeInvite": lambda w: {"spaceId": w["space"], "inviteId": w["invite"]},
    "spaces:setBudget": lambda w: {"spaceId": w["space"], "budgetUsd": 5.0},
    "usage:summary": lambda w: {"spaceId": w["space"], "since": [0]},
    "locks:waiting": lambda w: {"spaceId": w["space"]},
    "spaces:addMember": lambda w: {"spaceId": w["space"], "handle": "zed", "kind": "agent", "role": "editor"},
    "spaces:setRole": lambda w: {"spaceId": w["space"], "actorId": w["actors"]["editor"], "role": "viewer"},
    "spaces:removeMember": lambda w: {"spaceId": w["space"], "actorId": w["actors"]["viewer"]},
    "artifacts:create": lambda w: {"spaceId": w["space"], "title": "New", "kind": "document", "content": "x"},
    "artifacts:get": lambda w: {"artifactId": w["artifact"]},
    "artifacts:list": lambda w: {"spaceId": w["space"]},
    "artifacts:history": lambda w: {"artifactId": w["artifact"]},
    "artifacts:historyPage": lambda w: {"artifactId": w["artifact"], "numItems": 10, "cursor": None},
    "artifacts:version": lambda w: {"artifactId": w["artifact"], "version": 1},
    "artifacts:save": lambda w: {"artifactId": w["locked"], "token": 2, "content": "new"},
    "artifacts:restore": lambda w: {"artifactId": w["locked"], "token": 2, "version": 1},
    "artifacts:update": lambda w: {"artifactId": w["artifact"], "title": "Renamed"},
    "artifacts:delete": lambda w: {"artifactId": w["artifact"]},
    "locks:acquire": lambda w: {"artifactId": w["artifact"]},
    "locks:renew": lambda w: {"artifactId": w["locked"], "token": 2},
    "locks:release": lambda w: {"artifactId": w["locked"], "token": 2},
    "locks:forceRelease": lambda w: {"artifactId": w["locked"], "reason": "matrix"},
    "locks:leave": lambda w: {"artifactId": w["locked"]},
    "locks:queue": lambda w: {"artifactId": w["locked"]},
    "locks:list": lambda w: {"spaceId": w["space"]},
    "drafts:append": lambda w: {"artifactId": w["locked"], "token": 2, "text": "x"},
    "drafts:get": lambda w: {"artifactId": w["locked"]},
    "drafts:list": lambda w: {"artifactId": w["locked"]},
    "drafts:discard": lambda w: {"artifactId": w["locked"], "draftId": w["orphan"]},
    "messages:post": lambda w: {"spaceId": w["space"], "body": "hi @olga about #doc"},
    "messages:openReply": lambda w: {"spaceId": w["space"], "key": "r" * 16, "threadId": w["message"]},
    "messages:append": lambda w: {"messageId": w["streaming"], "text": "more"},
    "messages:finish": lambda w: {"messageId": w["streaming"], "state": "done"},
    "messages:list": lambda w: {"spaceId": w["space"]},
    "messages:page": lambda w: {"spaceId": w["space"], "numItems": 10, "cursor": None},
    "messages:markDecision": lambda w: {"messageId": w["message"], "decision": True},
    "messages:markQuestion": lambda w: {"messageId": w["message"], "open": True},
    "messages:outline": lambda w: {"spaceId": w["space"]},
    "presence:heartbeat": lambda w: {"spaceId": w["space"], "artifactId": w["artifact"]},
    "presence:leave": lambda w: {"spaceId": w["space"]},
    "presence:list": lambda w: {"spaceId": w["space"]},
    "runs:enqueue": lambda w: {"spaceId": w["space"], "agentId": w["actors"]["agent"], "kind": "discussion"},
    "runs:claim": lambda w: {"spaceId": w["space"]},
    "runs:heartbeat": lambda w: {"runId": w["run"], "attempt": 1},
    "runs:complete": lambda w: {"runId": w["run"], "attempt": 1},
    "runs:fail": lambda w: {"runId": w["run"], "attempt": 1, "error": "boom"},
    "runs:cancel": lambda w: {"runId": w["run"]},
    "runs:get": lambda w: {"runId": w["run"]},
    "runs:list": lambda w: {"spaceId": w["space"]},
    "runs:active": lambda w: {"spaceId": w["space"]},
    "runs:page": lambda w: {"spaceId": w["space"], "numItems": 10, "cursor": None},
    "runs:pending": lambda w: {},
    "runs:retry": lambda w: {"runId": w["run"]},
    "runs:cancelAll": lambda w: {"spaceId": w["space"]},
    "streams:open": lambda w: {"spaceId": w["space"], "kind": "draft", "artifactId": w["locked"], "token": 2,
                               "key": "k" * 16},
    "streams:push": lambda w: {"chunks": [{"streamId": w["stream"], "key": "s" * 16, "text": "x", "seq": 1}]},
    "streams:close": lambda w: {"streamId": w["stream"], "key": "s" * 16},
    "streams:forSpace": lambda w: {"spaceId": w["space"]},
    "streams:forMessage": lambda w: {"messageId": w["streaming"]},
    "streams:forArtifact": lambda w: {"artifactId": w["locked"]},
    "proposals:open": lambda w: {"proposalId": w["proposal2"], "key": "p" * 16},
    "proposals:append": lambda w: {"proposalId": w["proposal2"], "text": "more"},
    "proposals:finish": lambda w: {"proposalId": w["proposal2"], "status": "done"},
    "proposals:get": lambda w: {"proposalId": w["proposal1"]},
    "proposals:live": lambda w: {"artifactId": w["locked"]},
    "variations:start": lambda w: {"artifactId": w["locked"], "instruction": "shorter", "n": 2},
    "variations:more": lambda w: {"roundId": w["round"], "note": "more like #1"},
    "variations:cancel": lambda w: {"roundId": w["round"]},
    "variations:star": lambda w: {"variationId": w["variation1"]},
    "variations:unstar": lambda w: {"variationId": w["variation1"]},
    "variations:pick": lambda w: {"variationId": w["variation1"], "token": 2},
    "variations:compose": lambda w: {"roundId": w["round"], "parts": [
        {"variationId": w["variation1"], "range": {"start": 0, "end": 1}}]},
    "variations:forArtifact": lambda w: {"artifactId": w["locked"]},
    "variations:round": lambda w: {"roundId": w["round"]},
    "pipelines:start": lambda w: {"artifactId": w["artifact"], "flow": "writing", "stages": [
        {"name": "draft", "actor": "ada"}, {"name": "polish", "actor": "human", "approver": "auto"}]},
    "pipelines:submit": lambda w: {"pipelineId": w["pipeHuman"], "stageRunId": w["pipeHumanRun"], "token": 1,
                                   "content": "my draft"},
    "pipelines:approve": lambda w: {"pipelineId": w["pipeReview"], "stageRunId": w["pipeReviewRun"]},
    "pipelines:reject": lambda w: {"pipelineId": w["pipeReview"], "stageRunId": w["pipeReviewRun"],
                                   "reason": "too long"},
    "pipelines:cancel": lambda w: {"pipelineId": w["pipeReview"]},
    "pipelines:retry": lambda w: {"pipelineId": w["pipeFailed"]},
    "pipelines:get": lambda w: {"pipelineId": w["pipeReview"]},
    "pipelines:forArtifact": lambda w: {"artifactId": w["reviewed"]},
    "audit:list": lambda w: {"spaceId": w["space"]},
    "audit:page": lambda w: {"spaceId": w["space"], "numItems": 10, "cursor": None},
    "notifications:list": lambda w: {},
    "notifications:markRead": lambda w: {},
}

_WORLD: dict[str, Any] = {}


def _public() -> dict[str, Any]:
    return {p: f for p, f in model_app().functions.items() if f.visibility == "public"}


def _world(tmp_root: Path) -> dict[str, Any]:
    """A space with an owner, a viewer, an editor and an editor agent; another space owned by
    an agent; a free artifact; a locked artifact (the owner holds epoch 2 with a live draft,
    the editor waits in its queue, an orphaned draft of epoch 1 is kept); a message marked as
    an open question, a streaming message with its live stream, a queued run for the agent,
    the owner's presence row."""
    if _WORLD:
        return _WORLD
    path = tmp_root / "world.sqlite"
    h = Harness(path)
    owner = CALLERS["owner"]
    space = h.call("spaces:create", {"name": "main"}, owner)
    h.call("spaces:create", {"name": "elsewhere"}, CALLERS["otherAgent"])
    h.call("actors:ensure", {}, CALLERS["nonMember"])
    for role, who in (("viewer", CALLERS["viewer"]), ("editor", CALLERS["editor"]), ("editor", AGENT)):
        code = h.call("spaces:invite", {"spaceId": space, "role": role}, owner)["code"]
        h.call("spaces:join", {"code": code}, who)
    invited = h.call("spaces:invite", {"spaceId": space, "role": "viewer"}, owner)
    code = invited["code"]
    invite = h.call("spaces:invite", {"spaceId": space, "role": "editor", "maxUses": 1}, owner)["inviteId"]
    artifact = h.call("artifacts:create", {"spaceId": space, "title": "Doc", "kind": "document", "content": "a"}, owner)
    locked = h.call("artifacts:create", {"spaceId": space, "title": "Locked", "kind": "code", "content": "b"}, owner)
    # an orphaned draft (epoch 1, force-released), then the owner holds the lock again (epoch 2)
    h.call("locks:acquire", {"artifactId": locked}, owner)
    h.call("drafts:append", {"artifactId": locked, "token": 1, "text": "orphan"}, owner)
    h.call("locks:forceRelease", {"artifactId": locked, "reason": "setup"}, owner)
    h.call("locks:acquire", {"artifactId": locked}, owner)
    h.call("drafts:append", {"artifactId": locked, "token": 2, "text": "live"}, owner)
    assert h.call("locks:acquire", {"artifactId": locked}, CALLERS["editor"])["status"] == "queued"
    orphan = next(d["_id"] for d in h.rows("drafts") if d["status"] == "orphaned")
    message = h.call("messages:post", {"spaceId": space, "body": "hello"}, owner)
    h.call("messages:markQuestion", {"messageId": message, "open": True}, owner)
    streaming = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True}, owner)
    actors = {k: h.call("actors:me", {}, who)["_id"] for k, who in CALLERS.items() if k != "anonymous"}
    actors["agent"] = h.call("actors:me", {}, AGENT)["_id"]
    run = h.call("runs:enqueue", {"spaceId": space, "agentId": actors["agent"], "kind": "discussion"}, owner)
    stream = h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": streaming,
                                     "key": "s" * 16}, owner)
    h.call("presence:heartbeat", {"spaceId": space, "artifactId": artifact}, owner)
    # a round of two variations of the locked artifact by the agent: #1 finished, #2 queued
    rnd = h.call("variations:start", {"artifactId": locked, "instruction": "tighten", "n": 2,
                                      "agents": ["ada"]}, owner)
    variants = h.call("variations:round", {"roundId": rnd["roundId"]}, owner)["variations"]
    h.call("proposals:open", {"proposalId": variants[0]["proposalId"], "key": "v" * 16}, AGENT)
    h.call("proposals:finish", {"proposalId": variants[0]["proposalId"], "status": "done",
                                "content": "line one\nline two"}, AGENT)
    pipes = _pipelines(h, space, owner)
    h.close()
    _WORLD.update(path=path, space=space, code=code, invite=invite, artifact=artifact, locked=locked, orphan=orphan,
                  message=message, streaming=streaming, actors=actors, run=run, stream=stream,
                  round=rnd["roundId"], variation1=variants[0]["variationId"],
                  proposal1=variants[0]["proposalId"], proposal2=variants[1]["proposalId"], **pipes)
    return _WORLD


def _pipelines(h: Harness, space: str, owner: Identity) -> dict[str, Any]:
    """Three pipelines: one whose agent stage awaits a human's review, one failed (its stage's
    run was cancelled), one whose human stage the owner is working on (lock token 1)."""
    made: dict[str, Any] = {}
    for name, actor in (("Reviewed", "ada"), ("Broken", "ada"), ("Human", "human")):
        art = h.call("artifacts:create", {"spaceId": space, "title": name, "kind": "document", "content": "c"}, owner)
        got = h.call("pipelines:start", {"artifactId": art, "stages": [{"name": "draft", "actor": actor}]}, owner)
        made[name] = (art, got["pipelineId"], got["stageRunId"])
    art, pid, sr = made["Reviewed"]
    token = h.call("locks:acquire", {"artifactId": art}, AGENT)["token"]
    prop = h.call("pipelines:get", {"pipelineId": pid}, owner)["runs"][0]["proposalId"]
    h.call("proposals:open", {"proposalId": prop, "key": "q" * 16, "token": token}, AGENT)
    h.call("pipelines:submit", {"pipelineId": pid, "stageRunId": sr, "token": token, "content": "drafted"}, AGENT)
    _, broken, _ = made["Broken"]
    h.call("runs:cancel", {"runId": h.call("pipelines:get", {"pipelineId": broken}, owner)["runs"][0]["runId"]}, owner)
    h.call("locks:acquire", {"artifactId": made["Human"][0]}, owner)
    return {"reviewed": art, "pipeReview": pid, "pipeReviewRun": sr, "pipeFailed": broken,
            "pipeHuman": made["Human"][1], "pipeHumanRun": made["Human"][2]}


# --------------------------------------------------------------------------- expected answers


@dataclass
class Case:
    """One admitted call: its answer (``value`` or the error ``code``) and a way to read back."""

    path: str
    caller: str
    h: Harness
    w: W
    value: Any
    code: str | None

    @property
    def me(self) -> str:
        return str(self.w["actors"][self.caller])

    @property
    def handle(self) -> str:
        return str(CALLERS[self.caller].claims["preferredUsername"])

    @property
    def role(self) -> str | None:
        return ROLE_OF[self.caller]

    def ok(self) -> Any:
        assert self.code is None, f"{self.path} as {self.caller}: refused with {self.code}"
        return self.value

    def refused(self, code: str) -> None:
        assert self.code == code, f"{self.path} as {self.caller}: expected {code}, got {self.code} / {self.value!r}"

    def read(self, path: str, args: dict[str, Any], who: str = "owner") -> Any:
        """Read back through the API, as the owner unless said otherwise."""
        return self.h.call(path, args, CALLERS[who])

    def artifact(self, key: str = "artifact") -> dict[str, Any]:
        return dict(self.read("artifacts:get", {"artifactId": self.w[key]}))

    def run(self) -> dict[str, Any]:
        return dict(self.read("runs:get", {"runId": self.w["run"]}))

    def message(self, key: str) -> dict[str, Any]:
        return next(m for m in self.read("messages:list", {"spaceId": self.w["space"]}) if m["_id"] == self.w[key])

    def member_roles(self) -> dict[str, str]:
        return {m["handle"]: m["role"] for m in self.read("spaces:members", {"spaceId": self.w["space"]})}


def _actors_me(c: Case) -> None:
    me = c.ok()
    assert me["_id"] == c.me and me["handle"] == c.handle


def _actors_ensure(c: Case) -> None:
    assert c.ok()["_id"] == c.me
    assert c.read("actors:me", {}, c.caller)["name"] == "New Name"


def _spaces_create(c: Case) -> None:
    new = c.ok()
    mine = {s["_id"]: s for s in c.read("spaces:list", {}, c.caller)}
    assert mine[new]["name"] == "another" and mine[new]["role"] == "owner"


def _spaces_open(c: Case) -> None:
    got = c.ok()
    if c.role is None:  # no space "main" of theirs: they get a new one of their own
        assert got["created"] and got["role"] == "owner" and got["spaceId"] != c.w["space"]
        return
    assert got["spaceId"] == c.w["space"] and got["role"] == c.role and not got["created"]
    assert got["me"]["_id"] == c.me
    # only an owner adds the agents it names
    assert ("zed" in c.member_roles()) == (c.role == "owner")


def _spaces_list(c: Case) -> None:
    roles = {s["_id"]: s["role"] for s in c.ok()}
    assert roles.get(c.w["space"]) == c.role
    if c.caller == "otherAgent":
        assert "owner" in roles.values()  # its own space "elsewhere"


def _spaces_get(c: Case) -> None:
    got = c.ok()
    assert got["_id"] == c.w["space"] and got["name"] == "main" and got["role"] == c.role


def _spaces_members(c: Case) -> None:
    roles = {m["handle"]: m["role"] for m in c.ok()}
    assert roles == {"olga": "owner", "vic": "viewer", "eddie": "editor", "ada": "editor"}


def _spaces_invite(c: Case) -> None:
    got = c.ok()
    # the code is returned once; the invite row keeps its hash and a hint, never the code
    row = next(i for i in c.h.rows("invites") if i["_id"] == got["inviteId"])
    assert got["role"] == "viewer" and row["role"] == "viewer" and got["code"] not in str(row)


def _spaces_invites(c: Case) -> None:
    got = c.ok()  # newest first: the editor invite of one use, then the other four
    assert len(got) == 5 and got[0]["inviteId"] == c.w["invite"]
    assert (got[0]["role"], got[0]["maxUses"], got[0]["revoked"], got[0]["createdByHandle"]) == ("editor", 1, False, "olga")


def _spaces_revoke_invite(c: Case) -> None:
    assert c.ok() is None
    invites = {i["inviteId"]: i for i in c.read("spaces:invites", {"spaceId": c.w["space"]})}
    assert invites[c.w["invite"]]["revoked"] is True


def _spaces_set_budget(c: Case) -> None:
    assert c.ok() is None
    assert c.read("usage:summary", {"spaceId": c.w["space"]})["budgetUsd"] == 5.0


def _usage_summary(c: Case) -> None:
    got = c.ok()  # no run has reported usage in the world, and no budget is set
    assert got["budgetUsd"] is None and got["allTime"]["agents"] == [] and len(got["windows"]) == 1


def _locks_waiting(c: Case) -> None:
    assert [(r["artifactId"], r["handle"], r["position"]) for r in c.ok()] == [(c.w["locked"], "eddie", 1)]


def _runs_active(c: Case) -> None:
    got = c.ok()  # oldest first: the discussion run, the round's two variation runs (the setup
    # finished #1's proposal, not its run, which no worker claimed), the reviewed pipeline's stage
    assert [(r["kind"], r["status"], r["agentHandle"]) for r in got] == [
        ("discussion", "queued", "ada"), ("variation", "queued", "ada"), ("variation", "queued", "ada"),
        ("stage", "queued", "ada")]
    assert got[0]["runId"] == c.w["run"]


def _spaces_join(c: Case) -> None:
    got = c.ok()
    assert got["spaceId"] == c.w["space"]
    # a member keeps its role (never a downgrade); a stranger joins with the invite's role
    assert got["role"] == (c.role or "viewer")
    assert c.read("spaces:get", {"spaceId": c.w["space"]}, c.caller)["role"] == got["role"]


def _spaces_add_member(c: Case) -> None:
    c.ok()
    assert c.member_roles()["zed"] == "editor"


def _spaces_set_role(c: Case) -> None:
    c.ok()
    assert c.member_roles()["eddie"] == "viewer"


def _spaces_remove_member(c: Case) -> None:
    if c.caller == "editor":  # removing someone else needs the owner role
        c.refused("FORBIDDEN")
        assert "vic" in c.member_roles()
        return
    c.ok()
    assert "vic" not in c.member_roles()


def _artifacts_create(c: Case) -> None:
    new = c.ok()
    got = c.read("artifacts:get", {"artifactId": new})
    assert (got["title"], got["content"], got["version"], got["createdBy"]) == ("New", "x", 1, c.me)


def _artifacts_get(c: Case) -> None:
    got = c.ok()
    assert (got["_id"], got["title"], got["content"], got["lock"]["held"]) == (c.w["artifact"], "Doc", "a", False)


def _artifacts_list(c: Case) -> None:
    got = c.ok()
    assert sorted(a["slug"] for a in got) == ["broken", "doc", "human", "locked", "reviewed"]
    assert all("content" not in a for a in got)


def _artifacts_history(c: Case) -> None:
    assert [(v["version"], v["authorId"]) for v in c.ok()] == [(1, c.w["actors"]["owner"])]


def _artifacts_version(c: Case) -> None:
    got = c.ok()
    assert (got["version"], got["content"]) == (1, "a")


def _holder_only(c: Case, check: Callable[[Any], None]) -> None:
    """Writes under the locked artifact's token 2: only its holder (the owner) may."""
    if c.caller != "owner":
        c.refused("NOT_HOLDER")
        return
    check(c.ok())


def _artifacts_save(c: Case) -> None:
    def check(got: Any) -> None:
        assert got["version"] == 2 and got["grantedTo"]["handle"] == "eddie"  # the queue head
        art = c.artifact("locked")
        assert art["content"] == "new" and art["lock"]["holder"]["handle"] == "eddie"
    _holder_only(c, check)


def _artifacts_restore(c: Case) -> None:
    def check(got: Any) -> None:
        assert got["version"] == 2
        assert c.read("artifacts:version", {"artifactId": c.w["locked"], "version": 2})["restoredFrom"] == 1
        assert c.artifact("locked")["content"] == "b"
    _holder_only(c, check)


def _artifacts_update(c: Case) -> None:
    assert c.ok() is None
    assert c.artifact()["title"] == "Renamed"


def _artifacts_delete(c: Case) -> None:
    got = c.ok()
    assert got == {"deleted": True, "title": "Doc", "slug": "doc", "version": 1}
    assert sorted(a["slug"] for a in c.read("artifacts:list", {"spaceId": c.w["space"]})) == [
        "broken", "human", "locked", "reviewed"]
    with pytest.raises(CallError) as gone:
        c.artifact()
    assert gone.value.code == "NOT_FOUND"
    deleted = [e for e in c.read("audit:list", {"spaceId": c.w["space"]}) if e["type"] == "artifact.deleted"]
    assert len(deleted) == 1 and deleted[0]["actorId"] == c.me


def _locks_acquire(c: Case) -> None:
    got = c.ok()
    assert got["status"] == "granted" and got["token"] == 1
    assert c.artifact()["lock"]["holder"]["handle"] == c.handle


def _locks_renew(c: Case) -> None:
    def check(got: Any) -> None:
        assert got["token"] == 2 and got["expiresAt"] == c.artifact("locked")["lock"]["holder"]["expiresAt"] > T0
    _holder_only(c, check)


def _locks_release(c: Case) -> None:
    def check(got: Any) -> None:
        assert got["released"] and got["grantedTo"]["handle"] == "eddie"
        assert c.artifact("locked")["lock"]["holder"]["handle"] == "eddie"
    _holder_only(c, check)


def _locks_force_release(c: Case) -> None:
    got = c.ok()
    assert got["previousHolder"]["handle"] == "olga" and got["grantedTo"]["handle"] == "eddie"
    assert [d["content"] for d in c.read("drafts:list", {"artifactId": c.w["locked"]})] == ["live", "orphan"]


def _locks_leave(c: Case) -> None:
    assert c.ok() == {"left": c.caller == "editor"}  # the editor is the one waiting
    assert c.artifact("locked")["lock"]["queueLength"] == (0 if c.caller == "editor" else 1)


def _locks_queue(c: Case) -> None:
    got = c.ok()
    assert got["held"] and got["holder"]["handle"] == "olga"
    assert [(q["handle"], q["position"]) for q in got["queue"]] == [("eddie", 1)]


def _locks_list(c: Case) -> None:
    # the owner's hold, and the three pipelines' holds (the human stage's under the owner's lock)
    slugs = {a["_id"]: a["slug"] for a in c.read("artifacts:list", {"spaceId": c.w["space"]})}
    got = sorted((slugs[r["artifactId"]], (r["holder"] or {}).get("handle"), (r["pipeline"] or {}).get("status"))
                 for r in c.ok())
    assert got == [("broken", None, "failed"), ("human", "olga", "running"), ("locked", "olga", None),
                   ("reviewed", None, "awaitingReview")]


def _drafts_append(c: Case) -> None:
    def check(got: Any) -> None:
        assert got["length"] == len("livex") and not got["duplicate"]
        assert c.read("drafts:get", {"artifactId": c.w["locked"]})["content"] == "livex"
    _holder_only(c, check)


def _drafts_get(c: Case) -> None:
    got = c.ok()
    assert (got["content"], got["epoch"], got["actorId"]) == ("live", 2, c.w["actors"]["owner"])


def _drafts_list(c: Case) -> None:
    assert [(d["_id"], d["content"]) for d in c.ok()] == [(c.w["orphan"], "orphan")]


def _drafts_discard(c: Case) -> None:
    if c.caller == "editor":  # the owner wrote it; an editor may discard only its own
        c.refused("FORBIDDEN")
        return
    assert c.ok() is None
    assert c.read("drafts:list", {"artifactId": c.w["locked"]}) == []


def _messages_post(c: Case) -> None:
    new = c.ok()
    msg = next(m for m in c.read("messages:list", {"spaceId": c.w["space"]}) if m["_id"] == new)
    assert (msg["authorId"], msg["body"], msg["state"]) == (c.me, "hi @olga about #doc", "done")
    assert msg["mentions"] == [c.w["actors"]["owner"]] and msg["refs"] == [c.w["artifact"]]


def _messages_open_reply(c: Case) -> None:
    got = c.ok()
    msg = next(m for m in c.read("messages:list", {"spaceId": c.w["space"]}) if m["_id"] == got["messageId"])
    assert msg["authorId"] == c.me and msg["state"] == "streaming" and msg["threadId"] == c.w["message"]
    assert c.read("streams:forMessage", {"messageId": got["messageId"]})["_id"] == got["streamId"]


def _author_only(c: Case, check: Callable[[], None]) -> None:
    """The streaming message is the owner's: only its author may write it."""
    if c.caller != "owner":
        c.refused("NOT_AUTHOR")
        return
    assert c.ok() is None
    check()


def _messages_append(c: Case) -> None:
    _author_only(c, lambda: _eq(c.message("streaming")["body"], "more"))


def _messages_finish(c: Case) -> None:
    def check() -> None:
        assert c.message("streaming")["state"] == "done"
        assert c.read("streams:forMessage", {"messageId": c.w["streaming"]}) is None  # the tail ended with it
    _author_only(c, check)


def _eq(got: Any, want: Any) -> None:
    assert got == want, (got, want)


def _messages_list(c: Case) -> None:
    assert [(m["_id"], m["body"]) for m in c.ok()] == [(c.w["message"], "hello"), (c.w["streaming"], "")]


def _messages_page(c: Case) -> None:
    got = c.ok()
    assert [m["_id"] for m in got["page"]] == [c.w["streaming"], c.w["message"]] and got["isDone"]


def _messages_mark_decision(c: Case) -> None:
    assert c.ok() is None
    msg = c.message("message")
    assert msg["decision"] and msg["markedBy"] == c.me


def _messages_mark_question(c: Case) -> None:
    assert c.ok() is None
    assert c.message("message")["markedBy"] == c.me


def _messages_outline(c: Case) -> None:
    got = c.ok()
    assert got["decisions"] == [] and [m["_id"] for m in got["openQuestions"]] == [c.w["message"]]


def _presence_heartbeat(c: Case) -> None:
    got = c.ok()
    mine = [p for p in c.read("presence:list", {"spaceId": c.w["space"]}) if p["actorId"] == c.me]
    assert [(p["_id"], p["artifactId"], p["actorHandle"]) for p in mine] == [(got["presenceId"], c.w["artifact"], c.handle)]


def _presence_leave(c: Case) -> None:
    assert c.ok() is None
    rows = c.read("presence:list", {"spaceId": c.w["space"]})
    assert [p["actorHandle"] for p in rows] == ([] if c.caller == "owner" else ["olga"])


def _presence_list(c: Case) -> None:
    assert [(p["actorHandle"], p["artifactId"]) for p in c.ok()] == [("olga", c.w["artifact"])]


def _runs_enqueue(c: Case) -> None:
    run = c.read("runs:get", {"runId": c.ok()})
    assert (run["agentId"], run["status"], run["createdBy"]) == (c.w["actors"]["agent"], "queued", c.me)


def _runs_claim(c: Case) -> None:
    assert c.ok() is None  # the caller is not the agent: none of its runs are queued
    assert c.run()["status"] == "queued"


def _runs_not_claimed(c: Case) -> None:
    """heartbeat / complete / fail of a run nobody claimed (and not the caller's)."""
    c.refused("RUN_LOST")
    assert c.run()["status"] == "queued"


def _runs_cancel(c: Case) -> None:
    assert c.ok() == {"status": "cancelled"}
    assert c.run()["status"] == "cancelled"


def _runs_cancel_all(c: Case) -> None:
    got = c.ok()
    # the queued discussion run, the round's two variation runs, the reviewed pipeline's stage run
    assert [(r["agentHandle"], r["kind"]) for r in got] == [("ada", "discussion"), ("ada", "variation"),
                                                             ("ada", "variation"), ("ada", "stage")]
    assert got[0]["runId"] == c.w["run"]
    runs = c.read("runs:list", {"spaceId": c.w["space"]})
    assert {r["status"] for r in runs} == {"cancelled"}
    assert c.run()["error"] == f"cancelled by @{c.handle}"


def _runs_retry(c: Case) -> None:
    c.refused("RUN_ACTIVE")  # still queued: only failed or cancelled runs are retried


def _runs_get(c: Case) -> None:
    got = c.ok()
    assert (got["_id"], got["status"], got["agentId"]) == (c.w["run"], "queued", c.w["actors"]["agent"])


def _runs_list(c: Case) -> None:
    got = c.ok()  # newest first: the pipelines' two stage runs, the round's two, the discussion run
    assert [(r["kind"], r["status"]) for r in got] == [("stage", "cancelled"), ("stage", "queued"), (
        "variation", "queued"), ("variation", "queued"), ("discussion", "queued")] and got[-1]["_id"] == c.w["run"]


def _runs_page(c: Case) -> None:
    got = c.ok()  # every run fits one page of 10: the same runs as runs:list, in the same order
    assert got["isDone"] is True
    assert [r["_id"] for r in got["page"]] == [r["_id"] for r in c.read("runs:list", {"spaceId": c.w["space"]})]


def _runs_pending(c: Case) -> None:
    assert c.ok() == []  # every caller of the matrix is a stranger to the agent's runs


def _streams_open(c: Case) -> None:
    def check(got: Any) -> None:
        row = c.read("streams:forArtifact", {"artifactId": c.w["locked"]})
        assert row["_id"] == got and row["epoch"] == 2 and "key" not in row
    _holder_only(c, check)


def _streams_push(c: Case) -> None:
    assert [r["status"] for r in c.ok()] == ["ok"]  # the key, not the identity, authorizes
    assert c.read("streams:forMessage", {"messageId": c.w["streaming"]})["text"] == "x"


def _streams_close(c: Case) -> None:
    assert c.ok() is True
    assert c.read("streams:forMessage", {"messageId": c.w["streaming"]}) is None


def _streams_for_space(c: Case) -> None:
    got = c.ok()
    assert [r["_id"] for r in got] == [c.w["stream"]] and "key" not in got[0]


def _streams_for_message(c: Case) -> None:
    got = c.ok()
    assert got["_id"] == c.w["stream"] and got["messageId"] == c.w["streaming"]


def _streams_for_artifact(c: Case) -> None:
    assert c.ok() is None  # the owner's hold streams no draft yet


def _not_the_author(c: Case) -> None:
    """proposals:open / append / finish of the agent's proposal: only its author writes it."""
    c.refused("NOT_AUTHOR")
    assert c.read("proposals:get", {"proposalId": c.w["proposal2"]})["status"] == "queued"


def _proposals_get(c: Case) -> None:
    got = c.ok()
    assert (got["_id"], got["status"], got["content"], got["authorHandle"]) == (
        c.w["proposal1"], "done", "line one\nline two", "ada")


def _proposals_live(c: Case) -> None:
    assert c.ok() == []  # #1 finished (its tail went with it), #2 never opened


def _round_of(c: Case, round_id: str) -> dict[str, Any]:
    return dict(c.read("variations:round", {"roundId": round_id}))


def _variations_start(c: Case) -> None:
    got = c.ok()
    assert got["number"] == 2 and len(got["variationIds"]) == 2
    rnd = _round_of(c, got["roundId"])
    assert rnd["round"]["createdBy"] == c.me and [v["status"] for v in rnd["variations"]] == ["queued", "queued"]
    assert [r["number"] for r in c.read("variations:forArtifact", {"artifactId": c.w["locked"]})] == [2, 1]


def _variations_more(c: Case) -> None:
    got = c.ok()
    rnd = _round_of(c, got["roundId"])["round"]
    assert (rnd["number"], rnd["parentRoundId"], rnd["note"]) == (2, c.w["round"], "more like #1")


def _variations_cancel(c: Case) -> None:
    assert c.ok() == {"cancelled": 1}  # #2 was queued; #1 had finished
    assert [v["status"] for v in _round_of(c, c.w["round"])["variations"]] == ["done", "cancelled"]


def _variations_star(c: Case) -> None:
    assert c.ok() is None
    row = next(r for r in c.h.rows("variations") if r["_id"] == c.w["variation1"])
    assert row["starred"] and row["starredBy"] == c.me


def _variations_unstar(c: Case) -> None:
    assert c.ok() is None
    assert not _round_of(c, c.w["round"])["variations"][0]["starred"]


def _variations_pick(c: Case) -> None:
    def check(got: Any) -> None:
        assert got["version"] == 2 and got["grantedTo"]["handle"] == "eddie"
        assert c.artifact("locked")["content"] == "line one\nline two"
        assert _round_of(c, c.w["round"])["round"]["picked"]["variationId"] == c.w["variation1"]
    _holder_only(c, check)


def _variations_compose(c: Case) -> None:
    got = c.ok()
    assert got["composed"] == "concatenated"
    made = _round_of(c, c.w["round"])["variations"][-1]
    assert (made["variationId"], made["index"], made["composed"], made["content"]) == (
        got["variationId"], 3, True, "line one")


def _variations_for_artifact(c: Case) -> None:
    got = c.ok()
    assert [(r["_id"], r["number"], r["counts"], r["stars"]) for r in got] == [
        (c.w["round"], 1, {"done": 1, "queued": 1}, 0)]


def _variations_round(c: Case) -> None:
    got = c.ok()
    assert got["round"]["_id"] == c.w["round"]
    assert [(v["index"], v["status"], v["author"], v["content"]) for v in got["variations"]] == [
        (1, "done", "ada", "line one\nline two"), (2, "queued", "ada", "")]


def _audit_list(c: Case) -> None:
    types = [e["type"] for e in c.ok()]
    assert types[-1] == "space.created" and "lock.released" in types and "run.queued" in types


def _audit_page(c: Case) -> None:
    got = c.ok()  # newest first, 10 of a longer log; the next page goes on where this one ends
    assert len(got["page"]) == 10 and got["isDone"] is False
    assert [e["_id"] for e in got["page"]] == [e["_id"] for e in c.read("audit:list", {"spaceId": c.w["space"]})[:10]]
    more = c.read("audit:page", {"spaceId": c.w["space"], "numItems": 10, "cursor": got["continueCursor"]})
    assert not {e["_id"] for e in more["page"]} & {e["_id"] for e in got["page"]}


def _artifacts_history_page(c: Case) -> None:
    got = c.ok()  # the free artifact has its first version only
    assert got["isDone"] is True and [(v["version"], v["source"]) for v in got["page"]] == [(1, "human")]


def _pipeline(c: Case, key: str) -> dict[str, Any]:
    return dict(c.read("pipelines:get", {"pipelineId": c.w[key]})["pipeline"])


def _pipelines_start(c: Case) -> None:
    got = c.ok()  # the free artifact: a new pipeline, its first stage queued for @ada
    pipe = c.read("pipelines:get", {"pipelineId": got["pipelineId"]})
    assert pipe["pipeline"]["startedByHandle"] == c.handle and [s["name"] for s in pipe["pipeline"]["stages"]] == [
        "draft", "polish"]
    assert pipe["runs"][0]["_id"] == got["stageRunId"] and c.artifact()["lock"]["pipeline"]["pipelineId"] == got["pipelineId"]


def _pipelines_submit(c: Case) -> None:
    if c.caller == "owner":  # the owner works on the human stage under its lock token 1
        assert c.ok() == {"status": "awaitingReview"}
        assert _pipeline(c, "pipeHuman")["status"] == "awaitingReview"
    else:
        c.refused("NOT_HOLDER")


def _pipelines_approve(c: Case) -> None:
    assert c.ok() == {"status": "done", "version": 2}
    assert _pipeline(c, "pipeReview")["status"] == "done" and c.artifact("reviewed")["content"] == "drafted"


def _pipelines_reject(c: Case) -> None:
    assert c.ok() == {"attempt": 2, "status": "running"}
    runs = c.read("pipelines:get", {"pipelineId": c.w["pipeReview"]})["runs"]
    # the reason is on the rejected attempt; the next one is under way
    assert [(r["attempt"], r["status"], r.get("reason")) for r in runs] == [(1, "rejected", "too long"),
                                                                         (2, "working", None)]


def _pipelines_cancel(c: Case) -> None:
    if c.caller == "owner":
        assert c.ok() == {"status": "cancelled"} and _pipeline(c, "pipeReview")["status"] == "cancelled"
    else:  # an editor who did not start it
        c.refused("FORBIDDEN")


def _pipelines_retry(c: Case) -> None:
    if c.caller == "owner":
        assert c.ok() == {"attempt": 2, "status": "running"} and _pipeline(c, "pipeFailed")["status"] == "running"
    else:
        c.refused("FORBIDDEN")


def _pipelines_get(c: Case) -> None:
    got = c.ok()
    assert got["pipeline"]["_id"] == c.w["pipeReview"] and got["pipeline"]["status"] == "awaitingReview"
    assert [(r["_id"], r["attempt"]) for r in got["runs"]] == [(c.w["pipeReviewRun"], 1)]


def _pipelines_for_artifact(c: Case) -> None:
    got = c.ok()
    assert [(p["_id"], p["status"]) for p in got] == [(c.w["pipeReview"], "awaitingReview")]
    assert got[0]["currentRun"]["_id"] == c.w["pipeReviewRun"]


def _notifications_list(c: Case) -> None:
    got = c.ok()
    # newest first. The owner: the three members who joined, the setup's force release, then the
    # pipelines (a human stage's turn, a review, a failure); the editor, a human of the space:
    # the turn and the review; the viewer nothing
    want = {"owner": ["pipelineFailed", "reviewNeeded", "stageTurn", "lockLost", *["memberJoined"] * 3],
            "editor": ["reviewNeeded", "stageTurn"]}
    assert [n["kind"] for n in got] == want.get(c.caller, [])


def _notifications_mark_read(c: Case) -> None:
    assert c.ok() == {"owner": 7, "editor": 2}.get(c.caller, 0)
    assert c.read("notifications:list", {"unreadOnly": True}, c.caller) == []


EXPECT: dict[str, Callable[[Case], None]] = {
    "actors:me": _actors_me,
    "actors:ensure": _actors_ensure,
    "spaces:create": _spaces_create,
    "spaces:open": _spaces_open,
    "spaces:list": _spaces_list,
    "spaces:get": _spaces_get,
    "spaces:members": _spaces_members,
    "spaces:invite": _spaces_invite,
    "spaces:join": _spaces_join,
    "spaces:invites": _spaces_invites,
    "spaces:revokeInvite": _spaces_revoke_invite,
    "spaces:setBudget": _spaces_set_budget,
    "usage:summary": _usage_summary,
    "locks:waiting": _locks_waiting,
    "runs:active": _runs_active,
    "spaces:addMember": _spaces_add_member,
    "spaces:setRole": _spaces_set_role,
    "spaces:removeMember": _spaces_remove_member,
    "artifacts:create": _artifacts_create,
    "artifacts:get": _artifacts_get,
    "artifacts:list": _artifacts_list,
    "artifacts:history": _artifacts_history,
    "artifacts:version": _artifacts_version,
    "artifacts:save": _artifacts_save,
    "artifacts:restore": _artifacts_restore,
    "artifacts:update": _artifacts_update,
    "artifacts:delete": _artifacts_delete,
    "locks:acquire": _locks_acquire,
    "locks:renew": _locks_renew,
    "locks:release": _locks_release,
    "locks:forceRelease": _locks_force_release,
    "locks:leave": _locks_leave,
    "locks:queue": _locks_queue,
    "locks:list": _locks_list,
    "drafts:append": _drafts_append,
    "drafts:get": _drafts_get,
    "drafts:list": _drafts_list,
    "drafts:discard": _drafts_discard,
    "messages:post": _messages_post,
    "messages:openReply": _messages_open_reply,
    "messages:append": _messages_append,
    "messages:finish": _messages_finish,
    "messages:list": _messages_list,
    "messages:page": _messages_page,
    "messages:markDecision": _messages_mark_decision,
    "messages:markQuestion": _messages_mark_question,
    "messages:outline": _messages_outline,
    "presence:heartbeat": _presence_heartbeat,
    "presence:leave": _presence_leave,
    "presence:list": _presence_list,
    "runs:enqueue": _runs_enqueue,
    "runs:claim": _runs_claim,
    "runs:heartbeat": _runs_not_claimed,
    "runs:complete": _runs_not_claimed,
    "runs:fail": _runs_not_claimed,
    "runs:cancel": _runs_cancel,
    "runs:get": _runs_get,
    "runs:list": _runs_list,
    "runs:pending": _runs_pending,
    "runs:retry": _runs_retry,
    "runs:cancelAll": _runs_cancel_all,
    "streams:open": _streams_open,
    "streams:push": _streams_push,
    "streams:close": _streams_close,
    "streams:forSpace": _streams_for_space,
    "streams:forMessage": _streams_for_message,
    "streams:forArtifact": _streams_for_artifact,
    "proposals:open": _not_the_author,
    "proposals:append": _not_the_author,
    "proposals:finish": _not_the_author,
    "proposals:get": _proposals_get,
    "proposals:live": _proposals_live,
    "variations:start": _variations_start,
    "variations:more": _variations_more,
    "variations:cancel": _variations_cancel,
    "variations:star": _variations_star,
    "variations:unstar": _variations_unstar,
    "variations:pick": _variations_pick,
    "variations:compose": _variations_compose,
    "variations:forArtifact": _variations_for_artifact,
    "variations:round": _variations_round,
    "audit:list": _audit_list,
    "audit:page": _audit_page,
    "artifacts:historyPage": _artifacts_history_page,
    "runs:page": _runs_page,
    "pipelines:start": _pipelines_start,
    "pipelines:submit": _pipelines_submit,
    "pipelines:approve": _pipelines_approve,
    "pipelines:reject": _pipelines_reject,
    "pipelines:cancel": _pipelines_cancel,
    "pipelines:retry": _pipelines_retry,
    "pipelines:get": _pipelines_get,
    "pipelines:forArtifact": _pipelines_for_artifact,
    "notifications:list": _notifications_list,
    "notifications:markRead": _notifications_mark_read,
}


def test_every_public_function_has_a_policy() -> None:
    missing = [p for p, f in _public().items()
               if f.meta.get("policy") not in POLICIES or f.meta.get("guarded") is not True]
    assert not missing, f"public functions registered without the authorization wrapper: {missing}"


def test_matrix_covers_every_public_function() -> None:
    assert set(ARGS) == set(_public()), "add the new public function to ARGS (and docs/API.md)"
    assert set(EXPECT) == set(ARGS), "say what an admitted caller gets from every function (EXPECT)"


def _admitted(policy: str, caller: str) -> bool:
    if caller == "anonymous":
        return False
    if policy == "authenticated":
        return True
    role = ROLE_OF[caller]
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[policy]


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("path", sorted(ARGS))
def test_matrix(path: str, caller: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    w = _world(tmp_path_factory.getbasetemp())
    shutil.copy(w["path"], tmp_path / "db.sqlite")
    h = Harness(tmp_path / "db.sqlite")
    try:
        policy = model_app().functions[path].meta["policy"]
        before = h.storage.last_ts
        value: Any = None
        try:
            value = h.call(path, ARGS[path](w), CALLERS[caller])
            code = None
        except CallError as e:
            code = e.code
            value = e.data
            assert code is not None, f"{path} as {caller}: not an error-as-data: {e}"
        if _admitted(policy, caller):
            EXPECT[path](Case(path, caller, h, w, value, code))
        else:
            want = "UNAUTHENTICATED" if caller == "anonymous" else (
                "INSUFFICIENT_ROLE" if ROLE_OF[caller] else "NOT_A_MEMBER")
            assert code == want, f"{path} ({policy}) as {caller}: expected {want}, got {code}"
            assert h.storage.last_ts == before, "a refused call wrote something"
    finally:
        h.close()
