"""Pipelines (DESIGN 1.3): an artifact goes through stages in turn (drafter -> editor ->
polisher), each worked on by its actor (an agent or a human) and reviewed by its approver
before the next begins. docs/PIPELINE.md says who may do what and what is recorded.

- ``start``: the stages are given by the caller (a flow's, from the client's config: the
  backend never reads the config); the pipeline holds the artifact at once (``_pipeline``).
- ``submit``: the stage's actor hands its output in under its lock hold (fenced), which ends
  the hold; the stage awaits review (``auto`` approves at once; an agent approver's review run
  is queued; human approvers are told).
- ``approve`` / ``reject`` (a reason is required): only the stage's approver. Approval of a
  content output is the next version, recording pipeline, stage and approver; rejection sends
  the stage back for another attempt, up to ``maxAttempts``, after which the pipeline stops.
- ``cancel``: owners and whoever started it; the artifact is given back. ``retry``: a failed
  stage (or review) again, on the same input.

Each is one transaction that also queues the next agent run.
"""

from __future__ import annotations

from typing import Any

from collab.backend.database import UNDEFINED
from collab.backend.model import _errors as err
from collab.backend.model import _live
from collab.backend.model import _lockcore as lk
from collab.backend.model import _pipeline as pl
from collab.backend.model._auth import mutation, query
from collab.backend.model._util import audit, get_in, whole
from collab.backend.model._versions import check_content
from collab.backend.model.runs import finish_run
from collab.backend.validators import v

MAX_STAGES = 10
MAX_ATTEMPTS = 10
DEFAULT_ATTEMPTS = 3
MAX_TEXT = 4_000
ACTIVE_RUNS = ("queued", "claimed", "streaming")
STAGE_ARG = v.object({"name": v.string(), "actor": v.string(), "approver": v.optional(v.string()),
                      "instructions": v.optional(v.string()),
                      "output": v.optional(v.union(v.literal("content"), v.literal("notes")))})


# ---------------------------------------------------------------------------- checks


def _role(ctx: Any, space_id: str, spec: str, what: str, *, approver: bool) -> str:
    """``spec`` must name someone of this space who can take the role (an agent editor, a
    human editor, any human) or ``auto`` for an approver."""
    spec = spec.strip()
    if spec == pl.AUTO:
        if approver:
            return spec
        err.invalid(f'{what}: "auto" only approves; a stage needs an agent or a human to work on it')
    if spec == pl.HUMAN:
        if not any(m["kind"] == "human" for m in pl.editors(ctx, space_id)):
            err.invalid(f"{what}: no human editor in this space")
        return spec
    if not spec or spec.startswith("@"):
        also = ', or "auto"' if approver else ""
        err.invalid(f'{what} must be an agent handle, "human" or "human:<handle>"{also} (got {spec!r})')
    if not pl.members_for(ctx, space_id, spec):
        kind = "a human" if spec.startswith(pl.HUMAN + ":") else "an agent"
        err.invalid(f"{what}: {pl.describe(spec)} is not {kind} editor of this space")
    return spec


def _stages(ctx: Any, space_id: str, stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not 1 <= len(stages) <= MAX_STAGES:
        err.invalid(f"a pipeline has 1 to {MAX_STAGES} stages (got {len(stages)})")
    out: list[dict[str, Any]] = []
    for i, s in enumerate(stages):
        name = s["name"].strip()
        if not 1 <= len(name) <= 40:
            err.invalid(f"stages[{i}].name must be 1-40 characters", stage=i)
        if any(o["name"] == name for o in out):
            err.invalid(f"two stages are called {name!r}: stage names are unique", stage=i)
        instructions = (s.get("instructions") or "").strip()
        if len(instructions) > MAX_TEXT:
            err.invalid(f"stages[{i}].instructions is longer than {MAX_TEXT} characters", stage=i)
        out.append({"name": name, "actor": _role(ctx, space_id, s["actor"], f"stages[{i}].actor", approver=False),
                    "approver": _role(ctx, space_id, s.get("approver") or pl.HUMAN, f"stages[{i}].approver",
                                      approver=True),
                    "instructions": instructions, "output": s.get("output") or "content"})
    return out


def _stage_run(ctx: Any, p: dict[str, Any], stage_run_id: str, status: str) -> dict[str, Any]:
    """The pipeline's current attempt, in ``status``; a decided or superseded one is
    STAGE_OVER (someone else was faster, or it moved on)."""
    sr = get_in(ctx, "stageRuns", stage_run_id)
    if sr is None or sr["pipelineId"] != p["_id"]:
        err.fail("NOT_FOUND", "that stage attempt is not in this pipeline", what="stageRun", id=stage_run_id)
    current = pl.current_run(ctx, p)
    if current is None or current["_id"] != sr["_id"] or sr["status"] != status or \
            p["status"] not in (("running",) if status == "working" else ("awaitingReview",)):
        who = (sr.get("reviewer") or {}).get("handle")
        state = f"{sr['status']}" + (f" by @{who}" if who and who != pl.AUTO else "")
        err.fail("STAGE_OVER", f"stage {sr['stageName']} attempt {sr['attempt']:g} is {state}; the pipeline is "
                               f"{p['status']}", status=sr["status"], pipelineStatus=p["status"])
    return sr


def _reviewer(ctx: Any, p: dict[str, Any], sr: dict[str, Any]) -> dict[str, Any]:
    spec = p["stages"][int(sr["stage"])]["approver"]
    caller = ctx.caller
    if not pl.matches(spec, caller.kind, caller.handle):
        err.fail("FORBIDDEN", f"only {pl.describe(spec)} reviews stage {sr['stageName']}", required=spec,
                 role=caller.role)
    return {"actorId": caller.actor_id, "handle": caller.handle, "kind": caller.kind}


def _owner_or_starter(ctx: Any, p: dict[str, Any], what: str) -> None:
    if p["startedBy"] != ctx.caller.actor_id and not ctx.caller.is_at_least("owner"):
        err.fail("FORBIDDEN", f"only an owner or @{p['startedByHandle']}, who started it, can {what} this pipeline",
                 required="owner", role=ctx.caller.role)


def _reason(text: str | None, *, required: bool) -> str | None:
    text = (text or "").strip()
    if required and not text:
        err.invalid("say why: a rejection needs a reason (the stage's actor gets it)")
    if len(text) > MAX_TEXT:
        err.invalid(f"the reason is longer than {MAX_TEXT} characters")
    return text or None


# ---------------------------------------------------------------------------- transitions


@mutation(args={"artifactId": v.id("artifacts"), "stages": v.array(STAGE_ARG), "flow": v.optional(v.string()),
                "title": v.optional(v.string()), "instructions": v.optional(v.string()),
                "maxAttempts": v.optional(v.number())},
          policy="editor", scope="artifact")
def start(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Send the artifact through ``stages`` (``{name, actor, approver?: "human", instructions?,
    output?: "content" | "notes"}``): the pipeline holds the artifact from now on and the first
    stage is at work (its agent's run queued, or its humans told). ``flow`` names the flow the
    stages came from; ``maxAttempts`` (default 3, 1-10) bounds each stage's attempts. LOCKED if
    someone holds the lock or another pipeline holds the artifact. Returns ``{pipelineId,
    stageRunId}``."""
    artifact, caller = ctx.caller.target, ctx.caller
    stages = _stages(ctx, artifact["spaceId"], args["stages"])
    attempts = args.get("maxAttempts", DEFAULT_ATTEMPTS)
    if not whole(attempts) or not 1 <= attempts <= MAX_ATTEMPTS:
        err.invalid(f"maxAttempts must be a whole number from 1 to {MAX_ATTEMPTS}", maxAttempts=attempts)
    title = (args.get("title") or args.get("flow") or "Pipeline").strip()
    if not 1 <= len(title) <= 60:
        err.invalid("the title must be 1-60 characters")
    instructions = (args.get("instructions") or "").strip()
    if len(instructions) > MAX_TEXT:
        err.invalid(f"instructions are longer than {MAX_TEXT} characters")
    lock = lk.expire_if_due(ctx, lk.lock_of(ctx, artifact["_id"]))
    if lock.get("pipelineId"):
        pl.refuse(ctx, lock, ctx.db.get(lock["pipelineId"]))
    holder = lk.holder_info(lock)
    if holder is not None:
        err.fail("LOCKED", f"@{holder['handle']} ({holder['kind']}) holds the lock on #{artifact['slug']}: start "
                           "the pipeline when it is free", holder=holder, queueLength=len(lk.waiters(ctx, artifact["_id"])))
    now = ctx.now()
    row: dict[str, Any] = {"spaceId": artifact["spaceId"], "artifactId": artifact["_id"], "title": title,
                           "stages": stages, "current": 0, "status": "running", "maxAttempts": attempts,
                           "baseVersion": artifact["version"], "startedBy": caller.actor_id,
                           "startedByHandle": caller.handle, "startedAt": now, "updatedAt": now}
    if args.get("flow"):
        row["flow"] = args["flow"].strip()
    if instructions:
        row["instructions"] = instructions
    pid = ctx.db.insert("pipelines", row)
    ctx.db.patch(lock["_id"], {"pipelineId": pid})
    audit(ctx, artifact["spaceId"], "pipeline.started", {"pipelineId": pid, "title": title, "flow": row.get("flow"),
                                                         "stages": [s["name"] for s in stages]},
          artifact_id=artifact["_id"], actor_id=caller.actor_id)
    sr_id = pl.open_stage(ctx, ctx.db.get(pid), 0, 1, artifact["version"])
    return {"pipelineId": str(pid), "stageRunId": sr_id}


@mutation(args={"pipelineId": v.id("pipelines"), "stageRunId": v.id("stageRuns"), "token": v.number(),
                "content": v.optional(v.string())},
          policy="editor", scope="pipeline")
def submit(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The stage's actor hands its output in, under its hold (``token``): ``content`` (a human's
    text; an agent's streamed output by default), which ends the hold (reason ``submitted``),
    and the stage awaits review (or is approved at once by ``auto``). Returns ``{status}`` of
    the pipeline afterwards."""
    p, caller = ctx.caller.target, ctx.caller
    sr = _stage_run(ctx, p, args["stageRunId"], "working")
    lock = lk.check_fence(ctx, caller.actor_id, p["artifactId"], args["token"])
    if sr.get("epoch") != args["token"]:
        err.fail("STAGE_OVER", "this hold is not the stage's: take the lock for the stage first")
    prop = ctx.db.get(sr["proposalId"]) if sr.get("proposalId") else None
    content = args["content"] if "content" in args else (prop or {}).get("content", "")
    if not content.strip():
        err.invalid("the stage output is empty: there is nothing to review")
    check_content(content)
    now = ctx.now()
    if prop is not None:
        ctx.db.patch(prop["_id"], {"content": content, "status": "done", "updatedAt": now})
        _live.end_proposal(ctx, prop["_id"])
        prop_id = prop["_id"]
    else:
        spec = p["stages"][int(sr["stage"])]
        prop_id = ctx.db.insert("proposals", {
            "spaceId": p["spaceId"], "artifactId": p["artifactId"], "authorId": caller.actor_id,
            "authorKind": caller.kind, "authorHandle": caller.handle, "baseVersion": sr["inputVersion"],
            "content": content, "status": "done", "updatedAt": now,
            "provenance": {"kind": "stage", "pipelineId": p["_id"], "stageRunId": sr["_id"], "stage": sr["stage"],
                           "stageName": spec["name"], "attempt": sr["attempt"]}})
    lk.end_hold(ctx, lock, "submitted", by=caller.actor)
    ctx.db.patch(sr["_id"], {"status": "awaitingReview", "submittedAt": now, "proposalId": prop_id})
    ctx.db.patch(p["_id"], {"status": "awaitingReview", "updatedAt": now})
    audit(ctx, p["spaceId"], "pipeline.submitted", {"pipelineId": p["_id"], "stage": sr["stageName"],
                                                    "attempt": sr["attempt"], "length": len(content)},
          artifact_id=p["artifactId"], actor_id=caller.actor_id)
    pl.request_review(ctx, ctx.db.get(p["_id"]), ctx.db.get(sr["_id"]))
    return {"status": ctx.db.get(p["_id"])["status"]}


@mutation(args={"pipelineId": v.id("pipelines"), "stageRunId": v.id("stageRuns"), "reason": v.optional(v.string())},
          policy="editor", scope="pipeline")
def approve(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The stage's approver approves the output awaiting review: a content output becomes the
    next version (author: the stage's actor; provenance: pipeline, stage, approver), then the
    next stage starts or the pipeline is done. Returns ``{status, version?}``."""
    p = ctx.caller.target
    sr = _stage_run(ctx, p, args["stageRunId"], "awaitingReview")
    pl.approve(ctx, p, sr, _reviewer(ctx, p, sr), _reason(args.get("reason"), required=False))
    return {"status": ctx.db.get(p["_id"])["status"], "version": ctx.db.get(sr["_id"]).get("outputVersion")}


@mutation(args={"pipelineId": v.id("pipelines"), "stageRunId": v.id("stageRuns"), "reason": v.string()},
          policy="editor", scope="pipeline")
def reject(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The stage's approver sends the output back with a ``reason`` (required): another attempt
    of the stage on the same input, its actor told why; after ``maxAttempts`` the pipeline
    stops (failed) and says so. Returns ``{status, attempt}`` (the new attempt, if any)."""
    p = ctx.caller.target
    reason = _reason(args["reason"], required=True)
    sr = _stage_run(ctx, p, args["stageRunId"], "awaitingReview")
    pl.reject(ctx, p, sr, _reviewer(ctx, p, sr), str(reason))
    p = ctx.db.get(p["_id"])
    current = pl.current_run(ctx, p)
    return {"status": p["status"], "attempt": current["attempt"] if current else None}


@mutation(args={"pipelineId": v.id("pipelines"), "reason": v.optional(v.string())}, policy="editor", scope="pipeline")
def cancel(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Owners, or whoever started it: stop the pipeline and give the artifact back. The stage at
    work stops (its agent's run is cancelled, its output kept; a stage actor's lock hold is
    ended). Returns ``{status: "cancelled"}``."""
    p, caller = ctx.caller.target, ctx.caller
    _owner_or_starter(ctx, p, "cancel")
    if p["status"] not in pl.HOLDING:
        err.fail("PIPELINE_OVER", f"this pipeline is already {p['status']}", status=p["status"])
    reason = _reason(args.get("reason"), required=False) or f"cancelled by @{caller.handle}"
    ctx.db.patch(p["_id"], {"status": "cancelled"})  # first: the runs ending below find it over
    sr = pl.current_run(ctx, p)
    if sr is not None:
        if sr["status"] in ("working", "awaitingReview"):
            ctx.db.patch(sr["_id"], {"status": "cancelled", "error": reason})
        for key in ("runId", "reviewRunId"):
            run = ctx.db.get(sr[key]) if sr.get(key) else None
            if run is not None and run["status"] in ACTIVE_RUNS:
                finish_run(ctx, run, "cancelled", {"error": reason})
    lock = lk.lock_of(ctx, p["artifactId"])
    if lock.get("holderId") is not None and lock.get("pipelineId") == p["_id"]:
        lk.end_hold(ctx, lock, "forceReleased", by=caller.actor, force_reason=reason)
    pl.finish(ctx, p, "cancelled", reason, caller.handle)
    return {"status": "cancelled"}


@mutation(args={"pipelineId": v.id("pipelines")}, policy="editor", scope="pipeline")
def retry(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Owners, or whoever started it: a failed pipeline goes on where it stopped. A failed (or
    finally rejected) stage gets another attempt on the same input, with what was written and
    said before in its context; a failed review is asked again. Returns ``{status, attempt}``."""
    p = ctx.caller.target
    _owner_or_starter(ctx, p, "retry")
    if p["status"] != "failed":
        err.fail("NOT_FAILED", f"only a failed pipeline is retried; this one is {p['status']}", status=p["status"])
    sr = pl.current_run(ctx, p)
    if sr is None:
        err.fail("NOT_FAILED", "this pipeline has no stage to retry")
    audit(ctx, p["spaceId"], "pipeline.retried", {"pipelineId": p["_id"], "stage": sr["stageName"],
                                                  "reason": p.get("reason")},
          artifact_id=p["artifactId"], actor_id=ctx.caller.actor_id)
    if sr["status"] == "awaitingReview":
        ctx.db.patch(p["_id"], {"status": "awaitingReview", "reason": UNDEFINED, "updatedAt": ctx.now()})
        pl.request_review(ctx, ctx.db.get(p["_id"]), sr)
        return {"status": ctx.db.get(p["_id"])["status"], "attempt": sr["attempt"]}
    ctx.db.patch(p["_id"], {"status": "running", "reason": UNDEFINED, "updatedAt": ctx.now()})
    pl.open_stage(ctx, ctx.db.get(p["_id"]), int(sr["stage"]), int(sr["attempt"]) + 1, sr["inputVersion"],
                  previous=sr)
    p = ctx.db.get(p["_id"])
    return {"status": p["status"], "attempt": pl.current_run(ctx, p)["attempt"]}


# ---------------------------------------------------------------------------- queries


def _run_view(ctx: Any, sr: dict[str, Any], *, content: bool) -> dict[str, Any]:
    out = {k: val for k, val in sr.items() if k not in ("spaceId", "artifactId")}
    prop = ctx.db.get(sr["proposalId"]) if sr.get("proposalId") else None
    out["outputStatus"] = prop["status"] if prop else None
    out["outputLength"] = len(prop["content"]) if prop else 0
    if content:
        out["output"] = prop["content"] if prop else ""
        if prop and prop.get("error"):
            out["outputError"] = prop["error"]
    return out


@query(args={"pipelineId": v.id("pipelines")}, policy="viewer", scope="pipeline")
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The pipeline with every attempt of every stage in order: ``{pipeline, runs: [{_id,
    stage, stageName, attempt, actor, actorHandle, actorKind, status, inputVersion, output,
    outputStatus, reviewer, reason, error, outputVersion, ...}]}`` (output at the persistence
    cadence: add the live tail of ``proposals:live``)."""
    p = ctx.caller.target
    return {"pipeline": p, "runs": [_run_view(ctx, sr, content=True) for sr in pl.stage_runs(ctx, p["_id"])]}


@query(args={"artifactId": v.id("artifacts"), "limit": v.optional(v.number())}, policy="viewer", scope="artifact")
def forArtifact(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The artifact's pipelines, newest first (at most ``limit``, default 20), each with its
    current attempt (``currentRun``, no content) and whether it holds the artifact."""
    limit = args.get("limit", 20)
    if limit != limit:  # NaN: a float64 argument, and no number of rows
        err.invalid("limit must be a number", field="limit")
    limit = int(min(max(limit, 1), 100))
    rows = ctx.db.query("pipelines").with_index(
        "by_artifact", lambda q: q.eq("artifactId", args["artifactId"])).order("desc").take(limit)
    out = []
    for p in rows:
        sr = pl.current_run(ctx, p)
        out.append({**p, "holding": p["status"] in pl.HOLDING,
                    "currentRun": _run_view(ctx, sr, content=False) if sr else None})
    return out
