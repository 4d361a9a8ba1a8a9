"""Presence: who is here, what they look at, who is typing. Ephemeral rows in their own table
(so heartbeats never re-run content queries), one per terminal (``client``), deleted by a
scheduled sweep when the heartbeats stop."""

from __future__ import annotations

from typing import Any

from collab.backend.functions import internal_mutation
from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import invalid
from collab.backend.validators import v

PRESENCE_TTL_MS = 30_000


def _row(ctx: Any, space_id: str, actor_id: str, client: str) -> dict[str, Any] | None:
    return ctx.db.query("presence").with_index(
        "by_space_actor_client", lambda q: q.eq("spaceId", space_id).eq("actorId", actor_id).eq("client", client)
    ).unique()


@mutation(args={"spaceId": v.id("spaces"), "client": v.optional(v.string()),
                "artifactId": v.optional(v.id("artifacts")), "view": v.optional(v.string()),
                "typing": v.optional(v.boolean()), "ttlMs": v.optional(v.number())},
          policy="viewer", scope="space")
def heartbeat(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """I am here (every ~10 s, and when what I look at or my typing changes). Returns
    ``{presenceId, expiresAt}``."""
    caller, now = ctx.caller, ctx.now()
    ttl = args.get("ttlMs", PRESENCE_TTL_MS)
    if not 1_000 <= ttl <= 300_000:
        invalid("ttlMs must be between 1000 and 300000")
    client = args.get("client", "default")
    fields: dict[str, Any] = {"typing": bool(args.get("typing", False)), "lastSeen": now, "expiresAt": now + ttl}
    for key in ("artifactId", "view"):
        if key in args:
            fields[key] = args[key]
    row = _row(ctx, args["spaceId"], caller.actor_id, client)
    if row is None:
        presence_id = ctx.db.insert("presence", {"spaceId": args["spaceId"], "actorId": caller.actor_id,
                                                 "actorKind": caller.kind, "actorHandle": caller.handle,
                                                 "client": client, **fields})
    else:
        presence_id = row["_id"]
        if row.get("expiryJobId"):
            ctx.scheduler.cancel(row["expiryJobId"])
        ctx.db.patch(presence_id, fields)
    job = ctx.scheduler.run_at(fields["expiresAt"], "presence:expire", {"presenceId": presence_id})
    ctx.db.patch(presence_id, {"expiryJobId": job})
    return {"presenceId": presence_id, "expiresAt": fields["expiresAt"]}


@mutation(args={"spaceId": v.id("spaces"), "client": v.optional(v.string())}, policy="viewer", scope="space")
def leave(ctx: Any, args: dict[str, Any]) -> None:
    row = _row(ctx, args["spaceId"], ctx.caller.actor_id, args.get("client", "default"))
    if row is not None:
        if row.get("expiryJobId"):
            ctx.scheduler.cancel(row["expiryJobId"])
        ctx.db.delete(row["_id"])


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Everyone present (one row per terminal): handle, kind, artifact/view, typing, expiresAt."""
    return ctx.db.query("presence").with_index("by_space", lambda q: q.eq("spaceId", args["spaceId"])).collect()


@internal_mutation(args={"presenceId": v.id("presence")})
def expire(ctx: Any, args: dict[str, Any]) -> bool:
    row = ctx.db.get(args["presenceId"])
    if row is None or row["expiresAt"] > ctx.now():
        return False
    ctx.db.delete(row["_id"])
    return True
