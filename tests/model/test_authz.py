"""Authorization: every public function has a policy, and the matrix of every public function x
{no token, non-member, viewer, editor, agent of another space, owner} gives the expected answer.

A caller the policy admits must get past authorization (success, or a domain error such as
NOT_HOLDER); a caller it refuses gets UNAUTHENTICATED / NOT_A_MEMBER / INSUFFICIENT_ROLE and
nothing is written.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from collab.backend.engine import ANONYMOUS, Identity
from collab.backend.model._auth import POLICIES, ROLE_RANK

from tests.model._harness import CallError, Harness, ident, model_app

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
    "artifacts:version": lambda w: {"artifactId": w["artifact"], "version": 1},
    "artifacts:save": lambda w: {"artifactId": w["locked"], "token": 2, "content": "new"},
    "artifacts:restore": lambda w: {"artifactId": w["locked"], "token": 2, "version": 1},
    "artifacts:update": lambda w: {"artifactId": w["artifact"], "title": "Renamed"},
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
    "notifications:list": lambda w: {},
    "notifications:markRead": lambda w: {},
}

_WORLD: dict[str, Any] = {}


def _public() -> dict[str, Any]:
    return {p: f for p, f in model_app().functions.items() if f.visibility == "public"}


def _world(tmp_root: Path) -> dict[str, Any]:
    """A space with an owner, a viewer, an editor and an editor agent; another space owned by
    an agent; a locked artifact with an orphaned draft, a message, a streaming message, a run."""
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
    orphan = h.rows("drafts")[0]["_id"]
    message = h.call("messages:post", {"spaceId": space, "body": "hello"}, owner)
    streaming = h.call("messages:post", {"spaceId": space, "body": "", "streaming": True}, owner)
    actors = {k: h.call("actors:me", {}, who)["_id"] for k, who in CALLERS.items() if k != "anonymous"}
    actors["agent"] = h.call("actors:me", {}, AGENT)["_id"]
    run = h.call("runs:enqueue", {"spaceId": space, "agentId": actors["agent"], "kind": "discussion"}, owner)
    stream = h.call("streams:open", {"spaceId": space, "kind": "message", "messageId": streaming,
                                     "key": "s" * 16}, owner)
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


def test_every_public_function_has_a_policy() -> None:
    missing = [p for p, f in _public().items()
               if f.meta.get("policy") not in POLICIES or f.meta.get("guarded") is not True]
    assert not missing, f"public functions registered without the authorization wrapper: {missing}"


def test_matrix_covers_every_public_function() -> None:
    assert set(ARGS) == set(_public()), "add the new public function to ARGS (and docs/API.md)"


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
        try:
            h.call(path, ARGS[path](w), CALLERS[caller])
            code = None
        except CallError as e:
            code = e.code
            assert code is not None, f"{path} as {caller}: not an error-as-data: {e}"
        if _admitted(policy, caller):
            assert code not in AUTH_CODES, f"{path} ({policy}) refused {caller}: {code}"
            assert code != "INVALID_ARGUMENT", f"{path}: the matrix passes bad arguments"
        else:
            want = "UNAUTHENTICATED" if caller == "anonymous" else (
                "INSUFFICIENT_ROLE" if ROLE_OF[caller] else "NOT_A_MEMBER")
            assert code == want, f"{path} ({policy}) as {caller}: expected {want}, got {code}"
            assert h.storage.last_ts == before, "a refused call wrote something"
    finally:
        h.close()


def test_owner_can_do_everything_it_is_offered(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """Sanity of the matrix: the owner's calls mostly succeed (not only 'not refused')."""
    w = _world(tmp_path_factory.getbasetemp())
    ok = 0
    for path in sorted(ARGS):
        shutil.copy(w["path"], tmp_path / "db.sqlite")
        h = Harness(tmp_path / "db.sqlite")
        try:
            h.call(path, ARGS[path](w), CALLERS["owner"])
            ok += 1
        except CallError as e:
            # the owner is not the run's agent and is already a member: expected domain answers
            assert e.code in ("RUN_LOST", "NOT_HOLDER", "RUN_ACTIVE", "NOT_AUTHOR"), (path, e.data)
        finally:
            h.close()
    # heartbeat, complete, fail (not its run), retry (still queued); the agent's proposal
    # (open, append, finish) is not the owner's to write
    assert ok >= len(ARGS) - 7
