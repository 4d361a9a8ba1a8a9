"""The ``collab`` command line: ``collab`` opens the app; subcommands live in
``collab.tui.commands.<name>``. Imports stay lazy so ``collab serve`` and ``collab token``
start fast and never load Textual."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from collab.tui.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collab", description="Humans and LLM agents working together on live artifacts.")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $XDG_DATA_HOME/collab; env COLLAB_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"collab.tui.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"collab.tui.commands.{name}":
                raise
            continue  # a subcommand still being written
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
