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
