"""The offline default model: llama.cpp (xllamacpp) behind litellm's custom-provider interface.

The slow tests run the real SmolLM2-135M weights. None of them sizes a time budget for a quiet
machine: cancellation is checked against the time the same engine needs to read the same kind
of prompt in the same test, and queueing by the order of what arrives.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import stat
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from collab.flows import local_model, local_provider
from collab.flows.errors import ModelNotFound, ProviderError
from collab.flows.llm import TokenChunk, stream_completion
from collab.flows.local_model import (
    DEFAULT_LOCAL_MODEL,
    GenerationResult,
    binding_available,
    engine,
    find_weights,
    register_local_model,
)

pytestmark = [
    pytest.mark.timeout(300),
    # litellm's own use of deprecated pydantic APIs: not ours to fix, not worth the noise.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

needs_binding = pytest.mark.skipif(
    not binding_available(), reason="xllamacpp is not importable: pip install xllamacpp"
)

QUESTION = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


def long_prompt(variant: str, items: int = 60) -> list[dict[str, str]]:
    """~1,000 tokens; ``variant`` opens it, so no two variants share a cached prefix."""
    plan = " ".join(f"Step {i}: the {variant} plan ships on Friday unless test {i} fails."
                    for i in range(items))
    return [{"role": "system", "content": f"{variant}: {plan}"},
            {"role": "user", "content": "What is the biggest risk in this plan?"}]


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


def test_weights_ship_in_the_package() -> None:
    path = find_weights(DEFAULT_LOCAL_MODEL)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"


async def test_unknown_local_model_is_model_not_found() -> None:
    with pytest.raises(ModelNotFound, match="no local model named 'nope'"):
        async for _ in stream_completion("local/nope", QUESTION, agent="smol"):
            pass


async def test_missing_gguf_file_is_model_not_found(tmp_path: Path) -> None:
    model = register_local_model("ghost", tmp_path / "ghost.gguf")
    with pytest.raises(ModelNotFound, match="GGUF file not found"):
        async for _ in stream_completion(model, QUESTION):
            pass


def test_a_stopped_reader_ends_the_request_at_the_next_chunk() -> None:
    """The callback contract with llama.cpp: True ends the request (it then cancels its task),
    and a progress chunk during a long prompt is as good a place to stop as a token."""
    stop = threading.Event()
    tokens: list[str] = []
    reader = local_model._Reader(tokens.append, stop)
    progress = {"choices": [{"delta": {}}], "prompt_progress": {"total": 900, "processed": 64}}
    token = {"choices": [{"delta": {"content": "Hi"}, "finish_reason": None}]}
    assert reader.on_chunk(progress) is False
    assert reader.on_chunk(token) is False
    stop.set()
    assert reader.on_chunk(progress) is True
    assert reader.on_chunk(token) is True
    result = reader.result()
    assert (result.finish_reason, result.prompt_tokens, result.completion_tokens) == (
        "cancelled", 900, 1)
    assert tokens == ["Hi"]


def test_a_refused_request_raises_with_llama_cpp_status() -> None:
    reader = local_model._Reader(lambda _: None, threading.Event())
    assert reader.on_chunk({"error": {"code": 400, "message": "too long"}}) is True
    with pytest.raises(local_model.LocalModelError, match="too long") as caught:
        reader.result()
    assert caught.value.status == 400


@pytest.mark.slow
@needs_binding
async def test_local_model_gives_a_real_reply() -> None:
    chunks: list[TokenChunk] = []
    async for chunk in stream_completion(
        DEFAULT_LOCAL_MODEL, QUESTION, max_tokens=64, temperature=0
    ):
        chunks.append(chunk)
    *tokens, last = chunks
    text = "".join(c.text for c in tokens)
    assert len(tokens) >= 3  # streamed token by token, not one blob
    assert "Paris" in text
    assert last.done and last.finish_reason in ("stop", "length")
    assert last.usage is not None and not last.usage.estimated
    # llama.cpp counts every sampled token, the end-of-turn token included.
    assert len(tokens) <= last.usage.completion_tokens <= 64
    assert last.usage.prompt_tokens > 10
    assert last.usage.cost_usd == 0.0


@pytest.mark.slow
@needs_binding
async def test_cancel_stops_generation_at_the_next_token() -> None:
    cancel = asyncio.Event()
    story = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
    received = 0
    last: TokenChunk | None = None
    async for chunk in stream_completion(DEFAULT_LOCAL_MODEL, story, max_tokens=400, cancel=cancel):
        if chunk.done:
            last = chunk
        else:
            received += 1
            if received == 3:
                cancel.set()
    assert last is not None and last.finish_reason == "cancelled"
    assert received <= 4
    await until(lambda: not engine.busy)  # the model is free for the next run


@pytest.mark.slow
@needs_binding
async def test_cancel_during_a_long_prompt_frees_the_model_within_a_prompt_step() -> None:
    """A cancelled run must not keep the model busy reading its prompt: llama.cpp reports
    progress every PROMPT_STEP tokens, and the engine stops there."""
    await asyncio.to_thread(local_model.preload)
    loop = asyncio.get_running_loop()
    # What reading a whole long prompt costs on this machine, right now.
    started = loop.time()
    async for chunk in stream_completion(DEFAULT_LOCAL_MODEL, long_prompt("first"), max_tokens=1):
        if chunk.done:
            assert chunk.usage is not None and chunk.usage.prompt_tokens > 10 * local_model.PROMPT_STEP
    whole_prompt = loop.time() - started

    cancel = asyncio.Event()

    async def run() -> TokenChunk:
        async for chunk in stream_completion(
            DEFAULT_LOCAL_MODEL, long_prompt("second"), max_tokens=50, cancel=cancel
        ):
            if chunk.done:
                return chunk
        raise AssertionError("no final chunk")

    task = asyncio.create_task(run())
    await until(lambda: engine.busy)
    cancelled_at = loop.time()
    cancel.set()
    last = await task
    await until(lambda: not engine.busy)
    freed_after = loop.time() - cancelled_at
    assert last.finish_reason == "cancelled"
    # The prompt has 10+ steps; the cancel waits for at most the one in progress.
    print(f"whole prompt {whole_prompt:.2f} s, model free {freed_after:.3f} s after the cancel")
    assert freed_after < whole_prompt / 4


@pytest.mark.slow
@needs_binding
async def test_concurrent_runs_queue_for_the_model_one_at_a_time() -> None:
    order: list[str] = []

    async def ask(label: str, question: str, cancel: asyncio.Event | None = None) -> str:
        parts: list[str] = []
        async for chunk in stream_completion(
            DEFAULT_LOCAL_MODEL, [{"role": "user", "content": question}], max_tokens=24,
            cancel=cancel,
        ):
            if chunk.text:
                order.append(label)
                parts.append(chunk.text)
            elif chunk.done:
                order.append(f"{label}:{chunk.finish_reason}")
        return "".join(parts)

    # A queued run that is cancelled ends at once, without waiting for the model.
    cancel_c = asyncio.Event()
    first = asyncio.create_task(ask("a", "Say hello."))
    await until(lambda: "a" in order)
    second = asyncio.create_task(ask("b", "Name a color."))
    queued = asyncio.create_task(ask("c", "Name a fruit.", cancel_c))
    await until(lambda: len(engine._running) == 3)  # b and c wait for their turn
    cancel_c.set()
    assert await queued == ""
    assert "a:stop" not in order and "a:length" not in order  # a was still generating
    replies = await asyncio.gather(first, second)
    assert all(r.strip() for r in replies)
    # Never interleaved: all of a's tokens, then all of b's.
    tokens = [label for label in order if label in ("a", "b")]
    assert tokens == sorted(tokens), order
    await until(lambda: not engine.busy)


@pytest.mark.slow
@needs_binding
async def test_a_prompt_longer_than_the_context_is_a_clear_error() -> None:
    too_long = [{"role": "user", "content": "word " * (local_model.N_CTX + 500)}]
    with pytest.raises(ProviderError, match="context size"):
        async for _ in stream_completion(DEFAULT_LOCAL_MODEL, too_long, max_tokens=8):
            pass


def _listening_tcp_inodes() -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                fields = row.split()
                if fields[3] == "0A":  # LISTEN
                    inodes.add(fields[9])
    return inodes


def _our_socket_inodes() -> set[str]:
    inodes: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # closed since the listing (the listing's own fd, for one)
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _signal_handler_address(signum: int) -> bytes:
    """The C-level handler of ``signum`` (Python's own handler is not what it reports)."""
    libc = ctypes.CDLL(None, use_errno=True)
    action = ctypes.create_string_buffer(256)  # larger than any struct sigaction
    assert libc.sigaction(signum, None, action) == 0
    return action.raw[:8]


@pytest.mark.slow
@needs_binding
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sigaction")
async def test_loading_keeps_the_process_signals_and_opens_no_tcp_port() -> None:
    before = {s: _signal_handler_address(s) for s in (signal.SIGINT, signal.SIGTERM)}
    await asyncio.to_thread(local_model.preload)
    # llama.cpp's server code installs its own SIGINT/SIGTERM handlers in some versions: that
    # would break Ctrl+C and `collab serve --stop`.
    assert {s: _signal_handler_address(s) for s in before} == before
    # It listens on a Unix socket in a private folder, not on a TCP port.
    assert engine.socket_dir is not None
    assert stat.S_IMODE(os.stat(engine.socket_dir).st_mode) == 0o700
    assert any(stat.S_ISSOCK(p.stat().st_mode) for p in Path(engine.socket_dir).iterdir())
    assert not _our_socket_inodes() & _listening_tcp_inodes()


@pytest.mark.slow
@needs_binding
async def test_warm_up_loads_litellm_and_the_weights() -> None:
    from collab.flows import llm

    await llm.warm_up([DEFAULT_LOCAL_MODEL, "openai/gpt-4o-mini"])
    assert llm._litellm is not None
    assert "smollm2" in engine._servers


def _looping_engine(monkeypatch: pytest.MonkeyPatch, pieces: int) -> None:
    """The engine, replaced for this test only: a model stuck writing " today." ``pieces``
    times (what the 135M model once did in the writing preset)."""

    async def stream(name: str, messages: Any, params: Any) -> AsyncIterator[Any]:
        yield "It is sunny"
        for _ in range(pieces):
            yield " today."
        yield GenerationResult(finish_reason="length", prompt_tokens=12, completion_tokens=pieces + 1)

    monkeypatch.setattr(engine, "stream", stream)


async def test_a_model_stuck_in_a_loop_ends_its_answer_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    _looping_engine(monkeypatch, 200)
    chunks = [c async for c in stream_completion(DEFAULT_LOCAL_MODEL, QUESTION, max_tokens=512)]
    *tokens, last = chunks
    text = "".join(c.text for c in tokens)
    assert text == "It is sunny" + " today." * local_provider.LOOP_LIMIT  # what was written is kept
    assert last.done and last.finish_reason == "stop"


async def test_a_provider_stuck_in_a_loop_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the local guard, litellm's own one (100 identical chunks) stops the stream: the
    # run fails with a sentence that says what happened, not "lost the connection".
    monkeypatch.setattr(local_provider, "LOOP_LIMIT", 10_000)
    _looping_engine(monkeypatch, 200)
    with pytest.raises(ProviderError) as caught:
        async for _ in stream_completion(DEFAULT_LOCAL_MODEL, QUESTION, max_tokens=512):
            pass
    assert "the same text over and over" in str(caught.value)
    assert "connection" not in str(caught.value)
