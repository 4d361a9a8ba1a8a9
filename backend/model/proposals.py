"""Proposals: candidate content for an artifact, streamed but not saved (DESIGN 2.3).

A proposal is written by one author (an agent's run, or a human composing parts) at the two
cadences of every stream: the durable ``content`` grows with ``proposals:append`` (persistence
cadence) and its not-yet-persisted tail is a ``liveStreams`` row of kind "proposal" pushed with
``streams:push`` (UI cadence). It is not tied to a lock epoch: five can stream into one artifact
at once while nobody holds its lock. It becomes a version only through the lock
(``variations:pick``, an approved pipeline stage).

A pipeline stage's output (provenance ``{kind: "stage", ...}``) is written under the
artifact's lock: ``open`` and ``append`` then carry the stage actor's fencing ``token`` and are
refused like a stale draft delta once that hold is over; it is handed in with
``pipelines:submit``, not ``finish``.

Status: queued (its run has not started) -> streaming -> done / failed / cancelled. A run that
ends without finishing its proposal closes it with the text it had (``_live.end_run``).
``provenance`` says what it is: ``{kind: "variation", roundId, index}``, ``{kind: "compose",
roundId, parts, instruction?}``, or a pipeline stage's output.
"""

from __future__ import annotations

from typing import Any

from collab.backend.model import _live, _pipeline
from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import fail, invalid
from collab.backend.model._versions import MAX_CONTENT
from collab.backend.validators import v

FINISHED = ("done", "failed", "cancelled")


def _own(ctx: Any) -> dict[str, Any]:
    """The caller's proposal, still being written."""
    prop = ctx.caller.target
    if prop["authorId"] != ctx.caller.actor_id:
        fail("NOT_AUTHOR", "only the author writes this proposal")
    if prop["status"] in FINISHED:
        fail("NOT_STREAMING", f"this proposal is {prop['status']}", state=prop["status"])
    return prop


@mutation(args={"proposalId": v.id("proposals"), "key": v.string(), "token": v.optional(v.number())},
          policy="editor", scope="proposal")
def open(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Start writing the caller's proposal: it becomes ``streaming`` and gets its live stream
    (write capability ``key``, >= 16 characters) in one transaction. Opening it again with the
    same key returns the same stream. Returns ``{streamId, content}`` (the content so far). A
    stage's output needs the ``token`` of the stage actor's hold."""
    prop, now = _own(ctx), ctx.now()
    _pipeline.fence_stage(ctx, prop, args.get("token"))
    if len(args["key"]) < _live.MIN_KEY:
        invalid(f"key must be at least {_live.MIN_KEY} characters")
    existing = ctx.db.query("liveStreams").with_index("by_proposal", lambda q: q.eq("proposalId", prop["_id"])).first()
    if existing is not None:
        if existing["key"] != args["key"]:
            fail("STREAM_OPEN", "another stream is already open on this proposal", streamId=existing["_id"])
        return {"streamId": existing["_id"], "content": prop["content"]}
    ctx.db.patch(prop["_id"], {"status": "streaming", "updatedAt": now})
    row: dict[str, Any] = {"spaceId": prop["spaceId"], "actorId": ctx.caller.actor_id, "actorHandle": ctx.caller.handle,
                           "kind": "proposal", "proposalId": prop["_id"], "artifactId": prop["artifactId"],
                           "base": len(prop["content"]), "text": "", "seq": 0, "key": args["key"], "startedAt": now,
                           "updatedAt": now}
    if prop.get("runId"):
        row["runId"] = prop["runId"]
    return {"streamId": _live.open_row(ctx, row), "content": prop["content"]}


@mutation(args={"proposalId": v.id("proposals"), "text": v.string(), "token": v.optional(v.number())},
          policy="editor", scope="proposal")
def append(ctx: Any, args: dict[str, Any]) -> None:
    """Append streamed text (at the persistence cadence, never per token); fenced by ``token``
    for a stage's output."""
    prop = _own(ctx)
    _pipeline.fence_stage(ctx, prop, args.get("token"))
    if len(prop["content"]) + len(args["text"]) > MAX_CONTENT:
        invalid(f"a proposal is at most {MAX_CONTENT} characters")
    ctx.db.patch(prop["_id"], {"content": prop["content"] + args["text"], "updatedAt": ctx.now()})


@mutation(args={"proposalId": v.id("proposals"), "status": v.union(v.literal("done"), v.literal("failed")),
                "content": v.optional(v.string()), "error": v.optional(v.string()), "usage": v.optional(v.any()),
                "costUsd": v.optional(v.number())}, policy="editor", scope="proposal")
def finish(ctx: Any, args: dict[str, Any]) -> None:
    """End the caller's proposal (optionally with its final content), with the run's usage and
    cost; its live stream goes in the same commit. (A stage's output ends with
    ``pipelines:submit``, or with its run.)"""
    prop = _own(ctx)
    if (prop.get("provenance") or {}).get("kind") == "stage":
        fail("STAGE_OUTPUT", "a stage's output is handed in with pipelines:submit (or ends with its run)")
    fields: dict[str, Any] = {"status": args["status"], "updatedAt": ctx.now()}
    for key in ("content", "error", "usage", "costUsd"):
        if key in args:
            fields[key] = args[key]
    if len(fields.get("content", prop["content"])) > MAX_CONTENT:
        invalid(f"a proposal is at most {MAX_CONTENT} characters")
    ctx.db.patch(prop["_id"], fields)
    _live.end_proposal(ctx, prop["_id"])


@query(args={"proposalId": v.id("proposals")}, policy="viewer", scope="proposal")
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.caller.target


@query(args={"artifactId": v.id("artifacts")}, policy="viewer", scope="artifact")
def live(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The live tails (~30 ms) of every proposal being streamed into the artifact: show each
    after its proposal's content with the merge rule."""
    rows = ctx.db.query("liveStreams").with_index("by_artifact", lambda q: q.eq("artifactId", args["artifactId"])).collect()
    return [r for r in (_live.public(r) for r in rows if r["kind"] == "proposal") if r is not None]
