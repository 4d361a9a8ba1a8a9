"""The server's side of the story: the last StateVersion and the query results it sent.

Results are kept by query id. Every Transition must start exactly where the previous one ended
(PROTOCOL.md 3.1); a gap means we missed or misordered something, and the only safe answer is to
reconnect and rebuild, so :meth:`RemoteQuerySet.transition` raises :class:`ProtocolError`.

On reconnect the *version* resets to 0/0/0 (the server starts over) but the results are kept, so
watchers keep showing the last known values instead of flashing to "loading" while the socket
comes back; the first Transition on the new socket replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collab.backend_client.errors import ProtocolError
from collab.wire.messages import QueryFailed, QueryUpdated, Transition
from collab.wire.values import ValueError_, decode_ts, json_to_convex

DECODE_ERROR = "ClientDecodeError"  # also in frames.py: a result this client could not read

__all__ = ["QueryResult", "Version", "RemoteQuerySet"]


@dataclass(slots=True, frozen=True)
class QueryResult:
    """One query outcome. ``error`` is None on success. ``has_data`` tells a ConvexError
    (structured ``error_data``, possibly null) from a plain failure."""

    value: Any = None
    error: str | None = None
    error_data: Any = None
    has_data: bool = False
    log_lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True, frozen=True)
class Version:
    query_set: int = 0
    identity: int = 0
    ts: int = 0


ZERO = Version()


@dataclass(slots=True)
class RemoteQuerySet:
    version: Version = ZERO
    # The encoded ts of `version`, compared as a string on the hot path (no decode needed).
    version_ts_raw: str = "AAAAAAAAAAA="
    results: dict[int, QueryResult] = field(default_factory=dict)
    # (query id, why) for each result of the last Transition that was JSON but not a Convex
    # value: that query fails, the others apply (frames.py handles frames that are not JSON).
    unreadable: list[tuple[int, str]] = field(default_factory=list)

    def transition(self, msg: Transition, decode_values: bool = True) -> list[int]:
        """Apply one Transition; return the query ids whose results changed (or were removed).

        ``decode_values`` is False when the frame holds no ``"$`` at all, so the Convex-JSON
        walk can be skipped (the common case: plain JSON values)."""
        start = msg.startVersion
        v = self.version
        if (
            start.querySet != v.query_set
            or start.identity != v.identity
            or (start.ts != self.version_ts_raw and decode_ts(start.ts) != v.ts)
        ):
            raise ProtocolError(
                f"Transition startVersion {start.querySet}/{start.identity}/{start.ts} does not"
                f" follow our version {v.query_set}/{v.identity}/{self.version_ts_raw}"
            )
        end = msg.endVersion
        end_ts = decode_ts(end.ts) if end.ts != self.version_ts_raw else v.ts
        if end_ts < v.ts:
            raise ProtocolError(f"Transition ts went backwards: {v.ts} -> {end_ts}")
        changed: list[int] = []
        results = self.results
        self.unreadable = []
        for mod in msg.modifications:
            try:
                if isinstance(mod, QueryUpdated):
                    value = json_to_convex(mod.value) if decode_values else mod.value
                    results[mod.queryId] = QueryResult(value=value, log_lines=tuple(mod.logLines))
                elif isinstance(mod, QueryFailed):
                    has_data = "errorData" in mod.model_fields_set
                    data = json_to_convex(mod.errorData) if has_data else None
                    results[mod.queryId] = QueryResult(
                        error=mod.errorMessage,
                        error_data=data,
                        has_data=has_data,
                        log_lines=tuple(mod.logLines),
                    )
                else:
                    results.pop(mod.queryId, None)
            except ValueError_ as exc:
                why = str(exc)
                results[mod.queryId] = QueryResult(
                    error=f"{DECODE_ERROR}: the server's result for this query could not be read ({why})"
                )
                self.unreadable.append((mod.queryId, why))
            changed.append(mod.queryId)
        self.version = Version(end.querySet, end.identity, end_ts)
        self.version_ts_raw = end.ts
        return changed

    @property
    def ts(self) -> int:
        return self.version.ts

    def restart(self, live_query_ids: set[int] | dict[int, Any]) -> None:
        """New socket: version back to zero; drop results of queries nobody watches any more."""
        self.version = ZERO
        self.version_ts_raw = "AAAAAAAAAAA="
        for qid in [q for q in self.results if q not in live_query_ids]:
            del self.results[qid]
