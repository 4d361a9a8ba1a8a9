"""Live tails of agents' streams (``liveStreams``, the ~30 ms UI cadence) merged with the
durable text (message body or draft content, the ~250 ms persistence cadence).

The rule is the backend's (``collab.backend.model._live.merge``, docs/API.md "streams"),
restated here because widgets may not import the backend: the durable text, then the part of
the tail it does not have yet. The writer raises ``base`` only after the durable write that
reached it was acknowledged, so a consistent snapshot has ``len(durable) >= base``; if a pane
ever sees otherwise (two queries delivered a frame apart) the tail cannot be placed and the
durable text alone is shown until the next value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def merge(durable: str, row: dict[str, Any] | None) -> str:
    if row is None:
        return durable
    base = int(row.get("base") or 0)
    if len(durable) < base:
        return durable
    return durable + str(row.get("text") or "")[len(durable) - base:]


def rows_by_message(rows: Iterable[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """``streams:forSpace`` rows of reply streams, keyed by their message id."""
    return {str(r["messageId"]): r for r in rows or [] if r.get("kind") == "message" and r.get("messageId")}


def draft_row_matches(draft: dict[str, Any] | None, row: dict[str, Any] | None) -> bool:
    """A ``streams:forArtifact`` row belongs to a ``drafts:get`` draft only for the same lock
    hold (epoch): a tail of an earlier hold must never be appended to a new draft."""
    if draft is None or row is None:
        return False
    return row.get("epoch") is None or float(row["epoch"]) == float(draft.get("epoch", -1))
