"""What the app knows about the backend's errors-as-data (``ConvexError`` data ``{code,
message, ...}``, docs/API.md): the codes it acts on and the sentence it shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collab.backend_client.errors import ConvexError

__all__ = ["FENCE_LOST", "RUN_OVER", "LockConflict", "Queued", "error_code", "error_text"]

# A fenced write or renewal refused because the hold is over (expired, forced open, replaced).
FENCE_LOST = frozenset({"STALE_TOKEN", "NOT_HOLDER", "INVALID_TOKEN"})
# A worker's claim on a run is over: cancelled from the app, or the claim lease was lost.
RUN_OVER = frozenset({"RUN_CANCELLED", "RUN_LOST"})


def error_code(exc: BaseException) -> str | None:
    """The ``code`` of a backend error-as-data (``LOCKED``, ``STALE_TOKEN``...), else None."""
    if isinstance(exc, ConvexError) and isinstance(exc.data, dict):
        code = exc.data.get("code")
        return str(code) if code is not None else None
    return None


def error_text(exc: BaseException) -> str:
    """A one-line message for a rejected call (ConvexError data carries code + message)."""
    if isinstance(exc, ConvexError) and isinstance(exc.data, dict):
        data = exc.data
        return str(data.get("message") or data.get("code") or exc)
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__


@dataclass
class LockConflict:
    """Someone else holds the lock: who (human or agent), since when, how many wait. Or a
    pipeline holds the artifact (``pipeline``: its summary; ``message`` says which stage is
    where, and who may cancel it): nobody waits behind a pipeline."""

    handle: str
    kind: str
    since_ms: float
    queue_length: int
    pipeline: dict[str, Any] | None = None
    message: str = ""

    @classmethod
    def from_error(cls, data: dict[str, Any]) -> LockConflict:
        holder = data.get("holder") or {}
        pipeline = data.get("pipeline")
        return cls(
            handle=str(holder.get("handle") or (pipeline or {}).get("actorHandle") or "?"),
            kind=str(holder.get("kind", "human")),
            since_ms=float(holder.get("since") or 0),
            queue_length=int(data.get("queueLength") or 0),
            pipeline=dict(pipeline) if isinstance(pipeline, dict) else None,
            message=str(data.get("message") or ""),
        )


@dataclass
class Queued:
    """The caller waits in the lock's FIFO queue."""

    position: int
    queue_length: int
    holder: dict[str, Any] = field(default_factory=dict)
