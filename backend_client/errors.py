"""Exceptions raised by the client.

Function failures keep the server's message and, for ``ConvexError``, its ``data`` payload, so
callers can branch on structured data instead of parsing strings.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ClientError",
    "FunctionError",
    "ConvexError",
    "ConnectionLost",
    "AuthFailed",
    "ProtocolError",
    "ClientClosed",
    "HttpError",
]


class ClientError(Exception):
    """Base class of every error this package raises."""


class FunctionError(ClientError):
    """A query, mutation or action failed on the server (a plain thrown error)."""

    def __init__(
        self,
        message: str,
        *,
        udf_path: str | None = None,
        kind: str | None = None,
        log_lines: list[str] | None = None,
    ) -> None:
        where = f"{kind} {udf_path!r} failed: " if udf_path else ""
        super().__init__(where + message)
        self.message = message
        self.udf_path = udf_path
        self.kind = kind
        self.log_lines = list(log_lines or [])


class ConvexError(FunctionError):
    """The function threw ``ConvexError(data)``; ``data`` is the decoded Convex value."""

    def __init__(
        self,
        message: str,
        data: Any,
        *,
        udf_path: str | None = None,
        kind: str | None = None,
        log_lines: list[str] | None = None,
    ) -> None:
        super().__init__(message, udf_path=udf_path, kind=kind, log_lines=log_lines)
        self.data = data


class ConnectionLost(ClientError):
    """An action was in flight when the socket dropped; it is not resent (actions are not
    idempotent), so whether it ran is unknown."""


class AuthFailed(ClientError):
    """The server rejected our credentials and no fresh token could be obtained."""


class ProtocolError(ClientError):
    """The server broke the sync protocol (bad frame, version chain gap). The client reconnects."""


class ClientClosed(ClientError):
    """The client was closed while the operation was pending."""


class HttpError(ClientError):
    """A non-2xx answer from the HTTP API (system error, not a function failure)."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"{status} {code or ''}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message


def function_error(
    message: str,
    error_data: Any,
    has_data: bool,
    *,
    udf_path: str | None,
    kind: str,
    log_lines: list[str] | None = None,
) -> FunctionError:
    """Build the right exception for a failed function result."""
    if has_data:
        return ConvexError(message, error_data, udf_path=udf_path, kind=kind, log_lines=log_lines)
    return FunctionError(message, udf_path=udf_path, kind=kind, log_lines=log_lines)
