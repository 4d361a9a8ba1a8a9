"""Credentials: a fixed token, an async token fetcher, or an admin key.

A fetcher is ``async def fetch(force_refresh: bool) -> str | None``. It is asked:
- before the first connection (``force_refresh=False``: a cached token is fine);
- before any reconnection whose cached token expires within the leeway (``True``);
- ahead of the token's ``exp`` while connected (``True``), the new token is sent in place;
- after the server rejects the token with an AuthError (``True``).
Returning None means "no credentials": the client goes to AUTH_FAILED.

The JWT is decoded locally (no signature check) only to read ``exp``/``iat`` for scheduling.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["TokenFetcher", "AuthSpec", "AdminKey", "jwt_claims", "TokenSource"]

TokenFetcher = Callable[[bool], Awaitable[Union[str, None]]]


@dataclass(frozen=True, slots=True)
class AdminKey:
    """Authenticate with a deployment admin key, optionally acting as a user identity."""

    key: str
    acting_as: dict[str, Any] | None = None


AuthSpec = Union[str, TokenFetcher, AdminKey, None]


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified; {} if it is not a JWT."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError):
        return {}


class TokenSource:
    """Holds the auth spec and the current token; decides when to refetch."""

    def __init__(self, spec: AuthSpec, leeway_s: float = 10.0) -> None:
        self.spec = spec
        self.leeway_s = leeway_s
        self.token: str | None = spec if isinstance(spec, str) else None
        self.fetch_count = 0

    @property
    def is_fetcher(self) -> bool:
        return callable(self.spec)

    @property
    def enabled(self) -> bool:
        return self.spec is not None

    async def fetch(self, force_refresh: bool) -> str | None:
        if not callable(self.spec):
            return self.token
        self.fetch_count += 1
        token = await self.spec(force_refresh)
        self.token = token or None
        return self.token

    def expires_at(self) -> float | None:
        if self.token is None:
            return None
        exp = jwt_claims(self.token).get("exp")
        return float(exp) if isinstance(exp, (int, float)) else None

    def refresh_at(self) -> float | None:
        """When to refetch ahead of expiry (wall clock), or None if the token has no ``exp``.
        The leeway is capped at half the token's lifetime so short-lived tokens are not
        refreshed in a tight loop."""
        if not self.is_fetcher or self.token is None:
            return None
        claims = jwt_claims(self.token)
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)):
            return None
        iat = claims.get("iat")
        lifetime = exp - iat if isinstance(iat, (int, float)) and exp > iat else self.leeway_s * 2
        return float(exp) - min(self.leeway_s, lifetime / 2)

    def needs_refresh_now(self) -> bool:
        at = self.refresh_at()
        return at is not None and at <= time.time()
