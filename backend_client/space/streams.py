"""Live tails of agents' streams (``liveStreams``, the ~30 ms UI cadence) joined with the
durable text (message body, draft content: the ~250 ms persistence cadence). The join itself
is the wire's rule (``collab.wire.text.merge``, the backend applies the same); this module
picks which row belongs to which durable text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from collab.wire.text import merge

__all__ = ["draft_row_matches", "merge", "rows_by_message"]


def rows_by_message(rows: Iterable[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """``streams:forSpace`` rows of reply streams, keyed by their message id."""
    return {str(r["messageId"]): r for r in rows or [] if r.get("kind") == "message" and r.get("messageId")}


def draft_row_matches(draft: dict[str, Any] | None, row: dict[str, Any] | None) -> bool:
    """A ``streams:forArtifact`` row belongs to a ``drafts:get`` draft only for the same lock
    hold (epoch): a tail of an earlier hold must never be appended to a new draft."""
    if draft is None or row is None:
        return False
    return row.get("epoch") is None or float(row["epoch"]) == float(draft.get("epoch", -1))
