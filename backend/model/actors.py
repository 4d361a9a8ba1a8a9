"""Actors: the humans and agents behind tokens (``sub`` = ``human:<handle>`` / ``agent:<handle>``)."""

from __future__ import annotations

from typing import Any

from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import invalid
from collab.backend.validators import v


@query(args={}, policy="authenticated")
def me(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """The caller's actor, or None before its first mutation (queries cannot create rows)."""
    return ctx.caller.actor


@mutation(args={"name": v.optional(v.string())}, policy="authenticated")
def ensure(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Create the caller's actor on first use (the wrapper did) and update its display name."""
    actor = ctx.caller.actor
    if "name" in args:
        name = args["name"].strip()
        if not name or len(name) > 80:
            invalid("name must be 1-80 characters")
        if name != actor["name"]:
            ctx.db.patch(actor["_id"], {"name": name})
            actor = ctx.db.get(actor["_id"])
    return actor
