"""Live streams: the UI cadence of agent output (DESIGN 2.5).

An agent streaming a reply or a draft writes at two cadences:

- persistence (~250 ms): ``messages:append`` / fenced ``drafts:append``, the source of truth;
- UI (~30 ms): ``streams:push``, **one** mutation per tick for *all* the worker's active
  streams, into ``liveStreams`` (one small row per stream: the tail not yet persisted).

Readers subscribe to ``streams:forSpace`` / ``forMessage`` / ``forArtifact`` and show
``merge(durable, row)`` (see :func:`collab.backend.model._live.merge`). Because the rows live in
their own table, a message list or a document is re-run at the persistence cadence only.

Pushes carry a per-stream write ``key`` chosen by the opener (a capability), so one worker
connection can push for several agents, each of which opened its own streams under its own
identity. The key is never returned by a query.
"""

from __future__ import annotations

from typing import Any

from collab.backend.functions import internal_mutation
from collab.backend.model import _live
from collab.backend.model import _lockcore as lk
from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import fail, invalid
from collab.backend.model._util import get_in
from collab.backend.model.messages import MAX_BODY
from collab.backend.model.schema import STREAM_KIND
from collab.backend.validators import v

STALE_MS = _live.STALE_MS
MIN_KEY = _live.MIN_KEY
MAX_CHUNKS = 64
MAX_CHUNK_TEXT = 100_000

CHUNK = v.object({"streamId": v.id("liveStreams"), "key": v.string(), "text": v.string(), "seq": v.number(),
                  "base": v.optional(v.number())})


@mutation(args={"spaceId": v.id("spaces"), "kind": STREAM_KIND, "key": v.string(),
                "messageId": v.optional(v.id("messages")), "artifactId": v.optional(v.id("artifacts")),
                "token": v.optional(v.number()), "runId": v.optional(v.id("runs"))},
          policy="editor", scope="space")
def open(ctx: Any, args: dict[str, Any]) -> str:
    """Open a live stream on the caller's streaming message (``kind: "message"``) or on the
    draft of the caller's lock hold (``kind: "draft"``, with the fencing ``token``). Opening
    the same target again with the same key returns the same stream. Returns the streamId."""
    caller, space_id, now = ctx.caller, args["spaceId"], ctx.now()
    if len(args["key"]) < MIN_KEY:
        invalid(f"key must be at least {MIN_KEY} characters")
    if "runId" in args:
        run = get_in(ctx, "runs", args["runId"])
        if run is None or run["spaceId"] != space_id:
            fail("NOT_FOUND", f"run {args['runId']} is not in this space", what="run", id=args["runId"])
    row: dict[str, Any] = {"spaceId": space_id, "actorId": caller.actor_id, "actorHandle": caller.handle,
                           "kind": args["kind"], "text": "", "seq": 0, "key": args["key"], "startedAt": now,
                           "updatedAt": now}
    if args["kind"] == "message":
        if "messageId" not in args:
            invalid("a message stream needs messageId")
        msg = get_in(ctx, "messages", args["messageId"])
        if msg is None or msg["spaceId"] != space_id:
            fail("NOT_FOUND", f"message {args['messageId']} is not in this space", what="message",
                 id=args["messageId"])
        if msg["authorId"] != caller.actor_id:
            fail("NOT_AUTHOR", "only the author streams into this message")
        if msg["state"] != "streaming":
            fail("NOT_STREAMING", f"this message is {msg['state']}, not streaming", state=msg["state"])
        existing = ctx.db.query("liveStreams").with_index(
            "by_message", lambda q: q.eq("messageId", msg["_id"])).first()
        row.update(messageId=msg["_id"], base=len(msg["body"]))
    else:
        if "artifactId" not in args or "token" not in args:
            invalid("a draft stream needs artifactId and token")
        artifact = get_in(ctx, "artifacts", args["artifactId"])
        if artifact is None or artifact["spaceId"] != space_id:
            fail("NOT_FOUND", f"artifact {args['artifactId']} is not in this space", what="artifact",
                 id=args["artifactId"])
        lock = lk.check_fence(ctx, caller.actor_id, artifact["_id"], args["token"])
        draft = ctx.db.query("drafts").with_index(
            "by_artifact_epoch", lambda q: q.eq("artifactId", artifact["_id"]).eq("epoch", lock["epoch"])).unique()
        existing = next((r for r in ctx.db.query("liveStreams").with_index(
            "by_artifact", lambda q: q.eq("artifactId", artifact["_id"])).collect()
            if r["kind"] == "draft" and r.get("epoch") == lock["epoch"]), None)
        row.update(artifactId=artifact["_id"], epoch=lock["epoch"], base=len(draft["content"]) if draft else 0)
    if existing is not None:
        if existing["key"] != args["key"]:
            fail("STREAM_OPEN", "another stream is already open on this target", streamId=existing["_id"])
        return str(existing["_id"])
    if "runId" in args:
        row["runId"] = args["runId"]
    return _live.open_row(ctx, row)


@mutation(args={"chunks": v.array(CHUNK)}, policy="authenticated")
def push(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Append new text to several streams in one commit (one call per UI tick for all of a
    worker's streams). A chunk's ``base`` (the durable length its writer has had
    acknowledged) drops the part of the tail that is now durable. Each chunk gets its own
    status, so one closed stream never fails the others: ``ok``, ``duplicate`` (``seq`` at or
    below the last applied), ``closed`` (no such stream any more), ``forbidden`` (wrong key),
    ``tooLong``. Returns ``[{streamId, status, seq}]``."""
    chunks = args["chunks"]
    if len(chunks) > MAX_CHUNKS:
        invalid(f"at most {MAX_CHUNKS} chunks per push")
    now = ctx.now()
    out: list[dict[str, Any]] = []
    for chunk in chunks:
        row = get_in(ctx, "liveStreams", chunk["streamId"])
        status = "ok"
        if row is None:
            status = "closed"
        elif row["key"] != chunk["key"]:
            status = "forbidden"
        elif chunk["seq"] <= row["seq"]:
            status = "duplicate"
        elif len(chunk["text"]) > MAX_CHUNK_TEXT:
            status = "tooLong"
        if status != "ok":
            out.append({"streamId": chunk["streamId"], "status": status, "seq": row["seq"] if row else None})
            continue
        assert row is not None
        tail, base = row["text"] + chunk["text"], row["base"]
        if chunk.get("base", base) > base:
            tail, base = tail[int(chunk["base"] - base):], chunk["base"]
        if len(tail) > MAX_BODY:
            out.append({"streamId": row["_id"], "status": "tooLong", "seq": row["seq"]})
            continue
        ctx.db.patch(row["_id"], {"text": tail, "base": base, "seq": chunk["seq"], "updatedAt": now})
        out.append({"streamId": row["_id"], "status": "ok", "seq": chunk["seq"]})
    return out


@mutation(args={"streamId": v.id("liveStreams"), "key": v.string()}, policy="authenticated")
def close(ctx: Any, args: dict[str, Any]) -> bool:
    """Delete a live row (a finished stream). ``messages:finish``, a saved / released / lost
    lock hold and a failed or cancelled run close their streams themselves. Returns whether a
    row was deleted."""
    row = get_in(ctx, "liveStreams", args["streamId"])
    if row is None:
        return False
    if row["key"] != args["key"]:
        fail("FORBIDDEN", "this stream's key does not match", required="key", role=None)
    _live.close_row(ctx, row)
    return True


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def forSpace(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Every live stream of the space (discussion pane: tails of streaming replies; tree:
    drafts being written), oldest first."""
    rows = ctx.db.query("liveStreams").with_index("by_space", lambda q: q.eq("spaceId", args["spaceId"])).collect()
    return [_live.public(r) for r in rows]


@query(args={"messageId": v.id("messages")}, policy="viewer", scope="message")
def forMessage(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """The live tail of a streaming message, or None."""
    return _live.public(ctx.db.query("liveStreams").with_index(
        "by_message", lambda q: q.eq("messageId", args["messageId"])).first())


@query(args={"artifactId": v.id("artifacts")}, policy="viewer", scope="artifact")
def forArtifact(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """The live tail of the draft being streamed into the artifact (by its current holder), or
    None. Show it after ``drafts:get``'s content with the merge rule."""
    rows = ctx.db.query("liveStreams").with_index(
        "by_artifact", lambda q: q.eq("artifactId", args["artifactId"])).collect()
    return _live.public(next((r for r in reversed(rows) if r["kind"] == "draft"), None))


@internal_mutation(args={"streamId": v.id("liveStreams")})
def expire(ctx: Any, args: dict[str, Any]) -> bool:
    """Sweeper: close a stream nobody pushed to for ``STALE_MS`` (its message is marked
    failed, with the text it had); a live one is checked again later (one job per stream per
    ``STALE_MS``, not one per push). A stream whose run is still claimed by a live worker is
    not abandoned, only waiting (a model serving other runs first): the run's own lease
    expiry closes it if its worker goes away."""
    row = ctx.db.get(args["streamId"])
    if row is None:
        return False
    due = row["updatedAt"] + STALE_MS
    run = get_in(ctx, "runs", row["runId"]) if row.get("runId") else None
    if run is not None and run["status"] in ("claimed", "streaming") and run.get("leaseExpiresAt", 0) > ctx.now():
        due = max(due, ctx.now() + STALE_MS)
    if due > ctx.now():
        ctx.db.patch(row["_id"], {"expiryJobId": _live.schedule_expiry(ctx, row["_id"], due)})
        return False
    # This job is the row's expiry job: close it without cancelling the running job.
    _live.close_row(ctx, {**row, "expiryJobId": None}, "the stream stopped (its writer went away)")
    return True
