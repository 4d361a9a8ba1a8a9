"""Runs: agent jobs. queued -> claimed (with a lease) -> streaming -> done / failed / cancelled.

A worker acting as the agent claims the oldest queued run assigned to it; the claim has a lease
(renewed by ``runs:heartbeat``) and an ``attempt`` number that fences the worker: once the lease
expires the sweeper requeues the run (or fails it after ``maxAttempts``), and writes carrying
the old attempt are rejected.
"""

from __future__ import annotations

from typing import Any

from collab.backend.database import UNDEFINED
from collab.backend.functions import internal_mutation
from collab.backend.model import _errors as err
from collab.backend.model import _live, _usage
from collab.backend.model._auth import membership, mutation, query
from collab.backend.model._limits import row_limit
from collab.backend.model._util import audit, get_in, notify
from collab.backend.model.schema import RUN_STATUS
from collab.backend.validators import v

DEFAULT_LEASE_MS = 60_000
ACTIVE = ("claimed", "streaming")
TERMINAL = ("done", "failed", "cancelled")


def _lease(args: dict[str, Any]) -> float:
    lease = args.get("leaseMs", DEFAULT_LEASE_MS)
    if not 200 <= lease <= 3_600_000:
        err.invalid("leaseMs must be between 200 and 3600000")
    return float(lease)


def _set_lease(ctx: Any, run: dict[str, Any], lease: float, attempt: float) -> float:
    expires = ctx.now() + lease
    if run.get("expiryJobId"):
        ctx.scheduler.cancel(run["expiryJobId"])
    job = ctx.scheduler.run_at(expires, "runs:expire", {"runId": run["_id"], "attempt": attempt})
    ctx.db.patch(run["_id"], {"leaseExpiresAt": expires, "expiryJobId": job})
    return expires


def _owned(ctx: Any, attempt: float) -> dict[str, Any]:
    """The run if the caller's claim (this attempt) is still current."""
    run = ctx.caller.target
    if run["status"] == "cancelled":
        err.fail("RUN_CANCELLED", "this run was cancelled", runId=run["_id"])
    if run["status"] not in ACTIVE or run.get("claimedBy") != ctx.caller.actor_id or run["attempt"] != attempt:
        err.fail("RUN_LOST", "this claim is no longer current (lease expired or another attempt runs)",
             runId=run["_id"], status=run["status"], attempt=run["attempt"])
    return run


def finish_run(ctx: Any, run: dict[str, Any], status: str, fields: dict[str, Any]) -> None:
    if run.get("expiryJobId"):
        ctx.scheduler.cancel(run["expiryJobId"])
    ctx.db.patch(run["_id"], {"status": status, "finishedAt": ctx.now(), "expiryJobId": UNDEFINED,
                              "leaseExpiresAt": UNDEFINED, **fields})
    if status != "done":  # streams its worker did not finish keep their text, marked failed
        _live.end_run(ctx, run["_id"], str(fields.get("error") or status), status)
    audit(ctx, run["spaceId"], f"run.{status}", {"runId": run["_id"], "kind": run["kind"],
                                                 "error": fields.get("error")},
          artifact_id=run.get("artifactId"), actor_id=run["agentId"])
    if status == "failed":
        notify(ctx, run["createdBy"], run["spaceId"], "runFailed",
               f"A {run['kind']} run failed: {fields.get('error', '')}"[:200], data={"runId": run["_id"]})
    from collab.backend.model import _pipeline  # (it queues runs with insert_run)

    _pipeline.run_ended(ctx, run, status, fields.get("error"))  # a pipeline stage stops with it


@mutation(args={"spaceId": v.id("spaces"), "agentId": v.id("actors"), "kind": v.string(),
                "input": v.optional(v.any()), "artifactId": v.optional(v.id("artifacts")),
                "messageId": v.optional(v.id("messages")), "maxAttempts": v.optional(v.number())},
          policy="editor", scope="space")
def enqueue(ctx: Any, args: dict[str, Any]) -> str:
    """Queue a job for an agent member of the space. Returns the runId. ``BUDGET_EXCEEDED``
    once the space has spent its budget."""
    _usage.check_budget(ctx, ctx.caller.space)
    member = membership(ctx, args["spaceId"], args["agentId"])
    if member is None or member["kind"] != "agent":
        err.fail("NOT_AN_AGENT", "runs are for agent members of this space", actorId=args["agentId"])
    for key in ("artifactId", "messageId"):
        if key in args:
            doc = get_in(ctx, key[:-2] + "s", args[key])
            if doc is None or doc["spaceId"] != args["spaceId"]:
                err.fail("NOT_FOUND", f"{key[:-2]} {args[key]} is not in this space", what=key[:-2], id=args[key])
    return insert_run(ctx, args["spaceId"], args["agentId"], args["kind"], args.get("input"),
                      artifact_id=args.get("artifactId"), message_id=args.get("messageId"),
                      max_attempts=args.get("maxAttempts", 3))


def insert_run(ctx: Any, space_id: str, agent_id: str, kind: str, input: Any, *, artifact_id: str | None = None,
               message_id: str | None = None, max_attempts: float = 3) -> str:
    """Queue a run (checked by the caller): ``runs:enqueue`` and ``messages:post`` (mentions)."""
    row: dict[str, Any] = {"spaceId": space_id, "agentId": agent_id, "kind": kind, "input": input,
                           "status": "queued", "attempt": 0, "maxAttempts": max_attempts,
                           "createdBy": ctx.caller.actor_id, "queuedAt": ctx.now()}
    if artifact_id is not None:
        row["artifactId"] = artifact_id
    if message_id is not None:
        row["messageId"] = message_id
    run_id = ctx.db.insert("runs", row)
    audit(ctx, space_id, "run.queued", {"runId": run_id, "kind": kind, "agentId": agent_id},
          actor_id=ctx.caller.actor_id)
    return str(run_id)


@mutation(args={"spaceId": v.id("spaces"), "leaseMs": v.optional(v.number())}, policy="editor", scope="space")
def claim(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """The caller (an agent) claims its oldest queued run in the space, or gets None."""
    lease = _lease(args)
    run = ctx.db.query("runs").with_index(
        "by_agent_status", lambda q: q.eq("agentId", ctx.caller.actor_id).eq("status", "queued")
    ).filter(lambda f: f.eq(f.field("spaceId"), args["spaceId"])).first()
    if run is None:
        return None
    attempt = run["attempt"] + 1
    ctx.db.patch(run["_id"], {"status": "claimed", "attempt": attempt, "claimedBy": ctx.caller.actor_id,
                              "startedAt": ctx.now()})
    _set_lease(ctx, run, lease, attempt)
    return ctx.db.get(run["_id"])


@mutation(args={"runId": v.id("runs"), "attempt": v.number(), "streaming": v.optional(v.boolean()),
                "leaseMs": v.optional(v.number())}, policy="editor", scope="run")
def heartbeat(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Renew the claim's lease (and move to ``streaming``). RUN_CANCELLED tells the worker to
    stop."""
    run = _owned(ctx, args["attempt"])
    if args.get("streaming") and run["status"] == "claimed":
        ctx.db.patch(run["_id"], {"status": "streaming"})
    return {"leaseExpiresAt": _set_lease(ctx, run, _lease(args), run["attempt"])}


@mutation(args={"runId": v.id("runs"), "attempt": v.number(), "output": v.optional(v.any()),
                "usage": v.optional(v.any()), "costUsd": v.optional(v.number())}, policy="editor", scope="run")
def complete(ctx: Any, args: dict[str, Any]) -> None:
    run = _owned(ctx, args["attempt"])
    _usage.record(ctx, run, args.get("usage"), args.get("costUsd"), args.get("output"))
    finish_run(ctx, run, "done", {k: args[k] for k in ("output", "usage", "costUsd") if k in args})


@mutation(args={"runId": v.id("runs"), "attempt": v.number(), "error": v.string(),
                "retry": v.optional(v.boolean()), "usage": v.optional(v.any()), "costUsd": v.optional(v.number())},
          policy="editor", scope="run")
def fail(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Report a failure; ``retry: true`` requeues while attempts remain. Returns ``{status}``."""
    run = _owned(ctx, args["attempt"])
    extra = {k: args[k] for k in ("usage", "costUsd") if k in args}
    _usage.record(ctx, run, args.get("usage"), args.get("costUsd"))  # tokens spent count, even on failure
    if args.get("retry") and run["attempt"] < run["maxAttempts"]:
        if run.get("expiryJobId"):
            ctx.scheduler.cancel(run["expiryJobId"])
        _live.end_run(ctx, run["_id"], args["error"], "requeued")
        ctx.db.patch(run["_id"], {"status": "queued", "error": args["error"], "claimedBy": UNDEFINED,
                                  "leaseExpiresAt": UNDEFINED, "expiryJobId": UNDEFINED, **extra})
        return {"status": "queued"}
    finish_run(ctx, run, "failed", {"error": args["error"], **extra})
    return {"status": "failed"}


@mutation(args={"runId": v.id("runs"), "reason": v.optional(v.string())}, policy="editor", scope="run")
def cancel(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Cancel a run that has not finished (the worker learns it from its next heartbeat)."""
    run = ctx.caller.target
    if run["status"] in TERMINAL:
        return {"status": run["status"]}
    finish_run(ctx, run, "cancelled", {"error": args.get("reason", "cancelled")})
    return {"status": "cancelled"}


@mutation(args={"spaceId": v.id("spaces"), "reason": v.optional(v.string())}, policy="editor", scope="space")
def cancelAll(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Cancel every run of the space that has not finished (queued, claimed, streaming) in one
    transaction (``ctrl+g`` in the app); their workers stop within a second. Returns the runs
    stopped, oldest first: ``[{runId, agentId, agentHandle, kind}]``."""
    reason = args.get("reason") or f"cancelled by @{ctx.caller.handle}"
    stopped: list[dict[str, Any]] = []
    for status in ("queued", *ACTIVE):
        for run in ctx.db.query("runs").with_index(
                "by_space_status", lambda q, s=status: q.eq("spaceId", args["spaceId"]).eq("status", s)).collect():
            finish_run(ctx, run, "cancelled", {"error": reason})
            agent = ctx.db.get(run["agentId"])
            stopped.append({"runId": run["_id"], "agentId": run["agentId"], "kind": run["kind"],
                            "agentHandle": agent["handle"] if agent else "?", "at": run["_creationTime"]})
    stopped.sort(key=lambda r: r.pop("at"))
    return stopped


@mutation(args={"runId": v.id("runs")}, policy="editor", scope="run")
def retry(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Queue a failed or cancelled run again (one more attempt). Returns ``{status}``."""
    run = ctx.caller.target
    if run["kind"] in ("stage", "review"):
        err.fail("PIPELINE_RUN", "this run belongs to a pipeline stage: retry the pipeline (pipelines:retry)",
                 pipelineId=(run.get("input") or {}).get("pipelineId"))
    if run["status"] not in ("failed", "cancelled"):
        err.fail("RUN_ACTIVE", f"this run is {run['status']}: only failed or cancelled runs are retried",
                 status=run["status"])
    ctx.db.patch(run["_id"], {"status": "queued", "maxAttempts": run["attempt"] + 1, "claimedBy": UNDEFINED,
                              "finishedAt": UNDEFINED, "queuedAt": ctx.now()})
    _live.end_run(ctx, run["_id"], "retried", "requeued")  # its proposals start over
    audit(ctx, run["spaceId"], "run.retried", {"runId": run["_id"], "kind": run["kind"]},
          artifact_id=run.get("artifactId"), actor_id=ctx.caller.actor_id)
    return {"status": "queued"}


@query(args={}, policy="authenticated")
def pending(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The caller's (an agent's) queued runs in every space, oldest first: what a worker
    watches, so it wakes when a run is queued instead of polling ``runs:claim``."""
    if ctx.caller.actor is None:
        return []
    return ctx.db.query("runs").with_index(
        "by_agent_status", lambda q: q.eq("agentId", ctx.caller.actor_id).eq("status", "queued")).collect()


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def active(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs of the space not finished yet, oldest first, each with ``agentHandle``: what every
    agent is doing (queued, claimed = thinking, streaming) for the presence bar."""
    rows = []
    for status in ("queued", *ACTIVE):
        rows += ctx.db.query("runs").with_index(
            "by_space_status", lambda q, s=status: q.eq("spaceId", args["spaceId"]).eq("status", s)).collect()
    out = []
    for r in sorted(rows, key=lambda r: r["_creationTime"]):
        agent = ctx.db.get(r["agentId"])
        out.append({"runId": r["_id"], "agentId": r["agentId"], "agentHandle": agent["handle"] if agent else "?",
                    "kind": r["kind"], "status": r["status"], "artifactId": r.get("artifactId"),
                    "messageId": r.get("messageId"), "queuedAt": r["queuedAt"], "startedAt": r.get("startedAt")})
    return out


@query(args={"runId": v.id("runs")}, policy="viewer", scope="run")
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.caller.target


@query(args={"spaceId": v.id("spaces"), "status": v.optional(RUN_STATUS), "limit": v.optional(v.number())},
       policy="viewer", scope="space")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs of a space, newest first (optionally of one status); ``limit`` at most 1000. Every
    run of a long history: ``runs:page``."""
    limit = row_limit(args, 100)
    if "status" in args:
        return ctx.db.query("runs").with_index(
            "by_space_status", lambda q: q.eq("spaceId", args["spaceId"]).eq("status", args["status"])
        ).order("desc").take(limit)
    rows = []
    for status in ("queued", "claimed", "streaming", "done", "failed", "cancelled"):
        rows += ctx.db.query("runs").with_index(
            "by_space_status", lambda q, s=status: q.eq("spaceId", args["spaceId"]).eq("status", s)
        ).order("desc").take(limit)
    return sorted(rows, key=lambda r: r["_creationTime"], reverse=True)[:limit]


@query(args={"spaceId": v.id("spaces"), "numItems": v.number(), "cursor": v.union(v.string(), v.null())},
       policy="viewer", scope="space")
def page(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Every run of the space, newest first, in pages (``{page, isDone, continueCursor}``) keyed
    by creation time: a run changing status stays on its page. ``numItems`` at most 1000."""
    return ctx.db.query("runs").with_index("by_space", lambda q: q.eq("spaceId", args["spaceId"])).order(
        "desc").paginate({"numItems": row_limit(args, 0, field="numItems"), "cursor": args["cursor"]})


@internal_mutation(args={"runId": v.id("runs"), "attempt": v.number()})
def expire(ctx: Any, args: dict[str, Any]) -> str | None:
    """A claim whose lease ended: requeue while attempts remain, else fail."""
    run = ctx.db.get(args["runId"])
    if run is None or run["status"] not in ACTIVE or run["attempt"] != args["attempt"]:
        return None
    if run["leaseExpiresAt"] > ctx.now():
        return None
    if run["attempt"] < run["maxAttempts"]:
        _live.end_run(ctx, run["_id"], "the worker stopped answering (claim lease expired); retrying", "requeued")
        ctx.db.patch(run["_id"], {"status": "queued", "claimedBy": UNDEFINED, "leaseExpiresAt": UNDEFINED,
                                  "expiryJobId": UNDEFINED, "error": "claim lease expired"})
        return "queued"
    # This job is the run's expiry job: finish without cancelling the running job.
    finish_run(ctx, {**run, "expiryJobId": None}, "failed",
               {"error": "the worker stopped answering (claim lease expired)"})
    return "failed"
