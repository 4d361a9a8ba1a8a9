"""``collab watch FUNCTION [JSON_ARGS]``: one JSON line per new result of a query, until
interrupted (``collab.tui.commands.run`` has both commands)."""

from __future__ import annotations

import argparse

from collab.tui.commands.run import add_parser, watch


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    add_parser(sub, "watch", "print a query's result as a JSON line each time it changes", watch)
