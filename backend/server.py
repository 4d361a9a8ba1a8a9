"""The embedded backend's network face: the sync WebSocket and the HTTP API (aiohttp).

``Backend`` wires storage, engine, auth and the aiohttp app together; ``collab serve``
(serve.py) and the test helpers (testing/) both use it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from collab.backend.auth import AuthFailure, Authority
from collab.backend.engine import ADMIN, ANONYMOUS, Engine, Identity, Outcome
from collab.backend.faults import Faults
from collab.backend.functions import App, canonical_path
from collab.backend.invites import PATH as INVITE_EXCHANGE_PATH
from collab.backend.invites import InviteExchange, InviteLimits
from collab.backend.storage import Storage
from collab.backend.sync import Limits, SyncSession
from collab.wire import Int64, ValueError_, decode_ts, encode_ts, json_to_convex, loads

log = logging.getLogger("collab.backend.server")

DB_FILE = "collab.sqlite3"
DEFAULT_APP = "collab.backend.model"  # the collaboration functions (docs/API.md)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0
    limits: Limits = field(default_factory=Limits)
    # Origins (scheme://host:port) allowed to open the socket or call the API from a browser.
    # Empty: any request carrying an Origin header is refused (a web page must not connect).
    allowed_origins: tuple[str, ...] = ()
    # Extra Host header values accepted besides loopback names (e.g. a LAN name you bind).
    allowed_hosts: tuple[str, ...] = ()
    durability: str = "normal"
    http_rate_per_s: float = 5_000.0
    faults: Faults = field(default_factory=Faults.from_env)
    # TLS (https / wss): certificate chain and key files; None: plaintext.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    invite_limits: InviteLimits = field(default_factory=InviteLimits)


def to_clean_json(value: Any) -> Any:
    """HTTP ``format: "json"``: lossy plain JSON (PROTOCOL 4.1)."""
    if isinstance(value, Int64):
        return str(int(value))
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [to_clean_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_clean_json(v) for k, v in value.items()}
    return value


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Backend:
    def __init__(self, data_dir: Path | str, app: App | None = None, options: ServerOptions | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.options = options or ServerOptions()
        self.app = app if app is not None else App.from_package(DEFAULT_APP)
        self.authority = Authority(self.data_dir)
        self.storage = Storage(self.data_dir / DB_FILE, self.app.schema, durability=self.options.durability)
        self.engine = Engine(self.storage, self.app)
        self.sessions: set[SyncSession] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.local_port = 0
        self._http_tokens = self.options.http_rate_per_s
        self._http_at = time.monotonic()

    @property
    def url(self) -> str:
        host = self.options.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.options.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def local_url(self) -> str:
        """What processes of this machine use (the app, the worker): the loopback side. A
        backend bound beyond loopback also listens on 127.0.0.1 (plaintext, another port), so
        local clients need neither the network address nor its certificate."""
        return f"http://127.0.0.1:{self.local_port}" if self.local_port else self.url

    # --- lifecycle ----------------------------------------------------------------------------------

    def make_web_app(self) -> web.Application:
        web_app = web.Application(
            client_max_size=self.options.limits.max_frame_bytes,
            middlewares=[self._guard],
        )
        r = web_app.router
        r.add_get("/api/sync", self._sync)
        r.add_get("/api/{version}/sync", self._sync)
        r.add_post("/api/query", self._http_kind("query"))
        r.add_get("/api/query", self._http_get_query)
        r.add_post("/api/mutation", self._http_kind("mutation"))
        r.add_post("/api/action", self._http_kind("action"))
        r.add_post("/api/function", self._http_kind(None))
        r.add_post("/api/run/{path:.+}", self._http_run)
        r.add_post("/api/query_ts", self._http_query_ts)
        r.add_post("/api/query_at_ts", self._http_query_at_ts)
        r.add_post("/api/query_batch", self._http_query_batch)
        r.add_post(INVITE_EXCHANGE_PATH, InviteExchange(self, self.options.invite_limits).handle)
        r.add_get("/.well-known/jwks.json", self._jwks)
        r.add_get("/api/functions", self._functions)
        r.add_get("/version", self._version)
        return web_app

    async def start(self) -> None:
        self.engine.start()
        self._runner = web.AppRunner(self.make_web_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port, reuse_address=True,
                           ssl_context=self._ssl_context())
        await site.start()
        server = site._server  # aiohttp keeps the bound sockets here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.options.port
        if self.options.host not in LOOPBACK:
            local = web.TCPSite(self._runner, "127.0.0.1", 0, reuse_address=True)
            await local.start()
            self.local_port = local._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _ssl_context(self) -> Any:
        if self.options.tls_cert is None:
            return None
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        return ctx

    async def stop(self) -> None:
        for session in list(self.sessions):
            await session.ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.engine.stop()
        self.storage.close()

    # --- guards -------------------------------------------------------------------------------------

    def _host_ok(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        host = urlsplit(f"//{host_header}").hostname or ""
        allowed = {"127.0.0.1", "localhost", "::1", self.options.host, *self.options.allowed_hosts}
        return host in allowed

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
        if not self._host_ok(request.headers.get("Host")):
            return _system_error(403, "ForbiddenHost", "Host header is not one this server answers to")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.options.allowed_origins:
            return _system_error(403, "ForbiddenOrigin", f"requests from origin {origin} are not allowed")
        if request.path != "/api/sync" and not request.path.endswith("/sync"):
            now = time.monotonic()
            rate = self.options.http_rate_per_s
            self._http_tokens = min(rate, self._http_tokens + (now - self._http_at) * rate)
            self._http_at = now
            if self._http_tokens < 1:
                return _system_error(429, "RateLimited", "too many requests")
            self._http_tokens -= 1
        try:
            return await handler(request)
        except _HttpError as exc:
            return _system_error(exc.status, exc.code, exc.message)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("internal error on %s", request.path)
            return _system_error(500, "InternalServerError", "internal server error")

    # --- WebSocket ----------------------------------------------------------------------------------

    async def _sync(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            max_msg_size=self.options.limits.max_frame_bytes,
            heartbeat=30.0,  # ping frames; a peer that never answers is dropped
            autoping=True,
            compress=True,
        )
        await ws.prepare(request)
        session = SyncSession(self.engine, self.authority, ws, self.options.limits, self.options.faults)
        session.transport = request.transport
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
        return ws

    # --- HTTP API -----------------------------------------------------------------------------------

    def _identity(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        admin_key = request.query.get("adminKey")
        try:
            if header.startswith("Bearer "):
                claims, _ = self.authority.verify(header[7:].strip())
                return Identity(claims=claims)
            if header.startswith("Convex "):
                admin_key = header[7:].strip()
            if admin_key:
                acting = self.authority.check_admin(admin_key)
                return Identity(claims=acting, admin=True) if acting else ADMIN
        except AuthFailure as exc:
            raise _HttpError(401, "Unauthenticated", str(exc)) from None
        return ANONYMOUS

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read() or b"{}")
        except (ValueError, RecursionError):
            raise _HttpError(400, "BadJsonBody", "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _HttpError(400, "BadJsonBody", "request body must be a JSON object")
        return body

    @staticmethod
    def _args(raw: Any) -> list[Any]:
        if raw is None:
            raw = {}
        if isinstance(raw, list):
            if len(raw) != 1:
                raise _HttpError(400, "InvalidArgs", "args must be an object or an array of one object")
            raw = raw[0]
        try:
            return [json_to_convex(raw)]
        except ValueError_ as exc:
            raise _HttpError(400, "InvalidArgs", str(exc)) from None

    async def _call(self, kind: str | None, path: str, args: list[Any], identity: Identity) -> Outcome:
        if kind is None:
            fn = self.app.lookup(path)
            kind = fn.kind if fn is not None else "query"
        if kind == "query":
            return self.engine.run_query(path, args, identity)
        if kind == "mutation":
            return self.engine.run_mutation(path, args, identity)
        return await self.engine.run_action(path, args, identity)

    @classmethod
    def _respond(cls, outcome: Outcome, fmt: str | None) -> web.Response:
        return web.json_response(cls._result_body(outcome, fmt))

    @staticmethod
    def _result_body(outcome: Outcome, fmt: str | None) -> dict[str, Any]:
        """PROTOCOL 5: ``{"status": "success", "value"}`` or ``{"status": "error", ...}``."""
        clean = fmt in (None, "json", "convex_clean_json")
        if outcome.success:
            value = loads(outcome.value_json)
            body: dict[str, Any] = {"status": "success", "value": to_clean_json(value) if clean else json.loads(outcome.value_json)}
        else:
            body = {"status": "error", "errorMessage": outcome.error_message}
            if outcome.error_data_json is not None:
                data = json.loads(outcome.error_data_json)
                body["errorData"] = to_clean_json(json_to_convex(data)) if clean else data
        return body

    @staticmethod
    def _format(body: dict[str, Any], default: str | None = None) -> str | None:
        fmt = body.get("format", default)
        if fmt not in (None, "json", "convex_clean_json", "convex_encoded_json", "convex_json", "export_json"):
            raise _HttpError(400, "InvalidFormat", f"unknown format {fmt!r}")
        return fmt

    def _http_kind(self, kind: str | None) -> Any:
        async def handler(request: web.Request) -> web.Response:
            body = await self._body(request)
            path = body.get("path")
            if not isinstance(path, str) or not path:
                raise _HttpError(400, "BadRequest", "missing function path")
            identity = self._identity(request)
            outcome = await self._call(kind, path, self._args(body.get("args")), identity)
            return self._respond(outcome, self._format(body))

        return handler

    async def _http_get_query(self, request: web.Request) -> web.Response:
        path = request.query.get("path", "")
        try:
            args = json.loads(request.query.get("args", "{}"))
        except (ValueError, RecursionError):
            raise _HttpError(400, "InvalidArgs", "args is not valid JSON") from None
        outcome = self.engine.run_query(path, self._args(args), self._identity(request))
        return self._respond(outcome, self._format(dict(request.query)))

    async def _http_run(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].strip("/").split("/")
        if len(parts) < 2:
            raise _HttpError(404, "NotFound", "expected /api/run/<module>/<function>")
        path = canonical_path("/".join(parts[:-1]) + ":" + parts[-1])
        body = await self._body(request)
        outcome = await self._call(None, path, self._args(body.get("args")), self._identity(request))
        return self._respond(outcome, self._format(body))

    async def _http_query_ts(self, request: web.Request) -> web.Response:
        return web.json_response({"ts": encode_ts(self.storage.last_ts)})

    async def _http_query_at_ts(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            ts = decode_ts(body.get("ts", ""))
        except ValueError_:
            raise _HttpError(400, "InvalidTs", "ts must be an encoded timestamp") from None
        if ts != self.storage.last_ts:
            # Only the latest snapshot is kept; older reads cannot be served consistently.
            raise _HttpError(400, "TsOutOfRetention", "this backend serves reads at the latest ts only")
        outcome = self.engine.run_query(body.get("path", ""), self._args(body.get("args")), self._identity(request))
        return self._respond(outcome, self._format(body))

    async def _http_query_batch(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        queries = body.get("queries")
        if not isinstance(queries, list):
            raise _HttpError(400, "BadRequest", "queries must be an array")
        identity = self._identity(request)
        results = []
        # No await in this loop: every query runs at the same snapshot.
        for q in queries:
            if not isinstance(q, dict):
                raise _HttpError(400, "BadRequest", "each query must be an object")
            outcome = self.engine.run_query(q.get("path", ""), self._args(q.get("args")), identity)
            results.append(self._result_body(outcome, self._format(q)))
        return web.json_response({"results": results})

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.authority.jwks())

    async def _functions(self, request: web.Request) -> web.Response:
        return web.json_response({"functions": self.app.describe()})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"server": "collab-embedded", "ts": encode_ts(self.storage.last_ts)})


def _system_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)
