"""Drafts: the holder's unsaved work, streamed in deltas under the lock.

One draft per hold (artifact, epoch), in its own table so streaming never re-runs queries of
the artifact's content. A draft of an expired or force-released hold stays ``orphaned`` (and
visible in ``drafts:list``) until discarded: it is never merged silently.
"""

from __future__ import annotations

from typing import Any

from collab.backend.model import _lockcore as lk
from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import fail
from collab.backend.model._util import get_in
from collab.backend.validators import v


@mutation(args={"artifactId": v.id("artifacts"), "token": v.number(), "text": v.string(),
                "seq": v.optional(v.number()), "replace": v.optional(v.boolean())},
          policy="editor", scope="artifact")
def append(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Append ``text`` to the caller's draft (``replace: true`` sets it). A ``seq`` at or below
    the last applied one is a retry and is ignored. An accepted delta renews the lease (at most
    every few seconds). Returns ``{seq, length, expiresAt, duplicate}``."""
    caller = ctx.caller
    lock = lk.check_fence(ctx, caller.actor_id, args["artifactId"], args["token"])
    now = ctx.now()
    draft = ctx.db.query("drafts").with_index(
        "by_artifact_epoch", lambda q: q.eq("artifactId", args["artifactId"]).eq("epoch", lock["epoch"])).unique()
    if draft is None:
        draft_id = ctx.db.insert("drafts", {"artifactId": args["artifactId"], "spaceId": lock["spaceId"],
                                            "actorId": caller.actor_id, "epoch": lock["epoch"],
                                            "baseVersion": caller.target["version"], "content": "", "seq": 0,
                                            "status": "live", "updatedAt": now})
        draft = ctx.db.get(draft_id)
    seq = args.get("seq", draft["seq"] + 1)
    if seq <= draft["seq"]:
        return {"seq": draft["seq"], "length": len(draft["content"]), "expiresAt": lock["expiresAt"],
                "duplicate": True}
    content = args["text"] if args.get("replace") else draft["content"] + args["text"]
    ctx.db.patch(draft["_id"], {"content": content, "seq": seq, "updatedAt": now})
    expires = lock["expiresAt"]
    if expires - now < lock["ttlMs"] - lk.renew_slack_ms(lock["ttlMs"]):
        expires = lk.extend_lease(ctx, lock, lock["ttlMs"])
    return {"seq": seq, "length": len(content), "expiresAt": expires, "duplicate": False}


@query(args={"artifactId": v.id("artifacts")}, policy="viewer", scope="artifact")
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """The live draft of the current holder (what it is writing right now), or None."""
    lock = lk.lock_of(ctx, args["artifactId"])
    if lock.get("holderId") is None:
        return None
    return ctx.db.query("drafts").with_index(
        "by_artifact_epoch", lambda q: q.eq("artifactId", args["artifactId"]).eq("epoch", lock["epoch"])).unique()


@query(args={"artifactId": v.id("artifacts"), "status": v.optional(v.string())}, policy="viewer", scope="artifact")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Kept drafts (default: ``orphaned``) with their content, newest first."""
    status = args.get("status", "orphaned")
    return ctx.db.query("drafts").with_index(
        "by_artifact_status", lambda q: q.eq("artifactId", args["artifactId"]).eq("status", status)
    ).order("desc").collect()


@mutation(args={"artifactId": v.id("artifacts"), "draftId": v.id("drafts")}, policy="editor", scope="artifact")
def discard(ctx: Any, args: dict[str, Any]) -> None:
    """Delete a kept draft: its author, or an owner."""
    draft = get_in(ctx, "drafts", args["draftId"])
    if draft is None or draft["artifactId"] != args["artifactId"]:
        fail("NOT_FOUND", "no such draft on this artifact", what="draft", id=args["draftId"])
    if draft["status"] == "live":
        fail("DRAFT_LIVE", "this draft belongs to the current hold; release or save instead")
    if draft["actorId"] != ctx.caller.actor_id and not ctx.caller.is_at_least("owner"):
        fail("FORBIDDEN", "only the draft's author or an owner discards it", required="owner",
             role=ctx.caller.role)
    ctx.db.delete(draft["_id"])
