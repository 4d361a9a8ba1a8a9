"""The offline default model: llama.cpp behind litellm's custom-provider interface."""

from __future__ import annotations

import asyncio

import pytest
from collab.flows.errors import ModelNotFound
from collab.flows.llm import TokenChunk, stream_completion
from collab.flows.local_model import (
    DEFAULT_LOCAL_MODEL,
    find_weights,
    llama_cpp_available,
    register_local_model,
)

pytestmark = [
    pytest.mark.timeout(180),
    # litellm's own use of deprecated pydantic APIs: not ours to fix, not worth the noise.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

needs_llama = pytest.mark.skipif(
    not llama_cpp_available(),
    reason='llama_cpp is not importable: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install llama-cpp-python',
)

QUESTION = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


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


async def test_missing_gguf_file_is_model_not_found(tmp_path: object) -> None:
    model = register_local_model("ghost", f"{tmp_path}/ghost.gguf")
    with pytest.raises(ModelNotFound, match="GGUF file not found"):
        async for _ in stream_completion(model, QUESTION):
            pass


@pytest.mark.slow
@needs_llama
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
    assert last.usage.completion_tokens == len(tokens)
    assert last.usage.prompt_tokens > 10
    assert last.usage.cost_usd == 0.0


@pytest.mark.slow
@needs_llama
async def test_local_model_cancel_and_concurrent_runs() -> None:
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

    # The model is shared: two runs at once queue for it and both complete, and the cancelled
    # generation above has released it.
    async def ask(question: str) -> str:
        parts = [
            c.text
            async for c in stream_completion(
                DEFAULT_LOCAL_MODEL, [{"role": "user", "content": question}], max_tokens=24
            )
        ]
        return "".join(parts)

    replies = await asyncio.wait_for(asyncio.gather(ask("Say hello."), ask("Name a color.")), 120)
    assert all(r.strip() for r in replies)


@pytest.mark.slow
@needs_llama
async def test_warm_up_loads_litellm_and_the_weights() -> None:
    from collab.flows import llm, local_model

    await llm.warm_up([DEFAULT_LOCAL_MODEL, "openai/gpt-4o-mini"])
    assert llm._litellm is not None
    assert "smollm2" in local_model._engine._models
