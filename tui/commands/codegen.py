"""``collab codegen``: regenerate the client's typed function references
(``backend_client/api.py``) from the backend's function registry, like ``npx convex codegen``.
A developer runs it after adding or changing a backend function; ``--check`` only reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("codegen", help="regenerate backend_client/api.py from the function registry",
                            description="Regenerate the typed function references of the client "
                                        "(backend_client/api.py) from the backend's function registry.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file is out of date")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import collab.backend_client
    from collab.tui.apigen import MODEL_PACKAGE, python_api, write_api
    from collab.backend.functions import App

    path = Path(collab.backend_client.__file__).parent / "api.py"
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != python_api(App.from_package(MODEL_PACKAGE)):
            print(f"{path} is out of date: run `collab codegen`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    changed = write_api(path)
    print(f"{'wrote' if changed else 'unchanged:'} {path}")
    return 0
