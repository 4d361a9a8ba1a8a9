"""The one place that calls models: ``stream_completion`` over ``litellm.acompletion(stream=True)``.

- litellm is imported lazily (its import costs ~2 s), so the app starts without paying for it,
  and with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` set first (otherwise the import fetches the cost
  map over the network, which hangs or fails offline).
- Every failure is classified into ``flows.errors`` (one sentence naming the agent and the
  model); a missing key is caught before any request is made and names the env var.
- ``cancel`` (an ``asyncio.Event``) ends the stream promptly: the pending read is cancelled and
  the provider stream is closed (for HTTP providers: the connection), so a cancelled run stops
  costing tokens at once. The stream then ends with a final chunk whose ``finish_reason`` is
  ``"cancelled"``.
- ``timeout`` bounds every wait for the provider: the first token and each next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from collab.flows.errors import (
    AuthenticationFailed,
    LLMError,
    MissingApiKey,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    RateLimited,
)
from collab.wire.validity import clean_text

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TIMEOUT",
    "Message",
    "TokenChunk",
    "Usage",
    "classify_error",
    "litellm_ready",
    "load_litellm",
    "stream_completion",
    "warm_up",
]

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 0.7
DEFAULT_TIMEOUT = 60.0

Message = Mapping[str, Any]
T = TypeVar("T")

_litellm: ModuleType | None = None
# Resolved when a running warm-up has loaded litellm and paid its first-call costs (the loop
# that started it); a run that arrives meanwhile waits for it instead of importing on the loop.
_ready: asyncio.Future[None] | None = None


def load_litellm() -> ModuleType:
    """Import litellm on first use (not at app start), offline-safe and quiet."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        # litellm prints "Give Feedback / Get Help" banners to stdout on errors: that would
        # scribble over the TUI. Errors reach the user through flows.errors instead.
        litellm.suppress_debug_info = True
        litellm.set_verbose = False
        # Retries are the run worker's decision (it sees RateLimited.retryable), not litellm's.
        litellm.num_retries = 0
        _litellm = litellm
    return _litellm


async def litellm_ready() -> ModuleType:
    """litellm, loaded without ever blocking the event loop.

    Importing it takes seconds, and an import another thread is running holds Python's import
    lock: calling :func:`load_litellm` on the loop while a worker's warm-up thread imports it
    would stall the whole loop (every stream, every heartbeat) until the import is done, long
    enough for a short claim lease to expire. So a run waits for a warm-up in progress, and
    otherwise imports in a thread."""
    ready = _ready
    if ready is not None and not ready.done() and ready.get_loop() is asyncio.get_running_loop():
        await asyncio.shield(ready)
    if _litellm is None:
        await asyncio.to_thread(load_litellm)
    assert _litellm is not None
    return _litellm


async def warm_up(models: Sequence[str] = ()) -> None:
    """Pay the start-up costs off the event loop before the first run needs them: the litellm
    import (~2 s), its first-call costs and, for ``local/...`` models, loading their weights.
    A worker calls this when it starts; the TUI never needs to. Runs that start meanwhile wait
    for the litellm part (:func:`litellm_ready`), not for the weights."""
    global _ready
    ready = _ready = asyncio.get_running_loop().create_future()
    try:
        await asyncio.to_thread(load_litellm)
        await asyncio.to_thread(_prime_first_call)
    finally:
        ready.set_result(None)
    local = [m for m in models if m.startswith("local/")]
    if local:
        from collab.flows.local_model import ensure_registered, preload

        ensure_registered()
        for model in local:
            await asyncio.to_thread(preload, model)


def _prime_first_call() -> None:
    """litellm's first completion imports and builds a lot lazily (provider handlers, the
    tokenizer for usage estimates): ~120 ms during which the event loop, and every stream on
    it, stands still. A throwaway call with ``mock_response`` (no network) on a private loop
    in a worker thread pays that once, before any run starts; the first real call then blocks
    the loop ~15 ms (measured)."""
    litellm = load_litellm()

    async def once() -> None:
        response = await litellm.acompletion(
            model="openai/warm-up", messages=[{"role": "user", "content": "warm up"}],
            mock_response="ok", stream=True, api_key="unused", api_base="http://127.0.0.1:9/v1",
        )
        async for _ in response:
            pass
        litellm.token_counter(model="gpt-3.5-turbo", text="warm up")

    try:
        asyncio.run(once())
    except Exception as exc:  # warming is an optimisation: never a reason not to start
        log.debug("litellm warm-up call failed: %s", exc)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts and cost of one call. ``estimated`` when the provider sent no usage block
    (counts then come from litellm's tokenizer). ``cost_usd`` is 0 for models litellm has no
    price for (local models, self-hosted servers)."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TokenChunk:
    """One piece of a streamed reply. The last chunk has ``done=True``, empty ``text``, the
    ``finish_reason`` ("stop", "length", "cancelled", ...) and the ``usage``."""

    text: str
    done: bool = False
    finish_reason: str | None = None
    usage: Usage | None = None


class _Cancelled(Exception):
    pass


async def stream_completion(
    model: str,
    messages: Sequence[Message],
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    agent: str | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    max_tokens: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cancel: asyncio.Event | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AsyncIterator[TokenChunk]:
    """Stream a chat completion from any litellm model (``openai/gpt-4o``, ``anthropic/...``,
    ``local/smollm2``, ...).

    ``api_key_env`` is the variable the config says holds the key; ``agent`` (a handle) only
    makes error messages name who failed. Raises ``flows.errors.LLMError`` subclasses only.
    """
    litellm = await litellm_ready()
    if model.startswith("local/"):
        from collab.flows.local_model import ensure_registered

        await asyncio.to_thread(ensure_registered)
    key = _resolve_api_key(litellm, model, api_base, api_key, api_key_env, agent)
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [dict(m) for m in messages],
        "stream": True,
        # Ask for the usage block at the end of the stream (OpenAI-style providers only send it
        # when asked); litellm drops the option for providers that don't take it.
        "stream_options": {"include_usage": True},
        "temperature": temperature,
        "timeout": timeout,
        "max_retries": 0,
    }
    if api_base:
        kwargs["api_base"] = api_base
    if key:
        kwargs["api_key"] = key
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if extra:
        kwargs.update(extra)

    started = time.monotonic()
    parts: list[str] = []
    provider_usage: Any = None
    finish_reason: str | None = None
    response: Any = None
    cancel_waiter: asyncio.Task[Any] | None = (
        asyncio.ensure_future(cancel.wait()) if cancel is not None else None
    )
    try:
        try:
            response = await _race(
                litellm.acompletion(**kwargs), cancel_waiter, timeout, model, agent
            )
            stream = response.__aiter__()
            while True:
                try:
                    chunk = await _race(stream.__anext__(), cancel_waiter, timeout, model, agent)
                except StopAsyncIteration:
                    break
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    provider_usage = usage
                for choice in getattr(chunk, "choices", None) or ():
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                    text = getattr(choice.delta, "content", None)
                    if text:
                        # A provider can stream a lone surrogate; unsendable, so U+FFFD instead
                        # of a write the server refuses mid-run (wire/validity.py).
                        text = clean_text(text)
                        parts.append(text)
                        yield TokenChunk(text)
        except _Cancelled:
            finish_reason = "cancelled"
        except LLMError:
            raise
        except Exception as exc:  # every provider failure becomes one clear LLMError
            raise classify_error(exc, model=model, agent=agent, api_key_env=api_key_env) from exc
        # Off the loop: without a usage block from the provider, counting loads a tokenizer.
        usage = await asyncio.to_thread(_usage, litellm, model, messages, "".join(parts), provider_usage)
        log.debug(
            "%s: %d tokens in %.2f s", model, usage.completion_tokens, time.monotonic() - started
        )
        yield TokenChunk("", done=True, finish_reason=finish_reason or "stop", usage=usage)
    finally:
        if cancel_waiter is not None:
            cancel_waiter.cancel()
        if response is not None and hasattr(response, "aclose"):
            # Closing the provider stream is what stops the tokens (and the bill) on a cancel;
            # a failure to close must not mask the real outcome.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(response.aclose(), timeout=2)


async def _race(
    step: Awaitable[T],
    cancel_waiter: asyncio.Task[Any] | None,
    timeout: float,
    model: str,
    agent: str | None,
) -> T:
    """Await ``step`` unless the cancel event fires or ``timeout`` passes first."""
    task = asyncio.ensure_future(step)
    waiters: set[asyncio.Future[Any]] = {task}
    if cancel_waiter is not None:
        waiters.add(cancel_waiter)
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    if cancel_waiter is not None and cancel_waiter in done:
        raise _Cancelled()
    raise ProviderTimeout(timeout=timeout, model=model, agent=agent)


# -- API keys ------------------------------------------------------------------------------

_PLACEHOLDER_KEY = "sk-no-key-required"


def _resolve_api_key(
    litellm: ModuleType,
    model: str,
    api_base: str | None,
    api_key: str | None,
    api_key_env: str | None,
    agent: str | None,
) -> str | None:
    if api_key:
        return api_key
    if api_key_env:
        value = os.environ.get(api_key_env)
        if value:
            return value
        raise MissingApiKey(env_var=api_key_env, model=model, agent=agent)
    if model.startswith("local/"):
        return None
    try:
        env = litellm.validate_environment(model=model)
    except Exception:  # unknown provider: acompletion will say so, classified
        return None
    missing = [k for k in env.get("missing_keys") or [] if k.endswith(("_API_KEY", "_TOKEN"))]
    if env.get("keys_in_environment") or not missing:
        # Providers whose credentials come from elsewhere (cloud profiles, ...) are not
        # pre-checked; their own error is classified if they fail.
        return None
    if api_base:
        # A self-hosted OpenAI-compatible server (vLLM, llama.cpp server, ...) usually needs no
        # key, but the OpenAI client refuses to send a request without one. If the server does
        # want a key, its 401 becomes AuthenticationFailed.
        return _PLACEHOLDER_KEY
    raise MissingApiKey(env_var=missing[0], model=model, agent=agent)


# -- usage and cost ------------------------------------------------------------------------


def _usage(
    litellm: ModuleType,
    model: str,
    messages: Sequence[Message],
    text: str,
    provider_usage: Any,
) -> Usage:
    prompt = getattr(provider_usage, "prompt_tokens", None)
    completion = getattr(provider_usage, "completion_tokens", None)
    estimated = prompt is None or completion is None
    if prompt is None:
        prompt = _count(litellm, model, messages=[dict(m) for m in messages])
    if completion is None:
        completion = _count(litellm, model, text=text) if text else 0
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt, completion_tokens=completion
        )
        cost = float(prompt_cost) + float(completion_cost)
    except Exception:  # no price known for this model: local and self-hosted models are free
        cost = 0.0
    return Usage(int(prompt), int(completion), cost, estimated)


def _count(litellm: ModuleType, model: str, **what: Any) -> int:
    try:
        return int(litellm.token_counter(model=model, **what))
    except Exception:
        text = what.get("text") or " ".join(str(m.get("content", "")) for m in what["messages"])
        return max(1, len(text) // 4)


# -- error classification ------------------------------------------------------------------

_PREFIX = re.compile(r"^\s*(?:litellm\.)?[A-Za-z]+(?:Error|Exception)\s*(?::|-)\s*")
_KEY_VAR = re.compile(r"\b([A-Z][A-Z0-9_]*_(?:API_KEY|KEY|TOKEN))\b")


def provider_message(exc: BaseException) -> str:
    """The provider's own words from a litellm exception, without litellm's wrapping
    ("litellm.RateLimitError: RateLimitError: OpenAIException - ...", help links, the original
    exception repeated)."""
    text = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    for marker in (" Original exception:", "\nReceived Model Group", " Learn more:", "\n"):
        head, sep, _ = text.partition(marker)
        if sep and head.strip():
            text = head
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text, count=1)
    text = text.strip() or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _retry_after(exc: BaseException) -> float | None:
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None) or getattr(
            holder, "litellm_response_headers", None
        )
        if not headers:
            continue
        with contextlib.suppress(Exception):
            value = headers.get("retry-after") or headers.get("Retry-After")
            if value is not None:
                return float(value)
    return None


def classify_error(
    exc: BaseException,
    *,
    model: str,
    agent: str | None = None,
    api_key_env: str | None = None,
) -> LLMError:
    """Map any exception raised by a model call to the matching ``LLMError``."""
    if isinstance(exc, LLMError):
        return exc
    name = type(exc).__name__
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    message = provider_message(exc)
    lowered = message.lower()

    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or names & {
        "Timeout",
        "APITimeoutError",
    }:
        return ProviderTimeout(
            timeout=float(getattr(exc, "timeout", 0) or 0) or DEFAULT_TIMEOUT,
            model=model,
            agent=agent,
        )
    if "RateLimitError" in names or status == 429:
        return RateLimited(message, model=model, agent=agent, retry_after=_retry_after(exc))
    if ("missing" in lowered or "not set" in lowered or "no api key" in lowered) and (
        "key" in lowered or "credential" in lowered
    ):
        found = _KEY_VAR.search(message)
        env_var = api_key_env or (found.group(1) if found else "the provider's API key variable")
        return MissingApiKey(env_var=env_var, model=model, agent=agent)
    if "AuthenticationError" in names or "PermissionDeniedError" in names or status in (401, 403):
        return AuthenticationFailed(
            f"the provider rejected the API key{f' in {api_key_env}' if api_key_env else ''}: "
            f"{message}",
            model=model,
            agent=agent,
            status_code=status,
        )
    if "NotFoundError" in names or status == 404:
        return ModelNotFound(
            f"the provider does not know this model: {message}", model=model, agent=agent
        )
    if "LLM Provider NOT provided" in str(exc) or "LiteLLMUnknownProvider" in names:
        return ModelNotFound(
            "unknown provider: use a litellm model name such as openai/gpt-4o-mini, "
            "anthropic/claude-3-5-haiku-latest or local/smollm2",
            model=model,
            agent=agent,
        )
    if "ContextWindowExceededError" in names:
        return ProviderError(
            f"the conversation is too long for this model's context window: {message}",
            model=model,
            agent=agent,
            status_code=status,
        )
    if "repeating the same chunk" in lowered:  # litellm's guard against a model stuck in a loop
        return ProviderError(
            "the model kept writing the same text over and over and was stopped; try again",
            model=model,
            agent=agent,
            status_code=status,
            retryable=True,
        )
    if names & {
        "APIConnectionError",
        "MidStreamFallbackError",
        "ServiceUnavailableError",
    } or isinstance(exc, ConnectionError):
        return ProviderError(
            f"lost the connection to the provider: {message}",
            model=model,
            agent=agent,
            status_code=status,
            retryable=True,
        )
    if names & {"InternalServerError", "BadGatewayError"} or (
        isinstance(status, int) and status >= 500
    ):
        return ProviderError(message, model=model, agent=agent, status_code=status, retryable=True)
    if "APIError" in names or "BadRequestError" in names or status is not None:
        return ProviderError(message, model=model, agent=agent, status_code=status)
    # Not a provider error at all (a bug of ours or of a library): still a sentence for the user,
    # with the traceback in the log for us.
    log.warning("unexpected error from %s", model, exc_info=exc)
    return ProviderError(f"unexpected {name}: {message}", model=model, agent=agent)
