"""The ``collab`` command line. Imports stay lazy so ``collab serve`` and ``collab token``
start fast and never load Textual."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _default_data_dir() -> Path:
    env = os.environ.get("COLLAB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "collab"


def build_parser() -> argparse.ArgumentParser:
    from collab.backend.serve import add_serve_arguments

    parser = argparse.ArgumentParser(prog="collab", description="Humans and LLM agents working together on live artifacts.")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $XDG_DATA_HOME/collab; env COLLAB_DATA_DIR)")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the embedded backend in the foreground")
    serve.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help="data directory")
    add_serve_arguments(serve)

    token = sub.add_parser("token", help="tokens for humans and agents")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    mint = token_sub.add_parser("mint", help="print a signed token (JWT) for an identity")
    mint.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help="data directory")
    mint.add_argument("--handle", required=True, help="the identity's handle, e.g. alice or edwin")
    mint.add_argument("--agent", action="store_true", help="the identity is an agent")
    mint.add_argument("--name", default=None, help="display name (default: the handle)")
    mint.add_argument("--ttl", type=float, default=30 * 24 * 3600, help="lifetime in seconds (default 30 days)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    data_dir = (args.data_dir or _default_data_dir()).expanduser()
    if args.command == "serve":
        from collab.backend.serve import serve_from_args

        return serve_from_args(args, data_dir)
    if args.command == "token":
        from collab.backend.auth import Authority, InsecureKeyFile

        if not args.handle.replace("-", "").replace("_", "").isalnum():
            print("collab token mint: --handle may hold letters, digits, '-' and '_' only", file=sys.stderr)
            return 2
        try:
            print(Authority(data_dir.resolve()).mint(args.handle, agent=args.agent, name=args.name, ttl_s=args.ttl))
        except InsecureKeyFile as exc:
            print(f"collab token mint: {exc}", file=sys.stderr)
            return 1
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
