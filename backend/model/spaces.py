"""Spaces and their members (roles owner / editor / viewer; agents are members too)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from collab.backend.database import UNDEFINED
from collab.backend.functions import internal_mutation
from collab.backend.model._auth import actor_by_subject, membership, mutation, query
from collab.backend.model._errors import fail, invalid
from collab.backend.model._util import audit, notify, whole
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


# Invite codes: 20 characters from an alphabet without look-alikes (0/o, 1/l/i), shown in
# four groups of five: ~98 bits, typed or pasted into a shell as they are (no leading "-").
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_LENGTH = 20
HINT_LENGTH = 5
MAX_INVITE_USES = 1000
MIN_EXPIRY_MS = 60_000
MAX_EXPIRY_MS = 90 * 24 * 3600 * 1000
HANDLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
RESERVED_HANDLES = frozenset({"all", "everyone", "here", "human", "humans", "me", "auto"})


def normalize_code(code: str) -> str:
    """What the user typed -> the code's characters (case, spaces and dashes do not matter)."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _new_code(ctx: Any) -> str:
    """From ``ctx.random_bytes`` (a Convex mutation's seeded randomness, no ``secrets``): 30
    letters of 32 bits each, reduced without a noticeable bias."""
    raw = ctx.random_bytes(4 * CODE_LENGTH)
    chars = [CODE_ALPHABET[int.from_bytes(raw[4 * i:4 * i + 4], "big") % len(CODE_ALPHABET)]
             for i in range(CODE_LENGTH)]
    return "-".join("".join(chars[i:i + 5]) for i in range(0, CODE_LENGTH, 5))


def check_handle(handle: str) -> None:
    if not HANDLE_RE.match(handle):
        fail("INVALID_HANDLE", f"@{handle} is not a valid handle: 1-32 characters, a lowercase letter, then "
                               "lowercase letters, digits, - or _", handle=handle)
    if handle in RESERVED_HANDLES:
        fail("INVALID_HANDLE", f"@{handle} is reserved (it has a meaning in messages); choose another",
             handle=handle)


@mutation(args={"spaceId": v.id("spaces"), "role": v.optional(ROLE), "maxUses": v.optional(v.number()),
                "expiresInMs": v.optional(v.number())}, policy="owner", scope="space")
def invite(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """An invite code for ``spaces:join`` (or the embedded backend's code exchange). Default
    role editor; ``maxUses`` (1-1000; unset: any number); ``expiresInMs`` (1 minute - 90 days;
    unset: never). Returns ``{inviteId, code, role, maxUses, expiresAt}`` (null when unset).
    Only the code's hash is stored: the code is shown once, here."""
    role = args.get("role", "editor")
    if role == "owner":
        invalid("invites are for editors and viewers; make an owner with spaces:setRole")
    max_uses = args.get("maxUses")
    if max_uses is not None and (not whole(max_uses) or not 1 <= max_uses <= MAX_INVITE_USES):
        invalid(f"maxUses must be a whole number from 1 to {MAX_INVITE_USES}")
    expires_in = args.get("expiresInMs")
    if expires_in is not None and not MIN_EXPIRY_MS <= expires_in <= MAX_EXPIRY_MS:
        invalid("expiresInMs must be between 1 minute and 90 days")
    code = _new_code(ctx)
    row: dict[str, Any] = {"spaceId": args["spaceId"], "codeHash": code_hash(code), "hint": code[:HINT_LENGTH],
                           "role": role, "createdBy": ctx.caller.actor_id, "uses": 0, "revoked": False}
    if max_uses is not None:
        row["maxUses"] = max_uses
    if expires_in is not None:
        row["expiresAt"] = ctx.now() + expires_in
    invite_id = ctx.db.insert("invites", row)
    audit(ctx, args["spaceId"], "space.invited",
          {"role": role, "hint": row["hint"], "maxUses": max_uses, "expiresAt": row.get("expiresAt"),
           "byHandle": ctx.caller.handle}, actor_id=ctx.caller.actor_id)
    return {"inviteId": str(invite_id), "code": code, "role": role, "maxUses": max_uses,
            "expiresAt": row.get("expiresAt")}


def usable_invite(ctx: Any, code: str) -> dict[str, Any]:
    """The invite of ``code`` if it can be used now; otherwise one error per reason:
    ``INVITE_UNKNOWN``, ``INVITE_REVOKED``, ``INVITE_EXPIRED``, ``INVITE_USED_UP``."""
    inv = ctx.db.query("invites").with_index("by_hash", lambda q: q.eq("codeHash", code_hash(code))).unique()
    if inv is None:
        fail("INVITE_UNKNOWN", "no invite has this code: check that it was copied whole, or ask for a new one")
    if inv["revoked"]:
        by = ctx.db.get(inv["revokedBy"]) if inv.get("revokedBy") else None
        who = f" by @{by['handle']}" if by else ""
        fail("INVITE_REVOKED", f"this invite was revoked{who}: ask an owner of the space for a new one")
    if inv.get("expiresAt") is not None and ctx.now() >= inv["expiresAt"]:
        fail("INVITE_EXPIRED", "this invite has expired: ask an owner of the space for a new one",
             expiresAt=inv["expiresAt"])
    if inv.get("maxUses") is not None and inv["uses"] >= inv["maxUses"]:
        n = inv["maxUses"]
        fail("INVITE_USED_UP", f"this invite was for {n:g} use{'s' if n != 1 else ''} and has been used up: "
                               "ask an owner of the space for a new one", maxUses=n)
    return inv


def _handle_free_in(ctx: Any, space_id: str, handle: str, actor_id: str | None) -> None:
    other = ctx.db.query("members").with_index(
        "by_space_handle", lambda q: q.eq("spaceId", space_id).eq("handle", handle)).first()
    if other is not None and other["actorId"] != actor_id:
        fail("HANDLE_TAKEN", f"@{handle} is already a member of this space: choose another handle", handle=handle)


def _use_invite(ctx: Any, inv: dict[str, Any], actor: dict[str, Any]) -> dict[str, Any]:
    space = ctx.db.get(inv["spaceId"])
    existing = membership(ctx, inv["spaceId"], actor["_id"])
    if existing is not None:  # joining again: nothing changes, never a downgrade
        return {"spaceId": inv["spaceId"], "spaceName": space["name"], "role": existing["role"],
                "handle": actor["handle"]}
    _handle_free_in(ctx, inv["spaceId"], actor["handle"], actor["_id"])
    _add_member(ctx, inv["spaceId"], actor, inv["role"], inv["createdBy"])
    ctx.db.patch(inv["_id"], {"uses": inv["uses"] + 1})
    audit(ctx, inv["spaceId"], "member.joined", {"handle": actor["handle"], "role": inv["role"],
                                                 "hint": inv["hint"]}, actor_id=actor["_id"])
    notify(ctx, inv["createdBy"], inv["spaceId"], "memberJoined",
           f"@{actor['handle']} joined {space['name']} as {inv['role']} with your invite {inv['hint']}…",
           data={"actorId": actor["_id"]})
    return {"spaceId": inv["spaceId"], "spaceName": space["name"], "role": inv["role"], "handle": actor["handle"]}


@mutation(args={"code": v.string()}, policy="authenticated")
def join(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Join the space of an invite code as the caller (a Convex deployment: the caller signed in
    with the deployment's auth). Returns ``{spaceId, spaceName, role, handle}``; joining again
    keeps the existing role. ``INVITE_UNKNOWN`` / ``INVITE_REVOKED`` / ``INVITE_EXPIRED`` /
    ``INVITE_USED_UP``, ``HANDLE_TAKEN`` (another member of the space has the caller's handle)."""
    inv = usable_invite(ctx, args["code"])
    return _use_invite(ctx, inv, ctx.caller.actor)


@internal_mutation(args={"code": v.string(), "handle": v.string(), "name": v.optional(v.string())})
def redeem(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The embedded backend's code exchange (``POST /api/invites/exchange``): a new human
    ``handle`` joins the space of ``code``; the server then mints that human's token. A handle
    that already belongs to anyone on this backend is refused (``HANDLE_TAKEN``): a token for it
    would be that person's. Returns ``{spaceId, spaceName, role, handle}``."""
    handle = args["handle"].strip()
    check_handle(handle)
    inv = usable_invite(ctx, args["code"])
    name = (args.get("name") or handle).strip()
    if not name or len(name) > 80:
        invalid("name must be 1-80 characters")
    if actor_by_subject(ctx, f"human:{handle}") is not None:
        fail("HANDLE_TAKEN", f"@{handle} is already someone's handle on this backend: choose another one",
             handle=handle)
    _handle_free_in(ctx, inv["spaceId"], handle, None)
    actor_id = ctx.db.insert("actors", {"subject": f"human:{handle}", "kind": "human", "handle": handle,
                                        "name": name})
    return _use_invite(ctx, inv, ctx.db.get(actor_id))


@query(args={"spaceId": v.id("spaces")}, policy="owner", scope="space")
def invites(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The space's invites, newest first: ``[{inviteId, hint, role, uses, maxUses, expiresAt,
    revoked, createdBy, createdByHandle, at}]`` (``maxUses`` / ``expiresAt`` null when unset;
    whether one has expired is the client's to say: a query does not read the clock)."""
    out = []
    for inv in ctx.db.query("invites").with_index("by_space", lambda q: q.eq("spaceId", args["spaceId"])).collect():
        by = ctx.db.get(inv["createdBy"])
        out.append({"inviteId": inv["_id"], "hint": inv["hint"], "role": inv["role"], "uses": inv["uses"],
                    "maxUses": inv.get("maxUses"), "expiresAt": inv.get("expiresAt"), "revoked": inv["revoked"],
                    "createdBy": inv["createdBy"], "createdByHandle": by["handle"] if by else "?",
                    "at": inv["_creationTime"]})
    return sorted(out, key=lambda r: r["at"], reverse=True)


@mutation(args={"spaceId": v.id("spaces"), "inviteId": v.id("invites")}, policy="owner", scope="space")
def revokeInvite(ctx: Any, args: dict[str, Any]) -> None:
    """Revoke an invite: its code stops working at once (members who joined with it stay)."""
    inv = ctx.db.get(args["inviteId"]) if ctx.db.normalize_id("invites", args["inviteId"]) else None
    if inv is None or inv["spaceId"] != args["spaceId"]:
        fail("NOT_FOUND", "no such invite in this space", what="invite", id=args["inviteId"])
    if inv["revoked"]:
        return
    ctx.db.patch(inv["_id"], {"revoked": True, "revokedBy": ctx.caller.actor_id})
    audit(ctx, args["spaceId"], "invite.revoked", {"hint": inv["hint"], "byHandle": ctx.caller.handle},
          actor_id=ctx.caller.actor_id)


@mutation(args={"spaceId": v.id("spaces"), "budgetUsd": v.union(v.number(), v.null())},
          policy="owner", scope="space")
def setBudget(ctx: Any, args: dict[str, Any]) -> None:
    """What the space may spend on agent runs (USD, all time; null: no limit). Runs queued
    after it is spent are refused with ``BUDGET_EXCEEDED``."""
    _set_budget(ctx, args["spaceId"], args["budgetUsd"])


def _set_budget(ctx: Any, space_id: str, budget: float | None) -> None:
    if budget is not None and not 0 <= budget <= 1_000_000:
        invalid("budgetUsd must be between 0 and 1000000 (or null: no limit)")
    space = ctx.db.get(space_id)
    if space.get("budgetUsd") == budget:
        return
    ctx.db.patch(space_id, {"budgetUsd": budget if budget is not None else UNDEFINED})
    audit(ctx, space_id, "space.budget", {"from": space.get("budgetUsd"), "to": budget,
                                          "byHandle": ctx.caller.handle}, actor_id=ctx.caller.actor_id)


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
                "agents": v.optional(v.array(AGENT)), "create": v.optional(v.boolean()),
                "budgetUsd": v.optional(v.union(v.number(), v.null()))},
          policy="authenticated")
def open(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """Everything the app needs to open a space by name, in one transaction: the caller's actor
    (display name ``actorName`` updated), the caller's space called ``name`` (created with the
    caller as owner when there is none and ``create`` is not false), and, for an owner, the
    ``agents`` added as editor members if missing and the space's budget set to ``budgetUsd``
    when given (null: no limit; the owner's config is the source of truth). Returns
    ``{spaceId, name, role, me, created}``, or None when no such space exists and ``create`` is
    false."""
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
        if "budgetUsd" in args:
            _set_budget(ctx, space_id, args["budgetUsd"])
    return {"spaceId": str(space_id), "name": name, "role": role, "me": ctx.db.get(actor["_id"]),
            "created": created}


@mutation(args={"spaceId": v.id("spaces"), "actorId": v.id("actors"), "role": ROLE}, policy="owner", scope="space")
def setRole(ctx: Any, args: dict[str, Any]) -> None:
    m = membership(ctx, args["spaceId"], args["actorId"])
    if m is None:
        fail("NOT_FOUND", "that actor is not a member of this space", what="member", id=args["actorId"])
    if m["role"] == "owner" and args["role"] != "owner" and len(_owners(ctx, args["spaceId"])) == 1:
        fail("LAST_OWNER", "a space keeps at least one owner")
    if m["role"] == args["role"]:
        return
    ctx.db.patch(m["_id"], {"role": args["role"]})
    audit(ctx, args["spaceId"], "member.role", {"handle": m["handle"], "from": m["role"], "to": args["role"],
                                                "byHandle": ctx.caller.handle}, actor_id=ctx.caller.actor_id)
    if args["actorId"] != ctx.caller.actor_id:
        notify(ctx, args["actorId"], args["spaceId"], "roleChanged",
               f"@{ctx.caller.handle} made you {args['role']} in {ctx.caller.space['name']}"
               + (" (you can read everything and write nothing)" if args["role"] == "viewer" else ""),
               data={"from": m["role"], "to": args["role"], "byHandle": ctx.caller.handle})


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
    audit(ctx, args["spaceId"], "member.removed", {"handle": m["handle"], "byHandle": ctx.caller.handle},
          actor_id=ctx.caller.actor_id)
    if args["actorId"] != ctx.caller.actor_id:
        notify(ctx, args["actorId"], args["spaceId"], "removed",
               f"@{ctx.caller.handle} removed you from {ctx.caller.space['name']}",
               data={"byHandle": ctx.caller.handle})


