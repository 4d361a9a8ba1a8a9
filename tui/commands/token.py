"""``collab token mint``: a signed token for a human or agent identity."""

from __future__ import annotations

import argparse
import sys

from collab.tui.commands.common import add_data_dir, data_dir_of


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    token = sub.add_parser("token", help="tokens for humans and agents")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    mint = token_sub.add_parser("mint", help="print a signed token (JWT) for an identity")
    add_data_dir(mint)
    mint.add_argument("--handle", required=True, help="the identity's handle, e.g. alice or edwin")
    mint.add_argument("--agent", action="store_true", help="the identity is an agent")
    mint.add_argument("--name", default=None, help="display name (default: the handle)")
    mint.add_argument("--ttl", type=float, default=30 * 24 * 3600, help="lifetime in seconds (default 30 days)")
    mint.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collab.backend.auth import Authority, InsecureKeyFile

    if not args.handle.replace("-", "").replace("_", "").isalnum():
        print("collab token mint: --handle may hold letters, digits, '-' and '_' only", file=sys.stderr)
        return 2
    try:
        print(Authority(data_dir_of(args).resolve()).mint(args.handle, agent=args.agent, name=args.name, ttl_s=args.ttl))
    except InsecureKeyFile as exc:
        print(f"collab token mint: {exc}", file=sys.stderr)
        return 1
    return 0
