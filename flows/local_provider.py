"""litellm ↔ the local llama.cpp engine (``flows.local_model``): the custom provider ``local``.

litellm hands ``local/<name>`` calls to ``LocalProvider``; its streaming chunks carry the
engine's tokens, then a last chunk with the finish reason and llama.cpp's token counts. Errors
are raised as litellm's ``CustomLLMError`` so litellm wraps them like any provider's (and
``flows.llm`` classifies them: a missing model is a 404, a prompt over the context a 400).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from collab.flows.llm import load_litellm
from collab.flows.local_model import (
    DEFAULT_MAX_TOKENS,
    PROVIDER,
    GenerationResult,
    LocalModelError,
    LocalModelUnavailable,
    engine,
    find_weights,
)

__all__ = ["LOOP_LIMIT", "LoopGuard", "generation_params", "plain_messages", "register"]

# A small model sometimes falls into a loop, writing the same piece ("today.") again and again
# until max_tokens. litellm raises after 100 identical chunks in a row, which would fail the
# whole run for a text that is merely poor; the local provider ends the answer itself first,
# keeping what was written, as if the model had stopped.
LOOP_LIMIT = 30


class LoopGuard:
    """Counts identical chunks in a row (only chunks over 2 characters, as litellm does)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or LOOP_LIMIT
        self.last: str | None = None
        self.count = 0
        self.chunks = 0

    def looping(self, text: str) -> bool:
        """Note ``text``; True once it is the ``limit``-th identical chunk in a row."""
        self.chunks += 1
        if len(text) <= 2:
            self.last, self.count = None, 0
            return False
        self.count = self.count + 1 if text == self.last else 1
        self.last = text
        return self.count >= self.limit


def generation_params(optional_params: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI-style sampling parameters llama.cpp takes, from litellm's ``optional_params``."""
    params: dict[str, Any] = {"max_tokens": DEFAULT_MAX_TOKENS}
    for key in ("temperature", "top_p", "max_tokens", "stop", "seed", "presence_penalty",
                "frequency_penalty"):
        if optional_params.get(key) is not None:
            params[key] = optional_params[key]
    if optional_params.get("max_completion_tokens") is not None:
        params["max_tokens"] = optional_params["max_completion_tokens"]
    return params


def plain_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Messages with string contents (OpenAI-style content parts are flattened): the chat
    template wants plain strings."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append({"role": message.get("role", "user"), "content": content or ""})
    return out


_provider: Any = None
_register_lock = threading.Lock()


def _make_provider() -> Any:
    load_litellm()
    from litellm import CustomLLM
    from litellm.llms.custom_llm import CustomLLMError
    from litellm.types.utils import GenericStreamingChunk, Usage

    def chunk_of(text: str) -> GenericStreamingChunk:
        return {
            "text": text,
            "is_finished": False,
            "finish_reason": "",
            "usage": None,
            "index": 0,
            "tool_use": None,
        }

    def last_chunk(result: GenerationResult) -> GenericStreamingChunk:
        usage = {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        }
        return {
            "text": "",
            "is_finished": True,
            "finish_reason": result.finish_reason,
            "usage": usage,
            "index": 0,
            "tool_use": None,
        }  # type: ignore[typeddict-item]

    def looped_chunk(guard: LoopGuard) -> GenericStreamingChunk:
        """The end of an answer stopped in a loop: the chunks so far are its tokens (the
        prompt's count is not known without the engine's result)."""
        return {
            "text": "",
            "is_finished": True,
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 0, "completion_tokens": guard.chunks, "total_tokens": guard.chunks},
            "index": 0,
            "tool_use": None,
        }  # type: ignore[typeddict-item]

    def fill(model_response: Any, model: str, text: str, last: Any) -> Any:
        model_response.choices[0].message.content = text
        model_response.choices[0].finish_reason = (last or {}).get("finish_reason") or "stop"
        model_response.model = model
        usage = (last or {}).get("usage") or {}
        model_response.usage = Usage(  # type: ignore[attr-defined]
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            total_tokens=usage.get("total_tokens", 0),
        )
        return model_response

    def name_of(model: str) -> str:
        try:
            find_weights(model)
        except LocalModelUnavailable as exc:
            raise CustomLLMError(status_code=404, message=str(exc)) from exc
        return model.removeprefix(f"{PROVIDER}/")

    class LocalProvider(CustomLLM):  # type: ignore[misc]
        async def astreaming(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> AsyncIterator[GenericStreamingChunk]:
            optional = kwargs.get("optional_params") or {}
            stream = engine.stream(
                name_of(model), plain_messages(messages), generation_params(optional)
            )
            guard = LoopGuard()
            try:
                async for item in stream:
                    if isinstance(item, GenerationResult):
                        yield last_chunk(item)
                    else:
                        yield chunk_of(item)
                        if guard.looping(item):  # closing the stream stops the engine
                            yield looped_chunk(guard)
                            return
            except LocalModelUnavailable as exc:
                raise CustomLLMError(status_code=503, message=str(exc)) from exc
            except LocalModelError as exc:
                raise CustomLLMError(status_code=exc.status, message=str(exc)) from exc
            finally:
                await stream.aclose()

        def streaming(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Iterator[GenericStreamingChunk]:
            optional = kwargs.get("optional_params") or {}
            tokens: list[str] = []
            try:
                result = engine.generate_now(
                    name_of(model),
                    plain_messages(messages),
                    generation_params(optional),
                    tokens.append,
                )
            except LocalModelUnavailable as exc:
                raise CustomLLMError(status_code=503, message=str(exc)) from exc
            except LocalModelError as exc:
                raise CustomLLMError(status_code=exc.status, message=str(exc)) from exc
            guard = LoopGuard()
            for token in tokens:
                yield chunk_of(token)
                if guard.looping(token):
                    yield looped_chunk(guard)
                    return
            yield last_chunk(result)

        async def acompletion(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Any:
            parts: list[str] = []
            last: Any = None
            async for item in self.astreaming(model, messages, *args, **kwargs):
                if item["is_finished"]:
                    last = item
                else:
                    parts.append(item["text"])
            return fill(kwargs["model_response"], model, "".join(parts), last)

        def completion(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Any:
            parts: list[str] = []
            last: Any = None
            for item in self.streaming(model, messages, *args, **kwargs):
                if item["is_finished"]:
                    last = item
                else:
                    parts.append(item["text"])
            return fill(kwargs["model_response"], model, "".join(parts), last)

    return LocalProvider()


def register() -> None:
    """Register the ``local`` provider with litellm (idempotent, cheap: loads no weights)."""
    global _provider
    litellm = load_litellm()
    with _register_lock:
        if _provider is None:
            _provider = _make_provider()
        if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
            litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": _provider})
