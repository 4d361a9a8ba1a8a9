"""The invite-code exchange over real sockets: a served backend (0.0.0.0, TLS with a
self-signed certificate made here) reached through this machine's non-loopback address.
Each refused code has its own answer, a wrong code always the same one and never before the
fixed delay, a burst of guesses from one address runs out of attempts (the right code too),
and the token it mints works on the sync socket."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from collab.backend.invites import PATH, InviteLimits
from collab.backend.serve import machine_addresses
from collab.backend.server import ServerOptions
from collab.backend.testing import running_backend
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from tests.tls_cert import self_signed

OUTWARD = [a for a in machine_addresses() if not a.startswith("127.")]
pytestmark = pytest.mark.skipif(not OUTWARD, reason="this machine has no address beyond loopback")
DELAY = 0.5


async def test_exchange_answers_and_slows_guessing(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, OUTWARD[0], "127.0.0.1")
    options = ServerOptions(host="0.0.0.0", tls_cert=cert, tls_key=key, allowed_hosts=tuple(OUTWARD),
                            invite_limits=InviteLimits(attempts=6, refill_per_s=0.01, fail_delay_s=DELAY))
    async with running_backend(tmp_path / "data", functions="collab.backend.model", options=options) as rb:
        port = rb.backend.port
        remote = f"https://{OUTWARD[0]}:{port}"  # the network path: source address OUTWARD[0]
        local = f"https://127.0.0.1:{port}"  # another source address: its own bucket
        owner = ConvexClient(rb.backend.local_url, auth=rb.backend.authority.mint("olga"))
        await owner.connect(timeout=10)
        try:
            opened = await owner.mutation(api.spaces.open, {"name": "main"})
            space = opened["spaceId"]
            one = await owner.mutation(api.spaces.invite, {"spaceId": space, "maxUses": 1})
            revoked = await owner.mutation(api.spaces.invite, {"spaceId": space})
            await owner.mutation(api.spaces.revokeInvite, {"spaceId": space, "inviteId": revoked["inviteId"]})
            expiring = await owner.mutation(api.spaces.invite, {"spaceId": space, "expiresInMs": 60_000})

            async with httpx.AsyncClient(verify=_trust(cert), timeout=30) as http:
                async def attempt(base: str, code: str, handle: str) -> tuple[int, dict, float]:
                    started = time.monotonic()
                    r = await http.post(base + PATH, json={"code": code, "handle": handle})
                    return r.status_code, r.json(), time.monotonic() - started

                status, body, _ = await attempt(remote, one["code"], "bob")
                assert status == 200 and body["role"] == "editor" and body["spaceName"] == "main"
                bob = ConvexClient(remote, auth=body["token"], ssl=_trust(cert))
                await bob.connect(timeout=10)
                try:  # the minted token is bob's on this backend
                    assert (await bob.query(api.spaces.get, {"spaceId": space}))["role"] == "editor"
                finally:
                    await bob.close()
                answers = {}
                for name, code in (("used", one["code"]), ("revoked", revoked["code"])):
                    status, body, took = await attempt(remote, code, "carol")
                    answers[name] = body["code"]
                    assert status == 403 and took >= DELAY
                assert answers == {"used": "INVITE_USED_UP", "revoked": "INVITE_REVOKED"}
                status, body, _ = await attempt(local, expiring["code"], "olga")
                assert status == 409 and body["code"] == "HANDLE_TAKEN"  # the owner's own handle

                # A burst of wrong codes from the network address: the same answer every time,
                # never sooner than the delay, then 429 for every attempt, the right code too.
                burst = await asyncio.gather(*(attempt(remote, f"wrong-{i:05d}-guess", "mallory")
                                               for i in range(10)))
                wrong = [(s, b) for s, b, _ in burst if s == 403]
                limited = [(s, b) for s, b, _ in burst if s == 429]
                assert len(wrong) == 3 and len(limited) == 7  # 6 attempts per address: 3 were used above
                assert {b["message"] for _, b in wrong} == {wrong[0][1]["message"]}
                assert all(b["code"] == "INVITE_UNKNOWN" for _, b in wrong)
                assert all(t >= DELAY for s, _, t in burst if s == 403)
                assert all(b["code"] == "RateLimited" and b["retryAfterS"] >= 1 for _, b in limited)
                status, body, _ = await attempt(remote, expiring["code"], "dave")
                assert status == 429
                # another address still gets in (one guesser does not lock a team out)
                status, body, _ = await attempt(local, expiring["code"], "dave")
                assert status == 200 and body["handle"] == "dave"
        finally:
            await owner.close()


def _trust(cert: Path):
    import ssl

    return ssl.create_default_context(cafile=str(cert))


async def test_expired_code_has_its_own_answer(tmp_path: Path) -> None:
    options = ServerOptions(invite_limits=InviteLimits(fail_delay_s=0.05))
    async with running_backend(tmp_path / "data", functions="collab.backend.model", options=options) as rb:
        owner = ConvexClient(rb.backend.url, auth=rb.backend.authority.mint("olga"))
        await owner.connect(timeout=10)
        try:
            space = (await owner.mutation(api.spaces.open, {"name": "main"}))["spaceId"]
            got = await owner.mutation(api.spaces.invite, {"spaceId": space, "expiresInMs": 60_000})
            rb.backend.engine.now_ms = lambda: time.time() * 1000 + 61_000  # a minute and a second later
            async with httpx.AsyncClient(timeout=30) as http:
                r = await http.post(rb.backend.url + PATH, json={"code": got["code"], "handle": "bob"})
            assert r.status_code == 403 and r.json()["code"] == "INVITE_EXPIRED"
            assert "expired" in r.json()["message"]
        finally:
            await owner.close()
