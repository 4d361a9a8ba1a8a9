"""A new version of an artifact under its lock: the one transition every content change goes
through (a save, a restore, a picked variation, an approved pipeline stage).

Fence check + new version + release + grant to the queue head + audit, in the calling
mutation's transaction. A retry with the same idempotency key returns the first result.
"""

from __future__ import annotations

from typing import Any

from collab.backend.model import _lockcore as lk
from collab.backend.model._errors import invalid
from collab.backend.model._util import audit

MAX_CONTENT = 2_000_000


def check_content(content: str) -> None:
    if len(content) > MAX_CONTENT:
        invalid(f"content is larger than {MAX_CONTENT} characters", size=len(content))


def commit_version(ctx: Any, artifact: dict[str, Any], args: dict[str, Any], fn: str, content: str, source: str,
                   *, restored_from: float | None = None, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """``args`` carries ``token``, ``idempotencyKey?`` and ``message?`` of the caller's call.
    Returns ``{version, versionId, grantedTo}``."""
    caller = ctx.caller
    key = args.get("idempotencyKey")
    rec = lk.recall(ctx, caller.actor_id, key, fn, artifact["_id"])
    if rec is not None:
        return dict(rec["result"])  # a retry: the first result, applied once
    lock = lk.check_fence(ctx, caller.actor_id, artifact["_id"], args["token"])
    check_content(content)
    now, number = ctx.now(), artifact["version"] + 1
    row: dict[str, Any] = {"artifactId": artifact["_id"], "spaceId": artifact["spaceId"], "version": number,
                           "content": content, "authorId": caller.actor_id, "source": source,
                           "parentVersion": artifact["version"], "lockEpoch": lock["epoch"], "at": now}
    if args.get("message"):
        row["message"] = args["message"]
    if restored_from is not None:
        row["restoredFrom"] = restored_from
    if provenance is not None:
        row["provenance"] = provenance
    version_id = ctx.db.insert("versions", row)
    ctx.db.patch(artifact["_id"], {"content": content, "version": number, "updatedBy": caller.actor_id,
                                   "updatedAt": now})
    audit(ctx, artifact["spaceId"], "artifact.saved",
          {"version": number, "epoch": lock["epoch"], "source": source, "restoredFrom": restored_from,
           "provenance": provenance},
          artifact_id=artifact["_id"], actor_id=caller.actor_id)
    lock = lk.end_hold(ctx, lock, "saved", by=caller.actor)
    granted = lk.grant_next(ctx, lock)
    result = {"version": number, "versionId": version_id, "grantedTo": granted["holder"] if granted else None}
    lk.remember(ctx, caller.actor_id, key, fn, artifact["_id"], result)
    return result
