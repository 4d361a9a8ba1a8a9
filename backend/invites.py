"""The invite-code exchange of the embedded backend: ``POST /api/invites/exchange``.

A teammate on another machine has no token for this backend yet, only an invite code. They
send ``{code, handle, name?}``; the server runs the internal mutation ``spaces:redeem`` (the
code must be usable, the handle free on this backend) and answers with a token it minted for
``human:<handle>``, plus the space. The code itself is never a credential for anything else.

Guessing is made useless three ways: a code has ~98 bits; each source address has a small
bucket of attempts that refills slowly (``429`` when empty, with ``Retry-After``); and every
failed attempt is answered only after a fixed delay counted from its arrival, with the same
answer for every wrong code. The database holds only the codes' SHA-256, found by an index
lookup: no byte-by-byte comparison of a secret happens anywhere (the constant-time part is the
hash comparison the index does on equal-length digests, which leaks nothing useful).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from collab.backend.engine import ADMIN

if TYPE_CHECKING:
    from collab.backend.server import Backend

PATH = "/api/invites/exchange"
TOKEN_TTL_S = 90 * 24 * 3600
# HTTP status per refusal: the client says what happened from the code alone.
STATUS = {"INVITE_UNKNOWN": 403, "INVITE_REVOKED": 403, "INVITE_EXPIRED": 403, "INVITE_USED_UP": 403,
          "HANDLE_TAKEN": 409, "INVALID_HANDLE": 400, "INVALID_ARGUMENT": 400}


@dataclass
class InviteLimits:
    attempts: float = 10.0  # a source's burst
    refill_per_s: float = 0.1  # one more attempt every 10 s
    fail_delay_s: float = 1.0  # every failed attempt is answered this long after it arrived


@dataclass
class SourceLimiter:
    """A token bucket per source address."""

    limits: InviteLimits
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # source -> (tokens, at)

    def take(self, source: str, now: float) -> float:
        """0 if an attempt is allowed (and counted), else the seconds until the next one."""
        lim = self.limits
        tokens, at = self.buckets.get(source, (lim.attempts, now))
        tokens = min(lim.attempts, tokens + (now - at) * lim.refill_per_s)
        if tokens < 1:
            self.buckets[source] = (tokens, now)
            return (1 - tokens) / lim.refill_per_s if lim.refill_per_s > 0 else float("inf")
        self.buckets[source] = (tokens - 1, now)
        if len(self.buckets) > 10_000:  # forget sources whose bucket is full again
            full = [s for s, (t, a) in self.buckets.items() if t + (now - a) * lim.refill_per_s >= lim.attempts]
            for s in full:
                del self.buckets[s]
        return 0.0


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = {"Retry-After": str(extra["retryAfterS"])} if "retryAfterS" in extra else None
    return web.json_response({"code": code, "message": message, **extra}, status=status, headers=headers)


class InviteExchange:
    def __init__(self, backend: Backend, limits: InviteLimits | None = None) -> None:
        self.backend = backend
        self.limits = limits or InviteLimits()
        self.limiter = SourceLimiter(self.limits)

    async def handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        source = request.remote or "unknown"
        wait = self.limiter.take(source, time.monotonic())
        if wait > 0:
            return _error(429, "RateLimited", f"too many invite attempts from {source}: try again in "
                                              f"{wait:.0f} s", retryAfterS=int(wait + 0.999))
        try:
            body = json.loads(await request.read() or b"{}")
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("code", "handle")) \
                or not isinstance(body.get("name", ""), str):
            return await self._refuse(arrived, 400, "BadRequest", 'send {"code": "...", "handle": "..."}')
        code, handle = body["code"][:200], body["handle"].strip()[:64]
        name = (body.get("name") or "").strip()[:80]
        args: dict[str, Any] = {"code": code, "handle": handle}
        if name:
            args["name"] = name
        outcome = self.backend.engine.run_mutation("spaces:redeem", [args], ADMIN, internal_ok=True)
        if not outcome.success:
            data = json.loads(outcome.error_data_json) if outcome.error_data_json else {}
            err = str(data.get("code") or "INVITE_FAILED")
            return await self._refuse(arrived, STATUS.get(err, 400), err,
                                      str(data.get("message") or outcome.error_message))
        joined = json.loads(outcome.value_json)
        token = self.backend.authority.mint(handle, name=name or handle, ttl_s=TOKEN_TTL_S)
        return web.json_response({"token": token, "handle": handle, "spaceId": joined["spaceId"],
                                  "spaceName": joined["spaceName"], "role": joined["role"],
                                  "issuer": self.backend.authority.issuer,
                                  "expiresAt": (time.time() + TOKEN_TTL_S) * 1000})

    async def _refuse(self, arrived: float, status: int, code: str, message: str) -> web.Response:
        # The answer leaves a fixed time after the attempt arrived, whatever the reason.
        delay = arrived + self.limits.fail_delay_s - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        return _error(status, code, message)
