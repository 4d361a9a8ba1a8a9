"""collab.backend_client: the reactive client for the Convex sync protocol (docs/CLIENT.md).

``HttpClient`` / ``SyncHttpClient`` (HTTP one-shots for scripts) are exported too, imported on
first use: they need httpx, which the app, the worker and the socket client never load."""

from typing import Any

from collab.backend_client.auth import AdminKey, TokenFetcher
from collab.backend_client.client import ConvexClient, new_idempotency_key, ws_url_for
from collab.backend_client.connection import ConnectionState, ConnectionStatus, ReconnectPolicy
from collab.backend_client.errors import (
    AuthFailed,
    ClientClosed,
    ClientError,
    ConnectionLost,
    ConvexError,
    FunctionError,
    HttpError,
    ProtocolError,
)
from collab.backend_client.live_query import LiveQuery
from collab.backend_client.optimistic import LocalStore
from collab.backend_client.refs import (
    ActionRef,
    FunctionRef,
    MutationRef,
    Namespace,
    QueryRef,
    any_api,
    check_refs,
    iter_refs,
)
from collab.wire.values import Int64

__all__ = [
    "ActionRef",
    "AdminKey",
    "AuthFailed",
    "ClientClosed",
    "ClientError",
    "ConnectionLost",
    "ConnectionState",
    "ConnectionStatus",
    "ConvexClient",
    "ConvexError",
    "FunctionError",
    "FunctionRef",
    "HttpClient",
    "HttpError",
    "Int64",
    "LiveQuery",
    "LocalStore",
    "MutationRef",
    "Namespace",
    "ProtocolError",
    "QueryRef",
    "ReconnectPolicy",
    "SyncHttpClient",
    "TokenFetcher",
    "any_api",
    "check_refs",
    "iter_refs",
    "new_idempotency_key",
    "ws_url_for",
]


def __getattr__(name: str) -> Any:
    if name in ("HttpClient", "SyncHttpClient"):
        from collab.backend_client import http

        return getattr(http, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
