"""``collab serve``: the embedded backend in the foreground."""

from __future__ import annotations

import argparse

from collab.tui.commands.common import add_data_dir, data_dir_of


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from collab.backend.serve import add_serve_arguments

    parser = sub.add_parser("serve", help="run the embedded backend in the foreground",
                            description="Run the embedded backend (SQLite, Convex sync protocol) in the foreground.")
    add_data_dir(parser)
    add_serve_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collab.backend.serve import serve_from_args

    return serve_from_args(args, data_dir_of(args))
