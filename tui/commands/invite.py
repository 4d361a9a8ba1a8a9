"""``collab invite``: an invite code for the space, printed as the one line a teammate runs
(``collab join <url> <code>``). Works before the app was ever opened: it starts the embedded
backend and opens (creates) the space exactly as the app would (``open_session``)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float | None:
    """``"24h"`` -> seconds; ``"never"`` -> None. ValueError for anything else."""
    if text.strip().lower() in ("never", "none", "0"):
        return None
    m = DURATION.match(text.lower())
    if not m:
        raise ValueError(f"--expires takes a duration like 30m, 24h or 7d, or never (got {text!r})")
    return float(m.group(1)) * UNITS[m.group(2)]


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("invite", help="invite a teammate: prints the `collab join` line to send them",
                            description="Create an invite code for the space (owners) and print the one "
                                        "line a teammate runs on their machine: collab join URL CODE.")
    parser.add_argument("--role", choices=["editor", "viewer"], default="editor",
                        help="what the teammate may do (default editor; viewers read everything, write nothing)")
    parser.add_argument("--uses", type=int, default=1, metavar="N",
                        help="how many people may join with the code (default 1)")
    parser.add_argument("--expires", default="24h", metavar="DURATION",
                        help="when the code stops working: 30m, 24h, 7d, or never (default 24h)")
    parser.set_defaults(handler=run)


def cert_pin(cert_file: Path) -> str | None:
    """``sha256:<hex>`` of a self-signed certificate (the joiner checks it before trusting it);
    None for a certificate a CA signed (the joiner's system trust store checks that one)."""
    import hashlib

    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return None
    if cert.issuer != cert.subject:
        return None
    from cryptography.hazmat.primitives.serialization import Encoding

    return "sha256:" + hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def run(args: argparse.Namespace) -> int:
    from collab.tui.bootstrap import BootstrapError, LaunchOptions, load

    try:
        expires = parse_duration(args.expires)
    except ValueError as exc:
        print(f"collab invite: {exc}", file=sys.stderr)
        return 2
    if not 1 <= args.uses <= 1000:
        print("collab invite: --uses must be from 1 to 1000", file=sys.stderr)
        return 2
    options = LaunchOptions(url=getattr(args, "url", None), space=getattr(args, "space", None),
                            config_path=getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))
    try:
        config = load(options)
        line, notes = asyncio.run(_invite(config, options.space, args.role, args.uses, expires))
    except BootstrapError as exc:
        print(f"collab invite: {exc}", file=sys.stderr)
        return 1
    except InviteRefused as exc:
        print(f"collab invite: {exc}", file=sys.stderr)
        return 1
    print(line, flush=True)
    for note in notes:
        print(note, file=sys.stderr)
    return 0


class InviteRefused(Exception):
    pass


async def _invite(config: Any, space: str | None, role: str, uses: int,
                  expires_s: float | None) -> tuple[str, list[str]]:
    from collab.backend_client import ConvexError
    from collab.backend_client.space import error_text
    from collab.tui.bootstrap import connect

    session = await connect(config, space_name=space)
    try:
        try:
            got = await session.members.invite(role=role, uses=uses, expires_s=expires_s)
        except ConvexError as exc:
            raise InviteRefused(f"cannot invite to {session.space_name!r}: {error_text(exc)}") from exc
    finally:
        await session.client.close()
    url, pin, notes = team_url(config)
    line = f"collab join {url} {got['code']}" + (f" --pin {pin}" if pin else "")
    when = "never expires" if got.get("expiresAt") is None else \
        "expires " + time.strftime("%Y-%m-%d %H:%M", time.localtime(float(got["expiresAt"]) / 1000))
    notes.insert(0, f"Invite to {session.space_name!r} as {got['role']}: {uses} use{'s' if uses != 1 else ''}, "
                    f"{when}. Send the line above to your teammate; revoke it from the members screen "
                    "(ctrl+p, Members).")
    return line, notes


def team_url(config: Any) -> tuple[str, str | None, list[str]]:
    """The URL teammates use, the pin of its self-signed certificate (or None), and notes for
    the owner."""
    if config.backend.url:  # a Convex deployment, or a backend this user joined
        return config.backend.url, None, []
    from collab.backend.discovery import read_discovery

    found = read_discovery(config.data_dir.expanduser().resolve())
    if found is not None and found.public_url:
        notes: list[str] = []
        pin = cert_pin(Path(found.tls_cert)) if found.tls_cert else None
        if not found.tls_cert:
            notes.append("Warning: this backend is served without TLS: the token and everything you write "
                         "cross the network in clear (collab serve --tls-cert/--tls-key; docs/TEAMS.md).")
        return found.public_url, pin, notes
    local = found.url if found is not None else "http://127.0.0.1:PORT"
    port = local.rsplit(":", 1)[-1]
    return local, None, [
        "Note: the backend of this machine listens on 127.0.0.1 only, so the line above works only "
        "here. To let teammates in from their machines, either serve it to the network: "
        "`collab serve --stop; collab serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem` "
        "and run `collab invite` again; or let them come through an SSH tunnel: "
        f"`ssh -N -L {port}:127.0.0.1:{port} you@this-host`, then the line above works on their "
        "machine as it is (docs/TEAMS.md)."]
