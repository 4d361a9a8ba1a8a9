"""A new version of an artifact under its lock: the one transition every content change goes
through (a save, a restore, a picked variation, an approved pipeline stage).

Fence check + new version + release + grant to the queue head + audit, in the calling
mutation's transaction. A retry with the same idempotency key returns the first result.

While a pipeline holds the artifact (``locks.pipelineId``), a save under the lock is refused
(``PIPELINE_HOLDS``: the stage's actor hands its output in for review instead); the approval
of a stage commits in *pipeline mode*: the lock row must name that pipeline and have no
holder, the version's author is the stage's actor and its ``lockEpoch`` the hold the output
was written under, and the lock stays with the pipeline.
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
                   *, restored_from: float | None = None, provenance: dict[str, Any] | None = None,
                   pipeline: dict[str, Any] | None = None, author_id: str | None = None,
                   epoch: float | None = None) -> dict[str, Any]:
    """``args`` carries ``token``, ``idempotencyKey?`` and ``message?`` of the caller's call
    (in pipeline mode, ``message?`` only; ``author_id`` and ``epoch`` name the stage's actor
    and its hold). Returns ``{version, versionId, grantedTo}``."""
    caller = ctx.caller
    key = args.get("idempotencyKey")
    rec = lk.recall(ctx, caller.actor_id, key, fn, artifact["_id"])
    if rec is not None:
        return dict(rec["result"])  # a retry: the first result, applied once
    if pipeline is None:
        lock = lk.check_fence(ctx, caller.actor_id, artifact["_id"], args["token"])
        if lock.get("pipelineId"):
            from collab.backend.model import _pipeline

            _pipeline.refuse(ctx, lock, ctx.db.get(lock["pipelineId"]), code="PIPELINE_HOLDS")
        author, lock_epoch = caller.actor_id, lock["epoch"]
    else:
        lock = lk.lock_of(ctx, artifact["_id"])
        if lock.get("pipelineId") != pipeline["_id"] or lock.get("holderId") is not None:
            raise RuntimeError("a pipeline commits only while it holds the artifact and nobody holds the lock")
        author, lock_epoch = author_id or caller.actor_id, epoch
    check_content(content)
    now, number = ctx.now(), artifact["version"] + 1
    row: dict[str, Any] = {"artifactId": artifact["_id"], "spaceId": artifact["spaceId"], "version": number,
                           "content": content, "authorId": author, "source": source,
                           "parentVersion": artifact["version"], "at": now}
    if lock_epoch is not None:
        row["lockEpoch"] = lock_epoch
    if args.get("message"):
        row["message"] = args["message"]
    if restored_from is not None:
        row["restoredFrom"] = restored_from
    if provenance is not None:
        row["provenance"] = provenance
    version_id = ctx.db.insert("versions", row)
    ctx.db.patch(artifact["_id"], {"content": content, "version": number, "updatedBy": author, "updatedAt": now})
    audit(ctx, artifact["spaceId"], "artifact.saved",
          {"version": number, "epoch": lock_epoch, "source": source, "restoredFrom": restored_from,
           "provenance": provenance},
          artifact_id=artifact["_id"], actor_id=author)
    granted = None
    if pipeline is None:
        lock = lk.end_hold(ctx, lock, "saved", by=caller.actor)
        granted = lk.grant_next(ctx, lock)
    result = {"version": number, "versionId": version_id, "grantedTo": granted["holder"] if granted else None}
    lk.remember(ctx, caller.actor_id, key, fn, artifact["_id"], result)
    return result
