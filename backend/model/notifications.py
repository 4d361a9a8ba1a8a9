"""Notifications of the caller: you were mentioned, the lock you waited for is yours, you lost
a lock (and why), a run you queued failed."""

from __future__ import annotations

from typing import Any

from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import fail
from collab.backend.model._limits import row_limit
from collab.backend.model._util import get_in
from collab.backend.validators import v


@query(args={"unreadOnly": v.optional(v.boolean()), "spaceId": v.optional(v.id("spaces")),
             "limit": v.optional(v.number())}, policy="authenticated")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The caller's notifications, newest first (default 50, at most 1000)."""
    actor = ctx.caller.actor
    if actor is None:
        return []
    limit = row_limit(args, 50)
    if args.get("unreadOnly"):
        q = ctx.db.query("notifications").with_index(
            "by_actor_read", lambda r: r.eq("actorId", actor["_id"]).eq("read", False))
    else:
        q = ctx.db.query("notifications").with_index("by_actor", lambda r: r.eq("actorId", actor["_id"]))
    if "spaceId" in args:
        q = q.filter(lambda f: f.eq(f.field("spaceId"), args["spaceId"]))
    return q.order("desc").take(limit)


@mutation(args={"notificationId": v.optional(v.id("notifications"))}, policy="authenticated")
def markRead(ctx: Any, args: dict[str, Any]) -> float:
    """Mark one (or, without an id, all) of the caller's notifications read. Returns how many."""
    me = ctx.caller.actor_id
    if "notificationId" in args:
        row = get_in(ctx, "notifications", args["notificationId"])
        if row is None or row["actorId"] != me:
            fail("NOT_FOUND", "no such notification of yours", what="notification", id=args["notificationId"])
        if not row["read"]:
            ctx.db.patch(row["_id"], {"read": True})
            return 1
        return 0
    rows = ctx.db.query("notifications").with_index(
        "by_actor_read", lambda r: r.eq("actorId", me).eq("read", False)).collect()
    for row in rows:
        ctx.db.patch(row["_id"], {"read": True})
    return len(rows)
