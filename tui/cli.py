"""The ``collab`` command line: ``collab`` opens the app; subcommands live in
``collab.tui.commands.<name>``. Imports stay lazy so ``collab serve`` and ``collab token``
start fast and never load Textual, and the app itself never loads litellm.

Global flags (before or after nothing): ``--url``, ``--space``, ``--config``, ``--data-dir``;
each falls back to its ``COLLAB_*`` variable through the config loader.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from collab.tui.commands import COMMANDS


def _add_globals(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $XDG_DATA_HOME/collab; env COLLAB_DATA_DIR)")
    parser.add_argument("--url", default=None,
                        help='backend URL: a Convex deployment running convex/, another machine\'s '
                             '`collab serve --host`, or "embedded" (env COLLAB_URL)')
    parser.add_argument("--space", default=None, help="space to open (default: main; env COLLAB_SPACE)")
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $XDG_CONFIG_HOME/collab/config.toml; env COLLAB_CONFIG)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collab",
        description="Humans and LLM agents working together on live artifacts. "
                    "Without a command: open the app on your space.",
        epilog="First run writes a commented config, starts the embedded backend in the background "
               "and creates your space with the default agents. `collab locate` shows every path.",
    )
    _add_globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"collab.tui.commands.{name}").register(sub)
    return parser


def run_app(args: argparse.Namespace) -> int:
    from collab.tui.run import pause_gc, run

    pause_gc()  # before the heavy imports: see collab.tui.run.pause_gc
    from collab.tui.bootstrap import LaunchOptions

    options = LaunchOptions(url=args.url, space=args.space, config_path=args.config, data_dir=args.data_dir)
    return run(options)


def _app_args(argv: list[str]) -> argparse.Namespace | None:
    """The global flags when ``argv`` opens the app (no subcommand, no --help), else None.

    Registering the subcommands imports their modules, and ``serve``'s pulls in the backend
    server (aiohttp, jwt, the schema: ~150 ms on the 2-core machines). Opening the app needs
    none of it, so that case is parsed with the global flags alone; anything else (a
    subcommand, --help, an unknown word, a bad flag) goes to the full parser, which gives the
    same answers and messages as before."""
    quick = argparse.ArgumentParser(prog="collab", add_help=False, exit_on_error=False)
    _add_globals(quick)
    try:
        args, rest = quick.parse_known_args(argv)
    except argparse.ArgumentError:  # e.g. a flag without its value: the full parser reports it
        return None
    if rest:
        return None
    args.command = None
    return args


def main(argv: list[str] | None = None) -> int:
    args = _app_args(sys.argv[1:] if argv is None else argv)
    if args is not None:
        return run_app(args)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        return run_app(args)
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
