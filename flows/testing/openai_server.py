"""A loopback OpenAI-compatible chat-completions server: real HTTP, real SSE, scripted replies.

Tests, the CI end-to-end suite and ``bench/`` point litellm at it (model ``openai/<name>``,
``api_base=server.base_url``, any key), so litellm's real HTTP/SSE path runs, never a mock.

What it can do, per model name:

- stream a scripted reply as ``chat.completion.chunk`` SSE events at a given tokens/s, ending
  with ``data: [DONE]`` (and a usage chunk when the client asks for ``stream_options.
  include_usage``, as the OpenAI API does);
- answer with an HTTP error in the OpenAI error shape (401, 404, 429 with ``Retry-After``, 500);
- drop the connection mid-stream after N tokens;
- record every request (to assert on the messages an agent was sent) and every stream the client
  abandoned (to assert that a cancel really closed the HTTP stream).

Successive requests for one model consume its scripted replies in order; the last one repeats.

Use it in-process (``async with OpenAIStreamServer() as server``), in a thread of its own
(``with OpenAIStreamServer.in_thread() as server``, so a benchmark's own loop is not disturbed),
or as a process: ``python -m collab.flows.testing.openai_server --port 0 --tps 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

__all__ = ["OpenAIStreamServer", "RecordedRequest", "Reply", "split_tokens"]

_TOKEN_RE = re.compile(r"\s*\S+|\s+")


def split_tokens(text: str) -> list[str]:
    """Word-sized tokens with their leading whitespace, roughly like a BPE tokenizer's output;
    joining them gives back ``text`` exactly."""
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    path: str
    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


ReplyText = str | list[str] | Callable[[RecordedRequest], str]


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request.

    ``text`` may be a string (split into word tokens), an explicit token list, or a callable of
    the request (e.g. to echo the last message). ``tokens_per_second=None`` takes the server's
    default; ``0`` means as fast as the socket goes.
    """

    text: ReplyText = "Hello from the loopback model."
    tokens_per_second: float | None = None
    first_token_delay: float = 0.0
    status: int = 200
    error_message: str | None = None
    error_type: str | None = None
    retry_after: float | None = None
    disconnect_after: int | None = None

    @classmethod
    def error(
        cls, status: int, message: str | None = None, *, retry_after: float | None = None
    ) -> Reply:
        return cls(status=status, error_message=message, retry_after=retry_after)

    @classmethod
    def disconnect(
        cls,
        after_tokens: int,
        text: ReplyText = "one two three four five six",
        *,
        tokens_per_second: float | None = None,
    ) -> Reply:
        """Stream ``after_tokens`` tokens, then drop the connection where the next was due."""
        return cls(text=text, disconnect_after=after_tokens, tokens_per_second=tokens_per_second)

    def tokens(self, request: RecordedRequest) -> list[str]:
        text = self.text(request) if callable(self.text) else self.text
        return list(text) if isinstance(text, list) else split_tokens(text)


_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Bad request."),
    401: ("invalid_request_error", "Incorrect API key provided."),
    403: ("permission_error", "You are not allowed to use this model."),
    404: ("invalid_request_error", "The model does not exist."),
    429: ("rate_limit_error", "Rate limit reached, please slow down."),
    500: ("server_error", "The server had an error while processing your request."),
    503: ("server_error", "The engine is currently overloaded."),
}


@dataclass
class _Stats:
    tokens_sent: int = 0
    streams_completed: int = 0
    streams_abandoned: int = 0
    abandoned_at: list[float] = field(default_factory=list)


class OpenAIStreamServer:
    """The server. ``base_url`` (``http://127.0.0.1:PORT/v1``) is what litellm's ``api_base``
    takes; it is known once started."""

    def __init__(
        self,
        *,
        default: Reply | str | None = None,
        tokens_per_second: float = 0.0,
        known_models: set[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_token: Callable[[str, int, str], None] | None = None,
    ) -> None:
        self.default = _as_reply(default) if default is not None else Reply()
        self.tokens_per_second = tokens_per_second
        # When set, a model outside this set gets a 404 like the real API's.
        self.known_models = known_models
        self.host = host
        self.port = port
        # Called (model, index, text) right before each token is written, for latency benchmarks.
        self.on_token = on_token
        self.requests: list[RecordedRequest] = []
        self.stats = _Stats()
        self._scripts: dict[str, list[Reply]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    # -- scripting -------------------------------------------------------------------------

    def script(self, model: str, *replies: Reply | str) -> None:
        """Queue replies for ``model`` (the name after ``openai/``); the last one repeats."""
        with self._lock:
            self._scripts[model] = [_as_reply(r) for r in replies]

    def _next_reply(self, model: str) -> Reply:
        with self._lock:
            queue = self._scripts.get(model)
            if not queue:
                return self.default
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.model == model]

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        # access_log=None: a benchmark at 250 tokens/s must not pay for logging.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, **kwargs: Any) -> Iterator[OpenAIStreamServer]:
        """Run the server on an event loop in a daemon thread, for callers whose own loop is
        under measurement (benchmarks) or who are synchronous."""
        server = cls(**kwargs)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(server.start())
            except BaseException as exc:  # surfaced to the caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(server.close())
            loop.close()

        thread = threading.Thread(target=run, name="openai-loopback", daemon=True)
        thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("loopback OpenAI server did not start within 10 s")
        if failure:
            raise failure[0]
        try:
            yield server
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    # -- handlers --------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        names = sorted(self.known_models or set(self._scripts))
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "loopback"} for n in names]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error_response(400, "The request body is not valid JSON.")
        model = str(body.get("model", ""))
        recorded = RecordedRequest(
            path=request.path,
            model=model,
            body=body,
            headers=dict(request.headers),
            received_at=time.monotonic(),
        )
        self.requests.append(recorded)
        if self.known_models is not None and model not in self.known_models:
            return _error_response(404, f"The model `{model}` does not exist.", "model_not_found")
        reply = self._next_reply(model)
        if reply.status != 200:
            return _error_response(
                reply.status, reply.error_message, reply.error_type, retry_after=reply.retry_after
            )
        tokens = reply.tokens(recorded)
        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        if not recorded.stream:
            return web.json_response(self._completion(model, recorded, tokens))
        return await self._stream(request, model, recorded, reply, tokens)

    async def _stream(
        self,
        request: web.Request,
        model: str,
        recorded: RecordedRequest,
        reply: Reply,
        tokens: list[str],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        cid = f"chatcmpl-loopback-{next(self._ids)}"
        created = int(time.time())
        tps = (
            reply.tokens_per_second
            if reply.tokens_per_second is not None
            else self.tokens_per_second
        )
        loop = asyncio.get_running_loop()
        start = loop.time()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        try:
            await resp.write(chunk({"role": "assistant", "content": ""}))
            for i, token in enumerate(tokens):
                if tps > 0:
                    # Pace against the stream's start, so sleep overshoot does not accumulate.
                    delay = start + (i + 1) / tps - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if reply.disconnect_after is not None and i >= reply.disconnect_after:
                    # A drop mid-body, where the next token was due: no [DONE], no chunked-
                    # encoding terminator. close(), not abort(), so the tokens already written
                    # reach the client first. (A client that has not read them by the time the
                    # drop arrives may lose them: aiohttp raises before returning its buffer.)
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                if self.on_token is not None:
                    self.on_token(model, i, token)
                await resp.write(chunk({"content": token}))
                self.stats.tokens_sent += 1
            await resp.write(chunk({}, "stop"))
            options = recorded.body.get("stream_options") or {}
            if options.get("include_usage"):
                usage_chunk = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": _usage(recorded, tokens),
                }
                await resp.write(b"data: " + json.dumps(usage_chunk).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            self.stats.streams_completed += 1
        except (ConnectionError, asyncio.CancelledError) as exc:
            # The client went away (a cancelled run): note it, so tests can assert that a
            # cancel really closed the HTTP stream. aiohttp cancels the handler when the peer
            # disconnects; that cancellation must propagate.
            self.stats.streams_abandoned += 1
            self.stats.abandoned_at.append(time.monotonic())
            if isinstance(exc, asyncio.CancelledError):
                raise
        return resp

    def _completion(
        self, model: str, recorded: RecordedRequest, tokens: list[str]
    ) -> dict[str, Any]:
        self.stats.tokens_sent += len(tokens)
        return {
            "id": f"chatcmpl-loopback-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(recorded, tokens),
        }


def _as_reply(reply: Reply | str) -> Reply:
    return reply if isinstance(reply, Reply) else Reply(text=reply)


def _usage(recorded: RecordedRequest, tokens: list[str]) -> dict[str, int]:
    prompt = sum(len(split_tokens(str(m.get("content") or ""))) + 4 for m in recorded.messages)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": len(tokens),
        "total_tokens": prompt + len(tokens),
    }


def _error_response(
    status: int,
    message: str | None = None,
    error_type: str | None = None,
    *,
    retry_after: float | None = None,
) -> web.Response:
    default_type, default_message = _DEFAULT_ERRORS.get(status, ("api_error", "Error."))
    body = {
        "error": {
            "message": message or default_message,
            "type": error_type or default_type,
            "param": None,
            "code": error_type or default_type,
        }
    }
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.json_response(body, status=status, headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tps", type=float, default=50.0, help="tokens per second (0: no pacing)")
    parser.add_argument("--reply", default="Hello from the loopback model.")
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = OpenAIStreamServer(
            default=args.reply, tokens_per_second=args.tps, host=args.host, port=args.port
        )
        await server.start()
        print(f"listening on {server.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
