"""Spaces and their members (roles owner / editor / viewer; agents are members too)."""

from __future__ import annotations

from typing import Any

from collab.backend.model._auth import actor_by_subject, membership, mutation, query
from collab.backend.model._errors import fail, invalid
from collab.backend.model._util import audit, random_token
from collab.backend.model.schema import ACTOR_KIND, ROLE
from collab.backend.validators import v


def _add_member(ctx: Any, space_id: str, actor: dict[str, Any], role: str, by: str | None) -> str:
    row: dict[str, Any] = {"spaceId": space_id, "actorId": actor["_id"], "role": role, "kind": actor["kind"],
                           "handle": actor["handle"]}
    if by is not None:
        row["addedBy"] = by
    return str(ctx.db.insert("members", row))


def _owners(ctx: Any, space_id: str) -> list[dict[str, Any]]:
    return [m for m in ctx.db.query("members").with_index("by_space", lambda q: q.eq("spaceId", space_id)).collect()
            if m["role"] == "owner"]


@mutation(args={"name": v.string(), "description": v.optional(v.string())}, policy="authenticated")
def create(ctx: Any, args: dict[str, Any]) -> str:
    """A new space; the caller becomes its owner. Returns the spaceId."""
    return _create(ctx, args["name"], args.get("description"))


def _create(ctx: Any, name: str, description: str | None) -> str:
    name = name.strip()
    if not name or len(name) > 120:
        invalid("space name must be 1-120 characters")
    actor = ctx.caller.actor
    row: dict[str, Any] = {"name": name, "createdBy": actor["_id"]}
    if description:
        row["description"] = description
    space_id = ctx.db.insert("spaces", row)
    _add_member(ctx, space_id, actor, "owner", None)
    audit(ctx, space_id, "space.created", {"name": name}, actor_id=actor["_id"])
    return str(space_id)


@query(args={}, policy="authenticated")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Spaces the caller is a member of, with the caller's role."""
    actor = ctx.caller.actor
    if actor is None:
        return []
    out = []
    for m in ctx.db.query("members").with_index("by_actor", lambda q: q.eq("actorId", actor["_id"])).collect():
        space = ctx.db.get(m["spaceId"])
        if space is not None:
            out.append({**space, "role": m["role"]})
    return out


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {**ctx.caller.space, "role": ctx.caller.role}


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def members(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in ctx.db.query("members").with_index("by_space", lambda q: q.eq("spaceId", args["spaceId"])).collect():
        actor = ctx.db.get(m["actorId"])
        out.append({"memberId": m["_id"], "actorId": m["actorId"], "role": m["role"], "kind": m["kind"],
                    "handle": m["handle"], "name": actor["name"] if actor else m["handle"],
                    "since": m["_creationTime"]})
    return out


@mutation(args={"spaceId": v.id("spaces"), "role": v.optional(ROLE), "maxUses": v.optional(v.number())},
          policy="owner", scope="space")
def invite(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """An invite code for ``spaces:join`` (default role editor)."""
    code = random_token(ctx, 12)  # ctx randomness, as Convex allows in mutations (no `secrets`)
    row: dict[str, Any] = {"spaceId": args["spaceId"], "code": code, "role": args.get("role", "editor"),
                           "createdBy": ctx.caller.actor_id, "uses": 0, "revoked": False}
    if "maxUses" in args:
        row["maxUses"] = args["maxUses"]
    ctx.db.insert("invites", row)
    audit(ctx, args["spaceId"], "space.invited", {"role": row["role"]}, actor_id=ctx.caller.actor_id)
    return {"code": code, "role": row["role"]}


@mutation(args={"code": v.string()}, policy="authenticated")
def join(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Join the space of an invite code. Returns ``{spaceId, role}``; joining again is a no-op
    (never a downgrade)."""
    inv = ctx.db.query("invites").with_index("by_code", lambda q: q.eq("code", args["code"])).unique()
    if inv is None or inv["revoked"] or ("maxUses" in inv and inv["uses"] >= inv["maxUses"]):
        fail("INVALID_INVITE", "this invite code is unknown, revoked or used up")
    actor = ctx.caller.actor
    existing = membership(ctx, inv["spaceId"], actor["_id"])
    if existing is not None:
        return {"spaceId": inv["spaceId"], "role": existing["role"]}
    _add_member(ctx, inv["spaceId"], actor, inv["role"], inv["createdBy"])
    ctx.db.patch(inv["_id"], {"uses": inv["uses"] + 1})
    audit(ctx, inv["spaceId"], "member.joined", {"handle": actor["handle"], "role": inv["role"]},
          actor_id=actor["_id"])
    return {"spaceId": inv["spaceId"], "role": inv["role"]}


def _put_member(ctx: Any, space_id: str, kind: str, handle: str, role: str, name: str | None) -> str:
    """Make ``<kind>:<handle>`` a member with ``role`` (its actor is created if it never signed
    in: the token ``sub`` will map to it); a member already there gets the role. Audited."""
    subject = f"{kind}:{handle}"
    actor = actor_by_subject(ctx, subject)
    if actor is None:
        actor_id = ctx.db.insert("actors", {"subject": subject, "kind": kind, "handle": handle,
                                            "name": name or handle})
        actor = ctx.db.get(actor_id)
    existing = membership(ctx, space_id, actor["_id"])
    if existing is not None:
        ctx.db.patch(existing["_id"], {"role": role})
        member_id = existing["_id"]
    else:
        member_id = _add_member(ctx, space_id, actor, role, ctx.caller.actor_id)
    audit(ctx, space_id, "member.added", {"handle": actor["handle"], "kind": actor["kind"], "role": role},
          actor_id=ctx.caller.actor_id)
    return str(member_id)


@mutation(args={"spaceId": v.id("spaces"), "handle": v.string(), "kind": ACTOR_KIND, "role": ROLE,
                "name": v.optional(v.string())}, policy="owner", scope="space")
def addMember(ctx: Any, args: dict[str, Any]) -> str:
    """Add a human or agent by handle (its actor is created if it never signed in: the token
    ``sub`` ``<kind>:<handle>`` will map to it). Changes the role if already a member."""
    return _put_member(ctx, args["spaceId"], args["kind"], args["handle"], args["role"], args.get("name"))


AGENT = v.object({"handle": v.string(), "name": v.optional(v.string())})


@mutation(args={"name": v.string(), "description": v.optional(v.string()), "actorName": v.optional(v.string()),
                "agents": v.optional(v.array(AGENT)), "create": v.optional(v.boolean())},
          policy="authenticated")
def open(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """Everything the app needs to open a space by name, in one transaction: the caller's actor
    (display name ``actorName`` updated), the caller's space called ``name`` (created with the
    caller as owner when there is none and ``create`` is not false), and, for an owner, the
    ``agents`` added as editor members if missing. Returns ``{spaceId, name, role, me, created}``,
    or None when no such space exists and ``create`` is false."""
    actor = ctx.caller.actor
    name = args["name"].strip()
    if "actorName" in args:
        display = args["actorName"].strip()
        if not display or len(display) > 80:
            invalid("name must be 1-80 characters")
        if display != actor["name"]:
            ctx.db.patch(actor["_id"], {"name": display})
    found = None
    for m in ctx.db.query("members").with_index("by_actor", lambda q: q.eq("actorId", actor["_id"])).collect():
        space = ctx.db.get(m["spaceId"])
        if space is not None and space["name"] == name:
            found = (space["_id"], m["role"])
            break
    created = found is None
    if found is None:
        if args.get("create") is False:
            return None
        found = (_create(ctx, name, args.get("description")), "owner")
    space_id, role = found
    if role == "owner":
        have = {m["handle"] for m in ctx.db.query("members").with_index(
            "by_space", lambda q: q.eq("spaceId", space_id)).collect() if m["kind"] == "agent"}
        for agent in args.get("agents") or []:
            if agent["handle"] not in have:
                _put_member(ctx, space_id, "agent", agent["handle"], "editor", agent.get("name"))
    return {"spaceId": str(space_id), "name": name, "role": role, "me": ctx.db.get(actor["_id"]),
            "created": created}


@mutation(args={"spaceId": v.id("spaces"), "actorId": v.id("actors"), "role": ROLE}, policy="owner", scope="space")
def setRole(ctx: Any, args: dict[str, Any]) -> None:
    m = membership(ctx, args["spaceId"], args["actorId"])
    if m is None:
        fail("NOT_FOUND", "that actor is not a member of this space", what="member", id=args["actorId"])
    if m["role"] == "owner" and args["role"] != "owner" and len(_owners(ctx, args["spaceId"])) == 1:
        fail("LAST_OWNER", "a space keeps at least one owner")
    ctx.db.patch(m["_id"], {"role": args["role"]})
    audit(ctx, args["spaceId"], "member.role", {"handle": m["handle"], "from": m["role"], "to": args["role"]},
          actor_id=ctx.caller.actor_id)


@mutation(args={"spaceId": v.id("spaces"), "actorId": v.id("actors")}, policy="viewer", scope="space")
def removeMember(ctx: Any, args: dict[str, Any]) -> None:
    """Owners remove anyone; anyone may remove themselves (leave)."""
    if args["actorId"] != ctx.caller.actor_id and not ctx.caller.is_at_least("owner"):
        fail("FORBIDDEN", "only owners remove other members", required="owner", role=ctx.caller.role)
    m = membership(ctx, args["spaceId"], args["actorId"])
    if m is None:
        fail("NOT_FOUND", "that actor is not a member of this space", what="member", id=args["actorId"])
    if m["role"] == "owner" and len(_owners(ctx, args["spaceId"])) == 1:
        fail("LAST_OWNER", "a space keeps at least one owner")
    ctx.db.delete(m["_id"])
    audit(ctx, args["spaceId"], "member.removed", {"handle": m["handle"]}, actor_id=ctx.caller.actor_id)


