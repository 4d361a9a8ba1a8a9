"""``collab run FUNCTION [JSON_ARGS]`` and ``collab watch FUNCTION [JSON_ARGS]``: call one
backend function from a shell, as the configured identity (like ``npx convex run`` and its
``--watch``), so a script can start a variations round, watch it and pick from it.

``run`` calls one query, mutation or action and prints its result as JSON on stdout. ``watch``
subscribes to a query and prints one JSON line per new result until interrupted. A function
error prints ``{"error": message, "code": ..., "data": ...}`` on stderr and exits 1; a bad
command line (JSON that does not parse, not an object) exits 2. The backend and identity are
the app's: the embedded backend (started if needed) or ``--url`` with ``$COLLAB_TOKEN``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from typing import Any


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, help_text: str,
               handler: Any) -> None:
    parser = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                            epilog='e.g. collab run spaces:list  |  collab watch variations:round '
                                   '\'{"roundId": "..."}\'')
    parser.add_argument("function", help="module:function, e.g. variations:start")
    parser.add_argument("args", nargs="?", default="{}", help="the arguments as a JSON object (default {})")
    parser.set_defaults(handler=handler)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    add_parser(sub, "run", "call one backend function, print its result as JSON", run)


def plain(value: Any) -> Any:
    """A Convex value as plain JSON: 64-bit integers as numbers, bytes as base64 strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and type(value).__name__ == "Int64":
        return int(value.value)
    return value


def _args(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError as exc:
        print(f"collab: the arguments are not JSON: {exc}", file=sys.stderr)
        return None
    if not isinstance(value, dict):
        print("collab: the arguments must be a JSON object, e.g. '{\"spaceId\": \"...\"}'", file=sys.stderr)
        return None
    return value


def _kind(path: str) -> str | None:
    """The function's kind from the client's generated references (None: not one of them)."""
    from collab.backend_client.api import api
    from collab.backend_client.refs import canonical_udf_path, iter_refs

    wanted = canonical_udf_path(path)
    return next((r.kind for r in iter_refs(api) if r.udf_path == wanted), None)


def _error(exc: BaseException) -> int:
    from collab.backend_client.space import error_code, error_text

    data = getattr(exc, "data", None)
    out: dict[str, Any] = {"error": error_text(exc), "code": error_code(exc)}
    if data is not None and not isinstance(data, dict):
        out["data"] = plain(data)
    elif isinstance(data, dict):
        out["data"] = plain(data)
    print(json.dumps(out), file=sys.stderr)
    return 1


def _endpoint(args: argparse.Namespace) -> Any:
    from collab.tui.bootstrap import LaunchOptions, backend_url_and_token, load

    options = LaunchOptions(url=getattr(args, "url", None), space=getattr(args, "space", None),
                            config_path=getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))
    return backend_url_and_token(load(options, write_default=False))


def run(args: argparse.Namespace) -> int:
    from collab.backend_client import FunctionError, HttpError
    from collab.backend_client.http import HttpClient
    from collab.tui.bootstrap import BootstrapError

    fn_args = _args(args.args)
    if fn_args is None:
        return 2
    try:
        endpoint = _endpoint(args)
    except BootstrapError as exc:
        print(f"collab run: {exc}", file=sys.stderr)
        return 1

    async def call() -> Any:
        async with HttpClient(endpoint.url, auth=endpoint.token) as http:
            kind = _kind(args.function)
            if kind == "query":
                return await http.query(args.function, fn_args)
            if kind == "action":
                return await http.action(args.function, fn_args)
            if kind == "mutation":
                return await http.mutation(args.function, fn_args)
            return await http.function(args.function, fn_args)

    try:
        result = asyncio.run(call())
    except (FunctionError, HttpError) as exc:
        return _error(exc)
    except OSError as exc:
        print(f"collab run: cannot reach the backend at {endpoint.url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(plain(result), indent=2, ensure_ascii=False))
    return 0


def watch(args: argparse.Namespace) -> int:
    from collab.backend_client import ConvexClient, FunctionError
    from collab.tui.bootstrap import BootstrapError

    fn_args = _args(args.args)
    if fn_args is None:
        return 2
    kind = _kind(args.function)
    if kind not in (None, "query"):
        print(f"collab watch: {args.function} is a {kind}; only a query can be watched (collab run calls it)",
              file=sys.stderr)
        return 2
    try:
        endpoint = _endpoint(args)
    except BootstrapError as exc:
        print(f"collab watch: {exc}", file=sys.stderr)
        return 1

    async def follow() -> int:
        async with ConvexClient(endpoint.url, auth=endpoint.token) as client:
            with client.watch(args.function, fn_args) as live:
                async for value in live.updates():
                    print(json.dumps(plain(value), ensure_ascii=False), flush=True)
        return 0

    try:
        return asyncio.run(follow())
    except FunctionError as exc:
        return _error(exc)
    except KeyboardInterrupt:
        return 0
