"""The pipeline's core (DESIGN 1.3, docs/PIPELINE.md): who may work on or review a stage, the
pipeline's hold on the artifact, and the transitions shared by ``pipelines:*``,
``locks:acquire``, ``proposals:*`` and the end of an agent's run (``runs.finish_run``).

**The hold.** From ``pipelines:start`` until the pipeline is done or cancelled, the artifact's
lock row names the pipeline (``locks.pipelineId``). Meanwhile ``locks:acquire`` grants the lock
only to the current stage's actor while its stage is at work (fenced and leased like any
hold; nobody queues behind a pipeline), and every other acquire answers ``LOCKED`` naming the
pipeline and the stage. A stage's actor hands its output in with ``pipelines:submit`` (which
ends its hold: reason ``submitted``) rather than saving; the only new versions while the
pipeline holds the artifact are approved content outputs (``commit_version`` in pipeline
mode). So no write from outside the pipeline lands between a stage's output and its review,
nor between two stages. A failed pipeline keeps the hold (``pipelines:retry`` resumes on the
same input); cancelling (owners, or whoever started it) gives the artifact back.

Each transition is one transaction that also queues the next agent run (``stage`` for an
agent actor, ``review`` for an agent approver) or notifies the humans concerned.
"""

from __future__ import annotations

from typing import Any, NoReturn

from collab.backend.database import UNDEFINED
from collab.backend.model import _lockcore as lk
from collab.backend.model._errors import fail
from collab.backend.model._util import audit, get_in, notify
from collab.wire.roles import AUTO, HUMAN, describe, matches
from collab.wire.roles import is_agent_role as is_agent_spec


HOLDING = ("running", "awaitingReview", "failed")  # the pipeline holds the artifact
AGENT_RUN_KINDS = ("stage", "review")


# ---------------------------------------------------------------------------- who
# (the role rule is the wire's, so the app offers the keys to exactly who may use them)


def editors(ctx: Any, space_id: str) -> list[dict[str, Any]]:
    return [m for m in ctx.db.query("members").with_index("by_space", lambda q: q.eq("spaceId", space_id)).collect()
            if m["role"] != "viewer"]


def members_for(ctx: Any, space_id: str, spec: str) -> list[dict[str, Any]]:
    """The space's editors who fill the role ``spec``."""
    return [m for m in editors(ctx, space_id) if matches(spec, m["kind"], m["handle"])]


# ---------------------------------------------------------------------------- reads


def stage_runs(ctx: Any, pipeline_id: str) -> list[dict[str, Any]]:
    """Every attempt of every stage, in order (stage, then attempt)."""
    return ctx.db.query("stageRuns").with_index("by_pipeline", lambda q: q.eq("pipelineId", pipeline_id)).collect()


def current_run(ctx: Any, p: dict[str, Any]) -> dict[str, Any] | None:
    """The latest attempt of the pipeline's current stage."""
    return ctx.db.query("stageRuns").with_index(
        "by_pipeline", lambda q: q.eq("pipelineId", p["_id"]).eq("stage", p["current"])).order("desc").first()


def summary(ctx: Any, p: dict[str, Any], sr: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a lock badge, a refusal or a list shows of a pipeline (no content)."""
    sr = sr if sr is not None else current_run(ctx, p)
    stage = p["stages"][int(p["current"])]
    out: dict[str, Any] = {"pipelineId": p["_id"], "title": p["title"], "status": p["status"],
                           "stage": p["current"], "stageName": stage["name"], "stages": len(p["stages"]),
                           "actor": stage["actor"], "approver": stage["approver"],
                           "startedByHandle": p["startedByHandle"]}
    for key in ("flow", "reason"):
        if p.get(key):
            out[key] = p[key]
    if sr is not None:
        out.update(stageStatus=sr["status"], attempt=sr["attempt"], stageRunId=sr["_id"])
        if sr.get("actorHandle"):
            out["actorHandle"] = sr["actorHandle"]
    return out


def _doing(p: dict[str, Any], sr: dict[str, Any] | None) -> str:
    stage = p["stages"][int(p["current"])]
    who = f"@{sr['actorHandle']}" if sr and sr.get("actorHandle") else describe(stage["actor"])
    if p["status"] == "awaitingReview":
        return f"stage {stage['name']} by {who} awaits review by {describe(stage['approver'])}"
    if p["status"] == "failed":
        return f"it stopped at stage {stage['name']} ({p.get('reason') or 'failed'})"
    return f"stage {stage['name']} is {who}'s turn"


def refuse(ctx: Any, lock: dict[str, Any], p: dict[str, Any], sr: dict[str, Any] | None = None,
           code: str = "LOCKED") -> NoReturn:
    """The answer to anyone outside the pipeline who wants to write the artifact."""
    sr = sr if sr is not None else current_run(ctx, p)
    fail(code, f"The {p['title']} pipeline holds this artifact: {_doing(p, sr)}. An owner or "
               f"@{p['startedByHandle']}, who started it, can cancel it.",
         holder=lk.holder_info(lock), queueLength=0, pipeline=summary(ctx, p, sr))


# ---------------------------------------------------------------------------- the lock


def gate(ctx: Any, lock: dict[str, Any], caller: Any) -> dict[str, Any]:
    """``locks:acquire`` on an artifact a pipeline holds: the current stage run if the caller
    is its actor and the stage is at work (and nobody else holds the lock); otherwise LOCKED
    naming the pipeline. Nobody queues behind a pipeline."""
    p = ctx.db.get(lock["pipelineId"])
    sr = current_run(ctx, p)
    if (p["status"] == "running" and sr is not None and sr["status"] == "working"
            and matches(sr["actor"], caller.kind, caller.handle)
            and lock.get("holderId") in (None, caller.actor_id)):
        return sr
    refuse(ctx, lock, p, sr)


def granted(ctx: Any, sr: dict[str, Any], caller: Any, epoch: float) -> None:
    """The stage's actor took the lock: the stage run records who and under which hold."""
    ctx.db.patch(sr["_id"], {"epoch": epoch, "actorId": caller.actor_id, "actorHandle": caller.handle,
                             "actorKind": caller.kind})


def fence_stage(ctx: Any, prop: dict[str, Any], token: float | None) -> dict[str, Any] | None:
    """A write into a stage's output (a proposal of kind "stage") is fenced like a draft
    delta: the caller's live hold, whose token is the stage run's. None for other proposals."""
    prov = prop.get("provenance") or {}
    if prov.get("kind") != "stage":
        return None
    if token is None:
        fail("INVALID_ARGUMENT", "a stage's output is written under the artifact's lock: pass its token")
    lk.check_fence(ctx, ctx.caller.actor_id, prop["artifactId"], token)
    sr = ctx.db.get(prov["stageRunId"])
    if sr is None or sr["status"] != "working" or sr.get("epoch") != token:
        fail("STAGE_OVER", "this stage attempt is no longer at work", status=sr["status"] if sr else None)
    return sr


def release_artifact(ctx: Any, p: dict[str, Any]) -> None:
    """The pipeline is over: the artifact's lock row forgets it (and a queue could move on)."""
    lock = lk.lock_of(ctx, p["artifactId"])
    if lock.get("pipelineId") != p["_id"]:
        return
    ctx.db.patch(lock["_id"], {"pipelineId": UNDEFINED})
    lock = ctx.db.get(lock["_id"])
    if lock.get("holderId") is None:
        lk.grant_next(ctx, lock)


# ---------------------------------------------------------------------------- stage runs


def _slug(ctx: Any, p: dict[str, Any]) -> str:
    art = ctx.db.get(p["artifactId"])
    return f"#{art['slug']}" if art else "the artifact"


def open_stage(ctx: Any, p: dict[str, Any], stage: int, attempt: int, input_version: float,
               previous: dict[str, Any] | None = None) -> str:
    """A new attempt of stage ``stage`` on ``input_version``, at work at once: an agent actor's
    run is queued (and its output proposal created); human actors are told it is their turn
    (after a rejection, the human who made the previous attempt is told why)."""
    from collab.backend.model.runs import insert_run  # (runs imports this module lazily)

    spec = p["stages"][stage]
    now = ctx.now()
    sr_id = ctx.db.insert("stageRuns", {"spaceId": p["spaceId"], "artifactId": p["artifactId"],
                                        "pipelineId": p["_id"], "stage": stage, "stageName": spec["name"],
                                        "attempt": attempt, "actor": spec["actor"], "inputVersion": input_version,
                                        "status": "working", "startedAt": now})
    where = f"stage {spec['name']} of the {p['title']} pipeline on {_slug(ctx, p)}"
    if is_agent_spec(spec["actor"]):
        agent = next(iter(members_for(ctx, p["spaceId"], spec["actor"])), None)
        if agent is None:
            ctx.db.patch(sr_id, {"status": "failed", "error": f"@{spec['actor']} is no longer an agent of this space"})
            fail_pipeline(ctx, ctx.db.get(p["_id"]), f"@{spec['actor']} is no longer an agent of this space")
            return str(sr_id)
        prop_id = ctx.db.insert("proposals", {
            "spaceId": p["spaceId"], "artifactId": p["artifactId"], "authorId": agent["actorId"],
            "authorKind": "agent", "authorHandle": agent["handle"], "baseVersion": input_version, "content": "",
            "status": "queued", "updatedAt": now,
            "provenance": {"kind": "stage", "pipelineId": p["_id"], "stageRunId": sr_id, "stage": stage,
                           "stageName": spec["name"], "attempt": attempt}})
        run_id = insert_run(ctx, p["spaceId"], agent["actorId"], "stage",
                            {"pipelineId": p["_id"], "stageRunId": sr_id}, artifact_id=p["artifactId"],
                            max_attempts=1)
        ctx.db.patch(prop_id, {"runId": run_id})
        ctx.db.patch(sr_id, {"proposalId": prop_id, "runId": run_id, "actorId": agent["actorId"],
                             "actorHandle": agent["handle"], "actorKind": "agent"})
    elif previous is not None and previous.get("actorId") and previous["status"] == "rejected":
        notify(ctx, previous["actorId"], p["spaceId"], "stageRejected",
               f"Your stage {spec['name']} was rejected: {previous.get('reason', '')}"[:300],
               artifactId=p["artifactId"], data={"pipelineId": p["_id"], "stageRunId": sr_id})
    else:
        for m in members_for(ctx, p["spaceId"], spec["actor"]):
            notify(ctx, m["actorId"], p["spaceId"], "stageTurn", f"Your turn: {where} (attempt {attempt})",
                   artifactId=p["artifactId"], data={"pipelineId": p["_id"], "stageRunId": sr_id})
    return str(sr_id)


def request_review(ctx: Any, p: dict[str, Any], sr: dict[str, Any]) -> None:
    """The output is in: ``auto`` approves at once, an agent approver's review run is queued,
    human approvers are told their review is needed."""
    from collab.backend.model.runs import insert_run

    spec = p["stages"][int(sr["stage"])]
    if spec["approver"] == AUTO:
        approve(ctx, p, sr, {"handle": AUTO, "kind": AUTO}, None)
        return
    if is_agent_spec(spec["approver"]):
        agent = next(iter(members_for(ctx, p["spaceId"], spec["approver"])), None)
        if agent is None:
            fail_pipeline(ctx, p, f"@{spec['approver']} is no longer an agent of this space")
            return
        run_id = insert_run(ctx, p["spaceId"], agent["actorId"], "review",
                            {"pipelineId": p["_id"], "stageRunId": sr["_id"]}, artifact_id=p["artifactId"],
                            max_attempts=1)
        ctx.db.patch(sr["_id"], {"reviewRunId": run_id})
        return
    for m in members_for(ctx, p["spaceId"], spec["approver"]):
        notify(ctx, m["actorId"], p["spaceId"], "reviewNeeded",
               f"Your review is needed: stage {spec['name']} by @{sr.get('actorHandle', '?')} of the "
               f"{p['title']} pipeline on {_slug(ctx, p)}", artifactId=p["artifactId"],
               data={"pipelineId": p["_id"], "stageRunId": sr["_id"]})


# ---------------------------------------------------------------------------- decisions


def approve(ctx: Any, p: dict[str, Any], sr: dict[str, Any], reviewer: dict[str, Any], reason: str | None) -> None:
    """Approved: a content output becomes the next version (the pipeline's fenced commit,
    recording pipeline, stage and approver), notes stay on record for the next stage; then the
    next stage starts, or the pipeline is done and gives the artifact back."""
    from collab.backend.model._versions import commit_version

    spec = p["stages"][int(sr["stage"])]
    fields: dict[str, Any] = {"status": "approved", "reviewer": reviewer, "decidedAt": ctx.now()}
    if reason:
        fields["reason"] = reason
    ctx.db.patch(sr["_id"], fields)
    if spec["output"] == "content":
        prop = ctx.db.get(sr["proposalId"])
        provenance = {"kind": "pipeline", "pipelineId": p["_id"], "title": p["title"], "flow": p.get("flow"),
                      "stage": sr["stage"], "stageName": spec["name"], "stageRunId": sr["_id"],
                      "attempt": sr["attempt"], "actor": sr.get("actorHandle"), "approver": reviewer["handle"],
                      "approverKind": reviewer["kind"], "inputVersion": sr["inputVersion"]}
        done = commit_version(ctx, ctx.db.get(p["artifactId"]),
                              {"message": f"{p['title']}: stage {spec['name']} by @{sr.get('actorHandle')}, "
                                          f"approved by {'auto' if reviewer['kind'] == AUTO else '@' + reviewer['handle']}"},
                              "pipelines:approve", prop["content"], sr.get("actorKind") or "agent",
                              provenance=provenance, pipeline=p, author_id=sr["actorId"], epoch=sr.get("epoch"))
        ctx.db.patch(sr["_id"], {"outputVersion": done["version"]})
    audit(ctx, p["spaceId"], "pipeline.approved", {"pipelineId": p["_id"], "stage": spec["name"],
                                                   "attempt": sr["attempt"], "by": reviewer["handle"]},
          artifact_id=p["artifactId"], actor_id=reviewer.get("actorId"))
    nxt = int(sr["stage"]) + 1
    if nxt < len(p["stages"]):
        ctx.db.patch(p["_id"], {"current": nxt, "status": "running", "updatedAt": ctx.now()})
        open_stage(ctx, ctx.db.get(p["_id"]), nxt, 1, ctx.db.get(p["artifactId"])["version"])
    else:
        finish(ctx, p, "done")


def reject(ctx: Any, p: dict[str, Any], sr: dict[str, Any], reviewer: dict[str, Any], reason: str) -> None:
    """Rejected with a reason: the stage goes back to its actor for another attempt on the
    same input (its previous output and every reason in its context), unless it used its
    attempts: then the pipeline stops and says so (it keeps the artifact: retry or cancel)."""
    spec = p["stages"][int(sr["stage"])]
    ctx.db.patch(sr["_id"], {"status": "rejected", "reviewer": reviewer, "reason": reason, "decidedAt": ctx.now()})
    audit(ctx, p["spaceId"], "pipeline.rejected", {"pipelineId": p["_id"], "stage": spec["name"],
                                                   "attempt": sr["attempt"], "by": reviewer["handle"],
                                                   "reason": reason},
          artifact_id=p["artifactId"], actor_id=reviewer.get("actorId"))
    if sr["attempt"] >= p["maxAttempts"]:
        fail_pipeline(ctx, p, f"stage {spec['name']} was rejected {sr['attempt']:g} times, the maximum "
                              f"(last reason: {reason})")
        if sr.get("actorId") and sr.get("actorKind") == "human":
            notify(ctx, sr["actorId"], p["spaceId"], "stageRejected",
                   f"Your stage {spec['name']} was rejected: {reason}"[:300], artifactId=p["artifactId"],
                   data={"pipelineId": p["_id"], "stageRunId": sr["_id"]})
        return
    ctx.db.patch(p["_id"], {"status": "running", "updatedAt": ctx.now()})
    open_stage(ctx, ctx.db.get(p["_id"]), int(sr["stage"]), int(sr["attempt"]) + 1, sr["inputVersion"],
               previous=ctx.db.get(sr["_id"]))


def fail_pipeline(ctx: Any, p: dict[str, Any], reason: str) -> None:
    """The pipeline stops where it is (it keeps the artifact: ``pipelines:retry`` resumes on
    the same input, ``pipelines:cancel`` gives it back); whoever started it is told why."""
    ctx.db.patch(p["_id"], {"status": "failed", "reason": reason[:1000], "updatedAt": ctx.now()})
    notify(ctx, p["startedBy"], p["spaceId"], "pipelineFailed",
           f"The {p['title']} pipeline on {_slug(ctx, p)} stopped: {reason}"[:300], artifactId=p["artifactId"],
           data={"pipelineId": p["_id"]})
    audit(ctx, p["spaceId"], "pipeline.failed", {"pipelineId": p["_id"], "reason": reason},
          artifact_id=p["artifactId"])


def finish(ctx: Any, p: dict[str, Any], status: str, reason: str | None = None, by: str | None = None) -> None:
    """Done or cancelled: the record is closed and the artifact is given back."""
    fields: dict[str, Any] = {"status": status, "finishedAt": ctx.now(), "updatedAt": ctx.now()}
    if reason:
        fields["reason"] = reason
    if by:
        fields["endedByHandle"] = by
    ctx.db.patch(p["_id"], fields)
    release_artifact(ctx, p)
    if status == "done":
        notify(ctx, p["startedBy"], p["spaceId"], "pipelineDone",
               f"The {p['title']} pipeline on {_slug(ctx, p)} is done.", artifactId=p["artifactId"],
               data={"pipelineId": p["_id"]})
    audit(ctx, p["spaceId"], f"pipeline.{status}", {"pipelineId": p["_id"], "reason": reason, "by": by},
          artifact_id=p["artifactId"])


def run_ended(ctx: Any, run: dict[str, Any], status: str, error: str | None) -> None:
    """A ``stage`` or ``review`` run ended (``runs.finish_run``). If its stage had not moved on
    (the agent died, failed, was cancelled, or finished without handing anything in), the stage
    fails with the reason and the pipeline stops, keeping the output written so far."""
    if run["kind"] not in AGENT_RUN_KINDS:
        return
    inp = run.get("input") or {}
    p = get_in(ctx, "pipelines", str(inp.get("pipelineId", "")))
    sr = get_in(ctx, "stageRuns", str(inp.get("stageRunId", "")))
    if p is None or sr is None or p["status"] not in ("running", "awaitingReview"):
        return
    agent = ctx.db.get(run["agentId"])
    who = f"@{agent['handle']}" if agent else "the agent"
    why = error or ("it finished without handing in its output" if run["kind"] == "stage"
                    else "it finished without a verdict")
    if run["kind"] == "stage" and sr.get("runId") == run["_id"] and sr["status"] == "working":
        ctx.db.patch(sr["_id"], {"status": "failed", "error": why})
        fail_pipeline(ctx, p, f"stage {sr['stageName']} failed: {why}")
    elif run["kind"] == "review" and sr.get("reviewRunId") == run["_id"] and sr["status"] == "awaitingReview":
        ctx.db.patch(sr["_id"], {"error": f"the review by {who} failed: {why}"})
        fail_pipeline(ctx, p, f"the review of stage {sr['stageName']} by {who} failed: {why}")
