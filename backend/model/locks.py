"""Pessimistic, fenced, leased artifact locks (DESIGN 2.4); the transitions are in _lockcore.

``acquire`` answers either ``{"status": "granted", token, expiresAt, since, ttlMs}`` or
``{"status": "queued", position, queueLength, holder}``: a queued caller is granted the lock
when it reaches the head of the FIFO queue (a ``lockGranted`` notification; ``artifacts:get``
shows it as holder), and then gets its token by calling ``acquire`` again (a holder's acquire
returns its current token) or by retrying with the same idempotency key.
"""

from __future__ import annotations

from typing import Any

from collab.backend.functions import internal_mutation
from collab.backend.model import _lockcore as lk
from collab.backend.model import _pipeline
from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import fail, invalid
from collab.backend.model._util import audit
from collab.backend.validators import v


def _queued(ctx: Any, lock: dict[str, Any], actor_id: str) -> dict[str, Any]:
    queue = lk.waiters(ctx, lock["artifactId"])
    position = next(i + 1 for i, w in enumerate(queue) if w["actorId"] == actor_id)
    return {"status": "queued", "position": position, "queueLength": len(queue), "holder": lk.holder_info(lock)}


@mutation(args={"artifactId": v.id("artifacts"), "ttlMs": v.optional(v.number()),
                "idempotencyKey": v.optional(v.string()), "wait": v.optional(v.boolean())},
          policy="editor", scope="artifact")
def acquire(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Take the lock, or join the FIFO queue (``wait: false``: fail with LOCKED instead)."""
    caller = ctx.caller
    key, artifact_id = args.get("idempotencyKey"), args["artifactId"]
    ttl = lk.ttl_of(args)
    rec = lk.recall(ctx, caller.actor_id, key, "locks:acquire", artifact_id)
    if rec is not None:
        # A retry. "granted" (possibly upgraded from "queued" when the queue reached us) is
        # returned as first given, even if that hold has ended since: using its token then
        # fails with the reason. A still-waiting request reports its current position.
        result = rec["result"]
        if result["status"] == "queued":
            lock = lk.lock_of(ctx, artifact_id)
            if lk.waiter_of(ctx, artifact_id, caller.actor_id) is not None:
                return _queued(ctx, lock, caller.actor_id)
        return result
    lock = lk.expire_if_due(ctx, lk.lock_of(ctx, artifact_id))
    if lock.get("holderId") is None and lk.waiters(ctx, artifact_id):
        lk.grant_next(ctx, lock)  # cannot happen through the API; heals a free lock with waiters
        lock = lk.lock_of(ctx, artifact_id)
    # A pipeline holds the artifact: only its current stage's actor gets the lock (LOCKED
    # naming the pipeline for anyone else, with or without ``wait``: nobody queues behind it).
    stage = _pipeline.gate(ctx, lock, caller) if lock.get("pipelineId") else None
    if lock.get("holderId") == caller.actor_id:
        # Re-entrant: the holder (e.g. granted from the queue, or another pane of the same
        # user) gets its live token; nothing changes.
        result = {"status": "granted", "token": lock["epoch"], "expiresAt": lock["expiresAt"],
                  "since": lock["since"], "ttlMs": lock["ttlMs"]}
    elif lk.waiter_of(ctx, artifact_id, caller.actor_id) is not None:
        result = _queued(ctx, lock, caller.actor_id)
    elif lock.get("holderId") is None:
        result = lk.grant(ctx, lock, caller.actor_id, caller.kind, caller.handle, ttl, "acquire")
    else:
        holder = lk.holder_info(lock)
        if args.get("wait") is False:
            queue = lk.waiters(ctx, artifact_id)
            fail("LOCKED", f"@{holder['handle']} ({holder['kind']}) holds this lock", holder=holder,
                 queueLength=len(queue))
        waiter: dict[str, Any] = {"artifactId": artifact_id, "spaceId": lock["spaceId"],
                                  "actorId": caller.actor_id, "actorKind": caller.kind,
                                  "actorHandle": caller.handle, "ttlMs": ttl, "since": ctx.now()}
        if key is not None:
            waiter["idempotencyKey"] = key
        ctx.db.insert("lockWaiters", waiter)
        result = _queued(ctx, lock, caller.actor_id)
        audit(ctx, lock["spaceId"], "lock.queued", {"actorId": caller.actor_id, "handle": caller.handle,
                                                    "position": result["position"]},
              artifact_id=artifact_id, actor_id=caller.actor_id)
    if stage is not None and result["status"] == "granted" and stage.get("epoch") != result["token"]:
        _pipeline.granted(ctx, stage, caller, result["token"])  # the stage's output is written under it
    lk.remember(ctx, caller.actor_id, key, "locks:acquire", artifact_id, result)
    return result


@mutation(args={"artifactId": v.id("artifacts"), "token": v.number(), "ttlMs": v.optional(v.number())},
          policy="editor", scope="artifact")
def renew(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Extend a live lease (every ~10 s for the default 30 s). Returns ``{token, expiresAt}``."""
    lock = lk.check_fence(ctx, ctx.caller.actor_id, args["artifactId"], args["token"])
    expires = lk.extend_lease(ctx, lock, lk.ttl_of(args, lock["ttlMs"]))
    return {"token": lock["epoch"], "expiresAt": expires}


@mutation(args={"artifactId": v.id("artifacts"), "token": v.number(), "keepDraft": v.optional(v.boolean())},
          policy="editor", scope="artifact")
def release(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Give the lock up without saving; the queue head gets it. The draft is dropped unless
    ``keepDraft``. Returns ``{released: true, grantedTo}``."""
    lock = lk.check_fence(ctx, ctx.caller.actor_id, args["artifactId"], args["token"])
    lock = lk.end_hold(ctx, lock, "released", by=ctx.caller.actor, keep_draft=bool(args.get("keepDraft")))
    granted = lk.grant_next(ctx, lock)
    return {"released": True, "grantedTo": granted["holder"] if granted else None}


@mutation(args={"artifactId": v.id("artifacts"), "reason": v.string()}, policy="owner", scope="artifact")
def forceRelease(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Owners only: take the lock from its holder (fenced: its token stops working at once; its
    draft is kept as orphaned; it is notified). The queue head gets the lock."""
    reason = args["reason"].strip()
    if not reason:
        invalid("a force release needs a reason")
    lock = lk.lock_of(ctx, args["artifactId"])
    if lock.get("holderId") is None:
        fail("NOT_LOCKED", "nobody holds this lock")
    previous = lk.holder_info(lock)
    lock = lk.end_hold(ctx, lock, "forceReleased", by=ctx.caller.actor, force_reason=reason)
    granted = lk.grant_next(ctx, lock)
    return {"epoch": lock["epoch"], "previousHolder": previous, "grantedTo": granted["holder"] if granted else None}


@mutation(args={"artifactId": v.id("artifacts")}, policy="editor", scope="artifact")
def leave(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Leave the wait queue. Returns ``{left: bool}``."""
    waiter = lk.waiter_of(ctx, args["artifactId"], ctx.caller.actor_id)
    if waiter is None:
        return {"left": False}
    ctx.db.delete(waiter["_id"])
    audit(ctx, waiter["spaceId"], "lock.left", {"actorId": waiter["actorId"], "handle": waiter["actorHandle"]},
          artifact_id=args["artifactId"], actor_id=waiter["actorId"])
    lk.update_remembered(ctx, ctx.caller.actor_id, waiter.get("idempotencyKey"), {"status": "cancelled"})
    return {"left": True}


@query(args={"artifactId": v.id("artifacts")}, policy="viewer", scope="artifact")
def queue(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``{held, holder, queueLength, queue: [{actorId, handle, kind, since, position}]}``."""
    return lk.lock_state(ctx, lk.lock_of(ctx, args["artifactId"]))


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Lock badges of a space: ``[{artifactId, holder, pipeline}]`` for locks that are held or
    that a pipeline holds (``holder`` may then be null between two stages)."""
    rows = ctx.db.query("locks").with_index("by_space", lambda q: q.eq("spaceId", args["spaceId"])).collect()
    return [{"artifactId": r["artifactId"], "holder": lk.holder_info(r), "pipeline": lk.pipeline_info(ctx, r)}
            for r in rows if r.get("holderId") or r.get("pipelineId")]


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def waiting(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Who waits for which lock in the space (the members screen): ``[{artifactId, actorId,
    handle, kind, since, position}]``, in queue order per artifact (1 = next)."""
    rows = ctx.db.query("lockWaiters").with_index("by_space", lambda q: q.eq("spaceId", args["spaceId"])).collect()
    position: dict[str, int] = {}
    out = []
    for w in rows:  # creation order is queue order
        position[w["artifactId"]] = position.get(w["artifactId"], 0) + 1
        out.append({"artifactId": w["artifactId"], "actorId": w["actorId"], "handle": w["actorHandle"],
                    "kind": w["actorKind"], "since": w["since"], "position": position[w["artifactId"]]})
    return out


@internal_mutation(args={"artifactId": v.id("artifacts"), "epoch": v.number()})
def expire(ctx: Any, args: dict[str, Any]) -> bool:
    """The sweeper, scheduled at each lease end: expires the hold only if that lease really
    ended (a renewal moved ``expiresAt`` and scheduled its own check)."""
    lock = ctx.db.query("locks").with_index("by_artifact", lambda q: q.eq("artifactId", args["artifactId"])).unique()
    if lock is None or lock.get("holderId") is None or lock["epoch"] != args["epoch"]:
        return False
    if lock["expiresAt"] > ctx.now():
        return False
    # This job is the lock's expiry job: end the hold without cancelling the running job (Convex
    # must not be asked to cancel the job it is running).
    lock = lk.end_hold(ctx, {**lock, "expiryJobId": None}, "expired")
    lk.grant_next(ctx, lock)
    return True


@internal_mutation(args={"keyId": v.id("idempotencyKeys")})
def forgetKey(ctx: Any, args: dict[str, Any]) -> None:
    if ctx.db.get(args["keyId"]) is not None:
        ctx.db.delete(args["keyId"])
