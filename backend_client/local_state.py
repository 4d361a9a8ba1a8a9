"""What the client wants from the server: its query set, query-set and identity versions, auth.

Holds no query *results* (see ``remote_query_set`` and ``optimistic``). Every method returns the
message to send, or ``None``; the caller decides whether a socket is there to carry it. When no
socket is open the message is simply dropped: :meth:`LocalSyncState.restart` rebuilds the whole
query set from scratch on the next connection, so nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from collab.wire.values import convex_to_json, dumps

__all__ = ["AuthToken", "LocalQuery", "LocalSyncState", "query_token", "normalize_args"]

QueryToken = str


def normalize_args(value: Any) -> Any:
    """Plain ``int`` and ``float`` are the same Convex type (Float64), so ``{"n": 1}`` and
    ``{"n": 1.0}`` must map to one subscription; Int64/bool stay distinct."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and type(value) is int:
        return float(value)
    if isinstance(value, dict):
        return {k: normalize_args(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize_args(v) for v in value]
    return value


def query_token(udf_path: str, args: dict[str, Any]) -> QueryToken:
    """The identity of a subscription: canonical path + canonical (sorted-key) Convex-JSON args.
    Never leaves the process, so text that is not valid Unicode is no reason to raise here:
    the server answers such arguments with ``INVALID_ARGUMENT``, as for any other client."""
    return udf_path + "|" + dumps(normalize_args(args), strict_text=False)


@dataclass(slots=True)
class AuthToken:
    token_type: Literal["User", "Admin"]
    value: str
    acting_as: dict[str, Any] | None = None

    def message(self, base_version: int) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "Authenticate",
            "baseVersion": base_version,
            "tokenType": self.token_type,
            "value": self.value,
        }
        if self.acting_as is not None:
            msg["impersonating"] = convex_to_json(self.acting_as)
        return msg


@dataclass(slots=True)
class LocalQuery:
    query_id: int
    token: QueryToken
    udf_path: str
    args: dict[str, Any]
    wire_args: Any  # args already in Convex-JSON form, encoded once
    subscribers: int = 1
    journal: str | None = None


@dataclass(slots=True)
class LocalSyncState:
    next_query_id: int = 0
    query_set_version: int = 0
    identity_version: int = 0
    auth: AuthToken | None = None
    queries: dict[QueryToken, LocalQuery] = field(default_factory=dict)
    by_id: dict[int, LocalQuery] = field(default_factory=dict)
    # Query ids re-added at the last restart that have not had a result since: while any are
    # left, the connection has not proven itself, so the reconnect backoff is not reset.
    outstanding_since_restart: set[int] = field(default_factory=set)
    auth_outstanding_since_restart: bool = False

    # --- query set ---------------------------------------------------------------------------

    def subscribe(
        self, udf_path: str, args: dict[str, Any], token: QueryToken | None = None
    ) -> tuple[LocalQuery, dict[str, Any] | None]:
        token = token or query_token(udf_path, args)
        existing = self.queries.get(token)
        if existing is not None:
            existing.subscribers += 1
            return existing, None
        q = LocalQuery(self.next_query_id, token, udf_path, args, convex_to_json(args))
        self.next_query_id += 1
        self.queries[token] = q
        self.by_id[q.query_id] = q
        return q, self._modify([self._add(q)])

    def unsubscribe(self, token: QueryToken) -> dict[str, Any] | None:
        q = self.queries.get(token)
        if q is None:
            return None
        if q.subscribers > 1:
            q.subscribers -= 1
            return None
        del self.queries[token]
        del self.by_id[q.query_id]
        self.outstanding_since_restart.discard(q.query_id)
        return self._modify([{"type": "Remove", "queryId": q.query_id}])

    def _add(self, q: LocalQuery) -> dict[str, Any]:
        return {
            "type": "Add",
            "queryId": q.query_id,
            "udfPath": q.udf_path,
            "args": [q.wire_args],
            "journal": q.journal,
        }

    def _modify(self, modifications: list[dict[str, Any]]) -> dict[str, Any]:
        base = self.query_set_version
        self.query_set_version = base + 1
        return {
            "type": "ModifyQuerySet",
            "baseVersion": base,
            "newVersion": base + 1,
            "modifications": modifications,
        }

    def saw_result(self, query_id: int, journal: str | None, has_journal: bool) -> None:
        self.outstanding_since_restart.discard(query_id)
        if has_journal:
            q = self.by_id.get(query_id)
            if q is not None:  # we may have unsubscribed since
                q.journal = journal

    # --- auth ---------------------------------------------------------------------------------

    def set_auth(self, auth: AuthToken | None) -> dict[str, Any]:
        """New credentials on a live connection: Authenticate with the current identity
        version as base, then bump it (the server does the same on receipt)."""
        self.auth = auth
        base = self.identity_version
        self.identity_version = base + 1
        if auth is None:
            self.auth_outstanding_since_restart = False
            return {"type": "Authenticate", "baseVersion": base, "tokenType": "None"}
        return auth.message(base)

    def is_current_or_newer_identity(self, version: int) -> bool:
        return version >= self.identity_version

    # --- reconnect ----------------------------------------------------------------------------

    def restart(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Messages that rebuild the server's view on a fresh socket: ModifyQuerySet 0 -> 1 with
        every query (same ids, last journals), and Authenticate{baseVersion: 0} if we have auth.
        The server starts every connection at querySet 0 / identity 0."""
        self.outstanding_since_restart = set(self.by_id)
        self.query_set_version = 1
        query_set = {
            "type": "ModifyQuerySet",
            "baseVersion": 0,
            "newVersion": 1,
            "modifications": [self._add(q) for q in self.queries.values()],
        }
        if self.auth is None:
            self.identity_version = 0
            return query_set, None
        self.identity_version = 1
        self.auth_outstanding_since_restart = True
        return query_set, self.auth.message(0)

    def synced_past_restart(self) -> bool:
        return not self.outstanding_since_restart and not self.auth_outstanding_since_restart
