"""Live-stream rows (``liveStreams``): helpers shared by ``streams``, ``messages``, ``runs`` and
the lock core, which end a stream in the same transaction as the event that ends it (a finished
message, a saved or lost lock hold, a failed or cancelled run), so no reader ever sees a
durable text and a stale tail at the same timestamp.

A row holds the *tail* of a stream: the text after offset ``base`` of the durable text (the
message body or the draft content) that the writer has not persisted yet. What a pane shows is
``merge(durable, row)`` (the wire's rule, ``collab.wire.text.merge``).
"""

from __future__ import annotations

from typing import Any

from collab.backend.database import UNDEFINED
from collab.wire.text import merge

__all__ = ["HIDDEN", "MIN_KEY", "STALE_MS", "close_row", "end_draft", "end_message", "end_proposal", "end_run",
           "merge",
           "open_row", "public", "schedule_expiry"]

HIDDEN = ("key", "expiryJobId")
# A stream nobody pushed to for this long is closed by the sweeper (its message marked failed).
STALE_MS = 60_000
MIN_KEY = 16


def schedule_expiry(ctx: Any, row_id: str, at: float) -> str:
    return str(ctx.scheduler.run_at(at, "streams:expire", {"streamId": row_id}))


def open_row(ctx: Any, row: dict[str, Any]) -> str:
    """Insert a live row (checked by the caller) with its sweeper job: ``streams:open`` and
    ``messages:openReply`` (which opens the reply and its stream in one transaction)."""
    row_id = ctx.db.insert("liveStreams", row)
    ctx.db.patch(row_id, {"expiryJobId": schedule_expiry(ctx, row_id, row["startedAt"] + STALE_MS)})
    return str(row_id)


def public(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A row as readers get it: without the write key (a capability) and the sweeper's job."""
    if row is None:
        return None
    return {k: val for k, val in row.items() if k not in HIDDEN}


def _delete(ctx: Any, row: dict[str, Any]) -> None:
    if row.get("expiryJobId"):
        ctx.scheduler.cancel(row["expiryJobId"])
    ctx.db.delete(row["_id"])


def close_row(ctx: Any, row: dict[str, Any], error: str | None = None, status: str = "failed") -> None:
    """Delete a live row. A message or proposal stream that ends without its finish (run
    failed, cancelled or lost, stream abandoned) keeps its text: the tail is folded into the
    body / content and it is marked ``status`` (failed or cancelled) with ``error``."""
    if row["kind"] == "message" and error is not None:
        msg = ctx.db.get(row["messageId"])
        if msg is not None and msg["state"] == "streaming":
            ctx.db.patch(msg["_id"], {"state": "failed", "error": error, "body": merge(msg["body"], row)})
    if row["kind"] == "proposal" and error is not None:
        prop = ctx.db.get(row["proposalId"])
        if prop is not None and prop["status"] == "streaming":
            ctx.db.patch(prop["_id"], {"status": status, "error": error, "content": merge(prop["content"], row),
                                       "updatedAt": ctx.now()})
    _delete(ctx, row)


def end_message(ctx: Any, message_id: str) -> None:
    for row in ctx.db.query("liveStreams").with_index("by_message", lambda q: q.eq("messageId", message_id)).collect():
        _delete(ctx, row)


def end_draft(ctx: Any, artifact_id: str, epoch: float) -> None:
    """The hold ``epoch`` ended: its draft stream's tail goes (the durable draft is kept or
    saved by the lock core)."""
    for row in ctx.db.query("liveStreams").with_index("by_artifact", lambda q: q.eq("artifactId", artifact_id)).collect():
        if row["kind"] == "draft" and row.get("epoch") == epoch:
            _delete(ctx, row)


def end_run(ctx: Any, run_id: str, error: str, outcome: str = "failed") -> None:
    """A run ended without its worker finishing its streams: ``outcome`` failed, cancelled, or
    requeued (another attempt will write again). Its streams close with their text, and the
    proposals it was writing (or had not started) say so: failed or cancelled with ``error``,
    or back to queued and empty for the next attempt."""
    status = "cancelled" if outcome == "cancelled" else "failed"
    for row in ctx.db.query("liveStreams").with_index("by_run", lambda q: q.eq("runId", run_id)).collect():
        close_row(ctx, row, error, status)
    for prop in ctx.db.query("proposals").with_index("by_run", lambda q: q.eq("runId", run_id)).collect():
        if outcome == "requeued" and prop["status"] in ("streaming", "failed", "cancelled"):
            ctx.db.patch(prop["_id"], {"status": "queued", "content": "", "error": UNDEFINED, "updatedAt": ctx.now()})
        elif outcome != "requeued" and prop["status"] in ("queued", "streaming"):
            ctx.db.patch(prop["_id"], {"status": status, "error": error, "updatedAt": ctx.now()})


def end_proposal(ctx: Any, proposal_id: str) -> None:
    for row in ctx.db.query("liveStreams").with_index("by_proposal", lambda q: q.eq("proposalId", proposal_id)).collect():
        _delete(ctx, row)
