"""The client side of the embedded backend's invite-code exchange (``collab join``)."""

from __future__ import annotations

from typing import Any

EXCHANGE_PATH = "/api/invites/exchange"


class JoinError(Exception):
    """A join failed; ``str()`` is the one line to print."""


def exchange(url: str, code: str, *, handle: str, name: str, verify: Any = True,
             timeout_s: float = 30.0) -> dict[str, Any] | None:
    """``{token, handle, spaceId, spaceName, role}``; None when ``url`` has no exchange (not an
    embedded backend); JoinError with the backend's own sentence when the code is refused."""
    import httpx

    try:
        resp = httpx.post(url + EXCHANGE_PATH, json={"code": code, "handle": handle, "name": name},
                          timeout=timeout_s, verify=verify)
    except httpx.ConnectError as exc:
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            raise JoinError(f"the certificate of {url} is not trusted here ({text.split(']')[-1].strip() or text}); "
                            "a self-signed one needs the --pin from the invite line") from None
        raise JoinError(f"cannot reach {url}: {text or type(exc).__name__}. Check the address, that "
                        "`collab serve --host ...` runs there and that no firewall is in between") from None
    except httpx.HTTPError as exc:
        raise JoinError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    if resp.status_code == 404:
        return None
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code == 200 and isinstance(body, dict) and body.get("token"):
        return body
    message = body.get("message") if isinstance(body, dict) else None
    if resp.status_code == 429:
        raise JoinError(message or f"too many attempts: try again in {resp.headers.get('Retry-After', 'a few')} s")
    raise JoinError(message or f"{url} answered {resp.status_code}: {resp.text[:200]}")
