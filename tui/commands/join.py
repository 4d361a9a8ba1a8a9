"""``collab join URL CODE``: join a teammate's space with the invite code they sent.

Against an embedded backend served to the network (``collab serve --host``), the code is
exchanged (``POST /api/invites/exchange``) for a token signed by that backend, for the handle
you choose (unique there). Against a Convex deployment (no such endpoint), your token for the
deployment (``$COLLAB_TOKEN``) joins with ``spaces:join``. Either way the token is stored
(0600) under ``$XDG_CONFIG_HOME/collab/joined/`` with the space, and from then on plain
``collab`` opens that backend and space (``collab --url embedded`` opens this machine's).

``--pin sha256:...`` (printed by ``collab invite`` for a self-signed certificate): the
server's certificate must have that fingerprint; it is then stored and trusted for this URL
only. Without a pin, https URLs are checked against the system's trust store.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import ssl
import sys
from typing import Any
from urllib.parse import urlsplit

from collab.tui.invites_client import EXCHANGE_PATH, JoinError


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("join", help="join a teammate's space with the invite line they sent",
                            description="Exchange an invite code for your token on a teammate's backend, "
                                        "store it, join the space and open it.")
    parser.add_argument("join_url", metavar="URL", help="the backend's URL, as in the invite line")
    parser.add_argument("code", help="the invite code")
    parser.add_argument("--handle", default=None,
                        help="your @handle there (default: identity.handle, else your login name)")
    parser.add_argument("--name", default=None, help="the name others see (default: identity.display_name)")
    parser.add_argument("--pin", default=None, metavar="sha256:HEX",
                        help="the fingerprint of the backend's self-signed certificate (from the invite line)")
    parser.add_argument("--no-open", action="store_true", help="store the token and join, but do not open the app")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collab.config.identity import check_handle, handle_from_login, login_name
    from collab.tui.bootstrap import BootstrapError, LaunchOptions, load

    try:
        url = _url(args.join_url)
        config = load(LaunchOptions(config_path=getattr(args, "config", None), url="embedded"))
        handle = args.handle or config.identity.handle or handle_from_login(login_name(os.environ))
        try:
            check_handle(handle)
        except ValueError as exc:
            raise JoinError(f"--handle {exc}") from None
        name = args.name or config.identity.display_name or handle
        joined = join(url, args.code, handle=handle, name=name, pin=args.pin, token_env=config.backend.token_env)
    except (JoinError, BootstrapError) as exc:
        print(f"collab join: {exc}", file=sys.stderr)
        return 1
    print(f"Joined {joined.space!r} on {url} as @{joined.handle} ({joined.role}). "
          f"Your token is in {joined.token_file}; `collab` now opens this space "
          "(`collab --url embedded` opens your own).", flush=True)
    if args.no_open:
        return 0
    from collab.tui.cli import run_app

    return run_app(argparse.Namespace(url=url, space=joined.space, config=getattr(args, "config", None),
                                      data_dir=None))


def _url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JoinError(f"{raw!r} is not a backend URL: expected http(s)://host:port, as in the invite line")
    return raw.strip().rstrip("/")


def fetch_pinned(url: str, pin: str) -> str:
    """The server's certificate (PEM) if its SHA-256 is ``pin``; JoinError otherwise."""
    want = pin.lower().removeprefix("sha256:").replace(":", "")
    parts = urlsplit(url)
    try:
        pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 443), timeout=15)
    except (OSError, ssl.SSLError) as exc:
        raise JoinError(f"cannot reach {url}: {exc}") from None
    got = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    if not hmac.compare_digest(got, want):
        raise JoinError(f"the certificate of {url} does not match the pin of the invite (sha256:{got}): "
                        "this is not the backend your teammate invited you to, or someone is in between. "
                        "Nothing was sent; check the address with them.")
    return pem


def join(url: str, code: str, *, handle: str, name: str, pin: str | None = None,
         token_env: str = "COLLAB_TOKEN") -> Any:
    """Exchange (or, on a Convex deployment, use) the code and store the result."""
    from collab.config import resolve_paths
    from collab.tui import joined
    from collab.tui.invites_client import exchange

    cert_pem = None
    verify: Any = True
    if pin:
        if not url.startswith("https:"):
            raise JoinError("--pin is for https URLs (a backend served with --tls-cert)")
        cert_pem = fetch_pinned(url, pin)
        verify = joined.pinned_context(cert_pem)
    result = exchange(url, code, handle=handle, name=name, verify=verify)
    if result is None:  # not an embedded backend: a Convex deployment joins with your own token
        result = _join_convex(url, code, token_env)
    return joined.save(resolve_paths().config_dir, url=url, token=result["token"], handle=result["handle"],
                       space=result["spaceName"], space_id=result["spaceId"], role=result["role"],
                       cert_pem=cert_pem)


def _join_convex(url: str, code: str, token_env: str) -> dict[str, Any]:
    import asyncio

    from collab.backend_client import ConvexClient, ConvexError
    from collab.backend_client.api import api
    from collab.backend_client.space import error_text

    token = os.environ.get(token_env, "")
    if not token:
        raise JoinError(f"{url} is not a collab embedded backend (no {EXCHANGE_PATH}), so it is a Convex "
                        f"deployment: sign in there and put your token in ${token_env}, then run this again")

    async def go() -> dict[str, Any]:
        async with ConvexClient(url, auth=token) as client:
            await client.connect(timeout=20)
            return dict(await client.mutation(api.spaces.join, {"code": code}))

    try:
        got = asyncio.run(go())
    except ConvexError as exc:
        raise JoinError(error_text(exc)) from None
    except Exception as exc:
        raise JoinError(f"cannot join on {url}: {exc}") from None
    return {**got, "token": token}
