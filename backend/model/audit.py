"""The audit log: append-only rows written by the other modules (lock grants and releases,
saves, force releases with their reason, membership changes, runs)."""

from __future__ import annotations

from typing import Any

from collab.backend.model._auth import query
from collab.backend.model._limits import row_limit
from collab.backend.validators import v


@query(args={"spaceId": v.id("spaces"), "artifactId": v.optional(v.id("artifacts")),
             "limit": v.optional(v.number())}, policy="viewer", scope="space")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first (default 200, at most 1000), of the space or of one of its artifacts."""
    limit = row_limit(args, 200)
    if "artifactId" in args:
        rows = ctx.db.query("audit").with_index(
            "by_artifact", lambda q: q.eq("artifactId", args["artifactId"])).order("desc").take(limit)
        return [r for r in rows if r["spaceId"] == args["spaceId"]]
    return ctx.db.query("audit").with_index(
        "by_space", lambda q: q.eq("spaceId", args["spaceId"])).order("desc").take(limit)


@query(args={"spaceId": v.id("spaces"), "artifactId": v.optional(v.id("artifacts")), "numItems": v.number(),
             "cursor": v.union(v.string(), v.null())}, policy="viewer", scope="space")
def page(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The whole log, newest first, in pages (``{page, isDone, continueCursor}``), of the space
    or of one of its artifacts. ``numItems`` at most 1000."""
    if "artifactId" in args:
        q = ctx.db.query("audit").with_index("by_artifact", lambda r: r.eq("artifactId", args["artifactId"])).filter(
            lambda f: f.eq(f.field("spaceId"), args["spaceId"]))
    else:
        q = ctx.db.query("audit").with_index("by_space", lambda r: r.eq("spaceId", args["spaceId"]))
    return q.order("desc").paginate({"numItems": row_limit(args, 0, field="numItems"), "cursor": args["cursor"]})
