"""The lock protocol's state transitions (DESIGN 2.4), shared by locks, artifacts and drafts.

Every transition runs inside the calling mutation's transaction, so "fence check, new version,
release, grant to the queue head, audit" is one atomic step. Invariants kept here:

- ``locks.epoch`` (the fencing token) only grows: each grant is ``epoch + 1``.
- At most one holder: a grant happens only on a free lock, and ``lockHolds`` has one row per
  epoch with how it ended.
- A write under the lock is accepted only if the caller is the holder, its token equals the
  current epoch and ``now < expiresAt`` (an expired lease the sweeper has not reached yet
  still rejects the write).
- Expiry is written by the scheduled ``locks:expire`` (or lazily by the next acquire), never
  computed by a query: queries return ``expiresAt`` and clients show the countdown.
"""

from __future__ import annotations

from typing import Any

from collab.backend.database import UNDEFINED
from collab.backend.model import _live
from collab.backend.model._errors import fail, invalid
from collab.backend.model._util import audit, notify

DEFAULT_TTL_MS = 30_000
MIN_TTL_MS = 200
MAX_TTL_MS = 10 * 60_000
IDEMPOTENCY_KEEP_MS = 24 * 3600_000


def ttl_of(args: dict[str, Any], default: float = DEFAULT_TTL_MS) -> float:
    ttl = args.get("ttlMs", default)
    if not MIN_TTL_MS <= ttl <= MAX_TTL_MS:
        invalid(f"ttlMs must be between {MIN_TTL_MS} and {MAX_TTL_MS}", ttlMs=ttl)
    return float(ttl)


def renew_slack_ms(ttl: float) -> float:
    """A draft delta renews the lease only when that gains at least this much: a stream of
    deltas every 250 ms then rewrites the lock row every few seconds, not 4 times a second."""
    return min(ttl / 3, 5_000.0)


def lock_of(ctx: Any, artifact_id: str) -> dict[str, Any]:
    lock = ctx.db.query("locks").with_index("by_artifact", lambda q: q.eq("artifactId", artifact_id)).unique()
    if lock is None:  # created with the artifact; missing means a corrupted space
        fail("NOT_FOUND", f"artifact {artifact_id} has no lock row", what="lock", id=artifact_id)
    return lock


def waiters(ctx: Any, artifact_id: str) -> list[dict[str, Any]]:
    return ctx.db.query("lockWaiters").with_index("by_artifact", lambda q: q.eq("artifactId", artifact_id)).collect()


def waiter_of(ctx: Any, artifact_id: str, actor_id: str) -> dict[str, Any] | None:
    return ctx.db.query("lockWaiters").with_index(
        "by_artifact_actor", lambda q: q.eq("artifactId", artifact_id).eq("actorId", actor_id)).first()


def hold_of(ctx: Any, artifact_id: str, epoch: float) -> dict[str, Any] | None:
    return ctx.db.query("lockHolds").with_index(
        "by_artifact_epoch", lambda q: q.eq("artifactId", artifact_id).eq("epoch", epoch)).unique()


def holder_info(lock: dict[str, Any]) -> dict[str, Any] | None:
    """Who holds the lock, as everybody may see it (never the token)."""
    if lock.get("holderId") is None:
        return None
    return {"actorId": lock["holderId"], "handle": lock["holderHandle"], "kind": lock["holderKind"],
            "since": lock["since"], "expiresAt": lock["expiresAt"]}


def pipeline_info(ctx: Any, lock: dict[str, Any]) -> dict[str, Any] | None:
    """The pipeline holding the artifact (title, stage, status, who is at work), or None."""
    if not lock.get("pipelineId"):
        return None
    from collab.backend.model import _pipeline  # (it imports this module)

    p = ctx.db.get(lock["pipelineId"])
    return _pipeline.summary(ctx, p) if p is not None else None


def lock_state(ctx: Any, lock: dict[str, Any]) -> dict[str, Any]:
    queue = waiters(ctx, lock["artifactId"])
    holder = holder_info(lock)
    return {"held": holder is not None, "holder": holder, "queueLength": len(queue),
            "queue": [{"actorId": w["actorId"], "handle": w["actorHandle"], "kind": w["actorKind"],
                       "since": w["since"], "position": i + 1} for i, w in enumerate(queue)],
            "pipeline": pipeline_info(ctx, lock)}


# --- idempotency keys -----------------------------------------------------------------------------

def recall(ctx: Any, actor_id: str, key: str | None, fn: str, artifact_id: str) -> dict[str, Any] | None:
    """The record of a previous call with this key, or None. A key reused for another function
    or artifact is a client bug, reported rather than guessed at."""
    if key is None:
        return None
    rec = ctx.db.query("idempotencyKeys").with_index(
        "by_actor_key", lambda q: q.eq("actorId", actor_id).eq("key", key)).unique()
    if rec is not None and (rec["fn"] != fn or rec["artifactId"] != artifact_id):
        invalid(f"idempotency key {key!r} was already used for {rec['fn']} on another artifact",
                idempotencyKey=key)
    return rec


def remember(ctx: Any, actor_id: str, key: str | None, fn: str, artifact_id: str, result: Any) -> None:
    if key is None:
        return
    expires = ctx.now() + IDEMPOTENCY_KEEP_MS
    rec_id = ctx.db.insert("idempotencyKeys", {"actorId": actor_id, "key": key, "fn": fn,
                                               "artifactId": artifact_id, "result": result, "expiresAt": expires})
    ctx.scheduler.run_at(expires, "locks:forgetKey", {"keyId": rec_id})


def update_remembered(ctx: Any, actor_id: str, key: str | None, result: Any) -> None:
    if key is None:
        return
    rec = ctx.db.query("idempotencyKeys").with_index(
        "by_actor_key", lambda q: q.eq("actorId", actor_id).eq("key", key)).unique()
    if rec is not None:
        ctx.db.patch(rec["_id"], {"result": result})


# --- transitions ----------------------------------------------------------------------------------

def _schedule_expiry(ctx: Any, lock_id: str, artifact_id: str, epoch: float, expires_at: float,
                     old_job: str | None) -> None:
    if old_job:
        ctx.scheduler.cancel(old_job)
    job = ctx.scheduler.run_at(expires_at, "locks:expire", {"artifactId": artifact_id, "epoch": epoch})
    ctx.db.patch(lock_id, {"expiryJobId": job})


def grant(ctx: Any, lock: dict[str, Any], actor_id: str, kind: str, handle: str, ttl: float,
          via: str) -> dict[str, Any]:
    """Give a free lock to ``actor_id``: the next epoch, a fresh lease, a hold row, an audit row."""
    assert lock.get("holderId") is None, "grant on a held lock"
    now = ctx.now()
    epoch = lock["epoch"] + 1
    expires = now + ttl
    ctx.db.patch(lock["_id"], {"epoch": epoch, "holderId": actor_id, "holderKind": kind, "holderHandle": handle,
                               "since": now, "expiresAt": expires, "ttlMs": ttl})
    _schedule_expiry(ctx, lock["_id"], lock["artifactId"], epoch, expires, lock.get("expiryJobId"))
    ctx.db.insert("lockHolds", {"artifactId": lock["artifactId"], "spaceId": lock["spaceId"], "epoch": epoch,
                                "holderId": actor_id, "holderKind": kind, "holderHandle": handle,
                                "grantedAt": now, "via": via})
    audit(ctx, lock["spaceId"], "lock.granted",
          {"epoch": epoch, "holderId": actor_id, "holderHandle": handle, "holderKind": kind, "via": via,
           "expiresAt": expires},
          artifact_id=lock["artifactId"], actor_id=actor_id)
    return {"status": "granted", "token": epoch, "expiresAt": expires, "since": now, "ttlMs": ttl}


def extend_lease(ctx: Any, lock: dict[str, Any], ttl: float) -> float:
    expires = ctx.now() + ttl
    ctx.db.patch(lock["_id"], {"expiresAt": expires, "ttlMs": ttl})
    _schedule_expiry(ctx, lock["_id"], lock["artifactId"], lock["epoch"], expires, lock.get("expiryJobId"))
    return expires


def end_hold(ctx: Any, lock: dict[str, Any], reason: str, *, by: dict[str, Any] | None = None,
             force_reason: str | None = None, keep_draft: bool = False) -> dict[str, Any]:
    """Free the lock. The holder's live draft: deleted on save (the version has it) and on a
    plain release (unless ``keep_draft``); kept as ``orphaned`` when the hold expired or was
    force-released, and the holder is told."""
    now = ctx.now()
    artifact_id, epoch, holder_id = lock["artifactId"], lock["epoch"], lock["holderId"]
    if lock.get("expiryJobId"):
        ctx.scheduler.cancel(lock["expiryJobId"])
    ctx.db.patch(lock["_id"], {"holderId": UNDEFINED, "holderKind": UNDEFINED, "holderHandle": UNDEFINED,
                               "since": UNDEFINED, "expiresAt": UNDEFINED, "ttlMs": UNDEFINED,
                               "expiryJobId": UNDEFINED})
    hold = hold_of(ctx, artifact_id, epoch)
    if hold is not None:
        end: dict[str, Any] = {"endedAt": now, "endReason": reason}
        if by is not None:
            end["endedBy"], end["endedByHandle"] = by["_id"], by["handle"]
        if force_reason is not None:
            end["forceReason"] = force_reason
        ctx.db.patch(hold["_id"], end)
    _live.end_draft(ctx, artifact_id, epoch)  # the hold's live tail ends with it
    draft = ctx.db.query("drafts").with_index(
        "by_artifact_epoch", lambda q: q.eq("artifactId", artifact_id).eq("epoch", epoch)).unique()
    if draft is not None and draft["status"] == "live":
        if reason in ("expired", "forceReleased"):
            ctx.db.patch(draft["_id"], {"status": "orphaned", "updatedAt": now})
        elif reason == "released" and keep_draft:
            ctx.db.patch(draft["_id"], {"status": "released", "updatedAt": now})
        else:
            ctx.db.delete(draft["_id"])
    data: dict[str, Any] = {"epoch": epoch, "holderId": holder_id, "holderHandle": lock["holderHandle"],
                            "reason": reason}
    if by is not None:
        data["byId"], data["byHandle"] = by["_id"], by["handle"]
    if force_reason is not None:
        data["forceReason"] = force_reason
    audit(ctx, lock["spaceId"], "lock.released", data, artifact_id=artifact_id,
          actor_id=by["_id"] if by is not None else None)
    if reason in ("expired", "forceReleased"):
        why = "your lease expired" if reason == "expired" else \
            f"@{by['handle'] if by else '?'} force-released it: {force_reason}"
        notify(ctx, holder_id, lock["spaceId"], "lockLost",
               f"You lost the lock on this artifact ({why}); your draft is kept.",
               artifactId=artifact_id, data={"epoch": epoch, "reason": reason, "forceReason": force_reason,
                                             "byHandle": by["handle"] if by else None,
                                             "draftKept": draft is not None})
    return ctx.db.get(lock["_id"])


def grant_next(ctx: Any, lock: dict[str, Any]) -> dict[str, Any] | None:
    """Hand a free lock to the head of the FIFO queue (skipping waiters who lost their editor
    role meanwhile). Returns the grant, with the new holder, or None if nobody waits."""
    from collab.backend.model._auth import ROLE_RANK, membership  # (cycle-free at call time)

    for waiter in waiters(ctx, lock["artifactId"]):
        ctx.db.delete(waiter["_id"])
        member = membership(ctx, lock["spaceId"], waiter["actorId"])
        if member is None or ROLE_RANK[member["role"]] < ROLE_RANK["editor"]:
            audit(ctx, lock["spaceId"], "lock.left", {"actorId": waiter["actorId"], "handle": waiter["actorHandle"],
                                                      "why": "no longer an editor"},
                  artifact_id=lock["artifactId"], actor_id=waiter["actorId"])
            update_remembered(ctx, waiter["actorId"], waiter.get("idempotencyKey"), {"status": "cancelled"})
            continue
        result = grant(ctx, lock, waiter["actorId"], waiter["actorKind"], waiter["actorHandle"],
                       waiter["ttlMs"], "queue")
        update_remembered(ctx, waiter["actorId"], waiter.get("idempotencyKey"), result)
        notify(ctx, waiter["actorId"], lock["spaceId"], "lockGranted",
               "The lock you waited for is yours.", artifactId=lock["artifactId"],
               data={"expiresAt": result["expiresAt"]})
        return {**result, "holder": {"actorId": waiter["actorId"], "handle": waiter["actorHandle"],
                                     "kind": waiter["actorKind"]}}
    return None


def expire_if_due(ctx: Any, lock: dict[str, Any]) -> dict[str, Any]:
    """Lazy sweep: a lease that ended but that the scheduled sweeper has not reached yet is
    expired now (in this mutation) and the lock goes to the queue head."""
    if lock.get("holderId") is not None and lock["expiresAt"] <= ctx.now():
        lock = end_hold(ctx, lock, "expired")
        grant_next(ctx, lock)
        lock = ctx.db.get(lock["_id"])
    return lock


def check_fence(ctx: Any, actor_id: str, artifact_id: str, token: float) -> dict[str, Any]:
    """The lock row if ``token`` is the caller's live hold; otherwise a STALE_TOKEN /
    NOT_HOLDER error that says why the lock was lost."""
    lock = lock_of(ctx, artifact_id)
    if lock.get("holderId") == actor_id and lock["epoch"] == token:
        if lock["expiresAt"] > ctx.now():
            return lock
        fail("STALE_TOKEN", "your lease expired: the lock is no longer yours", reason="expired",
             token=token, at=lock["expiresAt"], currentHolder=None, draftKept=True)
    hold = hold_of(ctx, artifact_id, token)
    current = holder_info(lock)
    if hold is None:
        if token > lock["epoch"]:
            fail("INVALID_TOKEN", "this lock token was never issued", token=token)
        fail("STALE_TOKEN", "the lock was lost: a newer holder superseded this token", reason="superseded",
             token=token, currentHolder=current)
    if hold["holderId"] != actor_id:
        fail("NOT_HOLDER", f"this token belongs to @{hold['holderHandle']}, not to you", token=token,
             currentHolder=current)
    reason = hold.get("endReason", "superseded")
    by = hold.get("endedByHandle")
    text = {"expired": "your lease expired", "saved": "you saved and released it",
            "released": "you released it", "forceReleased": f"@{by} force-released it",
            "submitted": "you handed in the stage output"}.get(reason, reason)
    extra: dict[str, Any] = {"forceReason": hold["forceReason"]} if "forceReason" in hold else {}
    fail("STALE_TOKEN", f"the lock was lost: {text}", reason=reason, token=token, at=hold.get("endedAt"),
         byHandle=by, currentHolder=current, **extra)
