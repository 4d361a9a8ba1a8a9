"""HTTP one-shots for scripts (PROTOCOL.md section 5), with httpx.

No subscriptions, no optimistic updates: each call is one POST at the server's latest ts.
Function failures come back as HTTP 200 ``{"status": "error"}`` and raise FunctionError /
ConvexError exactly like the socket client; system errors (non-2xx) raise HttpError.

    async with HttpClient(url, auth=token) as http:
        n = await http.query(api.counter.get, {"name": "x"})

``SyncHttpClient`` is the same for plain synchronous scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import httpx

from collab.backend_client.auth import AdminKey, AuthSpec, TokenSource
from collab.backend_client.errors import HttpError, function_error
from collab.backend_client.refs import FunctionRef, udf_path_of
from collab.wire.values import convex_to_json, json_to_convex

__all__ = ["HttpClient", "SyncHttpClient"]

R = TypeVar("R")
Kind = Literal["query", "mutation", "action", "function"]


def _base(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not an absolute URL: {url!r}")
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{rest.rstrip('/')}"


def _auth_header(admin: AdminKey | None, token: str | None) -> dict[str, str]:
    if admin is not None:
        return {"Authorization": f"Convex {admin.key}"}
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {}


def _body(fn: FunctionRef[Any, Any] | str, args: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "path": udf_path_of(fn),
        "args": convex_to_json(dict(args or {})),
        "format": "convex_encoded_json",
    }


def _result(resp: httpx.Response, path: str, kind: str) -> Any:
    if resp.status_code != 200:
        try:
            body = resp.json()
            code, message = body.get("code"), body.get("message", resp.text)
        except ValueError:
            code, message = None, resp.text
        raise HttpError(resp.status_code, code, message)
    body = resp.json()
    if body.get("status") == "success":
        return json_to_convex(body.get("value"))
    has_data = "errorData" in body
    raise function_error(
        str(body.get("errorMessage", "")),
        json_to_convex(body["errorData"]) if has_data else None,
        has_data,
        udf_path=path,
        kind=kind,
        log_lines=body.get("logLines"),
    )


def _registry(resp: httpx.Response) -> dict[str, str]:
    if resp.status_code != 200:
        raise HttpError(resp.status_code, None, resp.text)
    return {
        f["path"]: f["kind"]
        for f in resp.json().get("functions", [])
        if f.get("visibility", "public") == "public"
    }


class HttpClient:
    """Async HTTP one-shots. ``auth`` as for ConvexClient (a fetcher is asked once, then again
    with ``force_refresh=True`` if the server answers 401)."""

    def __init__(self, url: str, *, auth: AuthSpec | AdminKey = None, timeout: float = 30.0) -> None:
        self.url = _base(url)
        self._admin = auth if isinstance(auth, AdminKey) else None
        self._tokens = TokenSource(None if self._admin else auth)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)

    async def __aenter__(self) -> "HttpClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, route: str, body: dict[str, Any]) -> httpx.Response:
        if self._tokens.is_fetcher and (self._tokens.token is None or self._tokens.needs_refresh_now()):
            await self._tokens.fetch(self._tokens.token is not None)
        resp = await self._http.post(route, json=body, headers=_auth_header(self._admin, self._tokens.token))
        if resp.status_code == 401 and self._tokens.is_fetcher:
            await self._tokens.fetch(True)
            resp = await self._http.post(route, json=body, headers=_auth_header(self._admin, self._tokens.token))
        return resp

    async def query(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> R:
        return _result(await self._post("/api/query", _body(fn, args)), udf_path_of(fn), "query")  # type: ignore[no-any-return]

    async def mutation(
        self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None, *,
        idempotency_key: str | None = None,
    ) -> R:
        a = dict(args or {})
        if idempotency_key is not None:
            a["idempotencyKey"] = idempotency_key
        return _result(await self._post("/api/mutation", _body(fn, a)), udf_path_of(fn), "mutation")  # type: ignore[no-any-return]

    async def action(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> R:
        return _result(await self._post("/api/action", _body(fn, args)), udf_path_of(fn), "action")  # type: ignore[no-any-return]

    async def function(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> R:
        """Any kind of function (``/api/function``): for a script that does not know it."""
        return _result(await self._post("/api/function", _body(fn, args)), udf_path_of(fn), "function")  # type: ignore[no-any-return]

    async def registry(self) -> dict[str, str]:
        """``{udfPath: kind}`` of the server's public functions (embedded backend only:
        ``GET /api/functions``), for :func:`collab.backend_client.refs.check_refs`."""
        return _registry(await self._http.get("/api/functions"))


class SyncHttpClient:
    """Blocking twin of :class:`HttpClient` for scripts (a static token or admin key only)."""

    def __init__(self, url: str, *, auth: str | AdminKey | None = None, timeout: float = 30.0) -> None:
        self.url = _base(url)
        self._headers = _auth_header(
            auth if isinstance(auth, AdminKey) else None, auth if isinstance(auth, str) else None
        )
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=self._headers)

    def __enter__(self) -> "SyncHttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, route: str, kind: str, fn: FunctionRef[Any, Any] | str, args: Mapping[str, Any] | None) -> Any:
        return _result(self._http.post(route, json=_body(fn, args)), udf_path_of(fn), kind)

    def query(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> R:
        return self._call("/api/query", "query", fn, args)  # type: ignore[no-any-return]

    def mutation(
        self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None, *,
        idempotency_key: str | None = None,
    ) -> R:
        a = dict(args or {})
        if idempotency_key is not None:
            a["idempotencyKey"] = idempotency_key
        return self._call("/api/mutation", "mutation", fn, a)  # type: ignore[no-any-return]

    def action(self, fn: FunctionRef[Any, R] | str, args: Mapping[str, Any] | None = None) -> R:
        return self._call("/api/action", "action", fn, args)  # type: ignore[no-any-return]

    def registry(self) -> dict[str, str]:
        return _registry(self._http.get("/api/functions"))
