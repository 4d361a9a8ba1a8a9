"""stream_completion through litellm's real HTTP/SSE path, against the loopback server."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from collab.flows.errors import (
    AuthenticationFailed,
    LLMError,
    MissingApiKey,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    RateLimited,
)
from collab.flows.llm import TokenChunk, classify_error, provider_message, stream_completion
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

pytestmark = [
    pytest.mark.timeout(60),
    # litellm's own use of deprecated pydantic APIs: not ours to fix, not worth the noise.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]

HELLO = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello?"}]


async def collect(stream: object) -> list[TokenChunk]:
    return [chunk async for chunk in stream]  # type: ignore[attr-defined]


async def test_streams_tokens_over_real_http(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("alpha", "The quick brown fox jumps over the lazy dog.")
    chunks = await collect(
        stream_completion(
            "openai/alpha", HELLO, api_base=openai_server.base_url, api_key="k", temperature=0.3
        )
    )
    *tokens, last = chunks
    assert "".join(c.text for c in tokens) == "The quick brown fox jumps over the lazy dog."
    assert len(tokens) == 9  # one SSE event per word: it streamed, it was not one blob
    assert not any(c.done for c in tokens)
    assert last.done and last.text == "" and last.finish_reason == "stop"
    assert last.usage is not None and not last.usage.estimated
    assert last.usage.completion_tokens == 9
    assert last.usage.cost_usd == 0.0  # no price for an unknown model

    (request,) = openai_server.requests
    assert request.model == "alpha" and request.stream
    assert request.messages == HELLO
    assert request.body["temperature"] == 0.3
    assert request.headers["Authorization"] == "Bearer k"


async def test_key_from_configured_env_var(
    openai_server: OpenAIStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLLAB_TEST_KEY", "sk-from-env")
    await collect(
        stream_completion(
            "openai/alpha", HELLO, api_base=openai_server.base_url, api_key_env="COLLAB_TEST_KEY"
        )
    )
    assert openai_server.requests[0].headers["Authorization"] == "Bearer sk-from-env"


async def test_self_hosted_server_needs_no_key(
    openai_server: OpenAIStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chunks = await collect(
        stream_completion("openai/alpha", HELLO, api_base=openai_server.base_url)
    )
    assert chunks[-1].done


async def test_missing_key_names_the_env_var_and_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKey) as info:
        await collect(stream_completion("openai/gpt-4o-mini", HELLO, agent="edwin"))
    err = info.value
    assert err.env_var == "OPENAI_API_KEY" and err.agent == "edwin"
    assert "OPENAI_API_KEY" in str(err) and "@edwin" in str(err) and "gpt-4o-mini" in str(err)


async def test_missing_key_from_config_env_var(
    openai_server: OpenAIStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEAM_LLM_KEY", raising=False)
    with pytest.raises(MissingApiKey, match="TEAM_LLM_KEY"):
        await collect(
            stream_completion(
                "openai/alpha",
                HELLO,
                api_base=openai_server.base_url,
                api_key_env="TEAM_LLM_KEY",
                agent="@quinn",
            )
        )
    assert openai_server.requests == []  # caught before any request


@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [
        (Reply.error(401), AuthenticationFailed, "rejected the API key"),
        (Reply.error(429, "Slow down, friend.", retry_after=2), RateLimited, "Slow down, friend."),
        (Reply.error(500, "The GPU caught fire."), ProviderError, "The GPU caught fire."),
        (Reply.error(503), ProviderError, "overloaded"),
        (Reply.error(404), ModelNotFound, "does not know this model"),
        (Reply.disconnect(3, tokens_per_second=10), ProviderError, "lost the connection"),
    ],
    ids=["401", "429", "500", "503", "404", "disconnect"],
)
async def test_provider_errors_are_classified(
    openai_server: OpenAIStreamServer, reply: Reply, error: type[LLMError], words: str
) -> None:
    openai_server.script("beta", reply)
    received: list[str] = []
    with pytest.raises(error) as info:
        async for chunk in stream_completion(
            "openai/beta", HELLO, api_base=openai_server.base_url, api_key="k", agent="edwin"
        ):
            received.append(chunk.text)
    message = str(info.value)
    assert message.startswith("@edwin (openai/beta): ")
    assert words in message
    # The user reads one sentence, not litellm's wrapping or a traceback.
    assert "litellm." not in message and "Traceback" not in message and "\n" not in message
    assert len(openai_server.requests) == 1  # litellm did not retry behind our back
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after == 2 and info.value.retryable
    if reply.disconnect_after:
        # What came before the drop was delivered (all of it, unless the machine is so slow
        # that the drop overtook the last tokens in the client's buffer).
        assert "".join(received) and "one two three".startswith("".join(received))
        assert info.value.retryable


async def test_unknown_provider_is_model_not_found() -> None:
    with pytest.raises(ModelNotFound, match="unknown provider"):
        await collect(stream_completion("nosuchprovider/model-x", HELLO, agent="edwin"))


async def test_timeout_waiting_for_first_token(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("slow", Reply(first_token_delay=10))
    with pytest.raises(ProviderTimeout, match="sent nothing for 0.3 s"):
        await collect(
            stream_completion(
                "openai/slow", HELLO, api_base=openai_server.base_url, api_key="k", timeout=0.3
            )
        )


async def test_cancel_stops_the_stream_within_a_second(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("long", Reply(text="word " * 1000, tokens_per_second=20))
    cancel = asyncio.Event()
    texts: list[str] = []
    last: TokenChunk | None = None
    cancelled_at = 0.0
    async for chunk in stream_completion(
        "openai/long", HELLO, api_base=openai_server.base_url, api_key="k", cancel=cancel
    ):
        if chunk.done:
            last = chunk
            break
        texts.append(chunk.text)
        if len(texts) == 3:
            cancel.set()
            cancelled_at = time.monotonic()
    stopped_after = time.monotonic() - cancelled_at
    assert last is not None and last.finish_reason == "cancelled"
    assert stopped_after < 1.0
    assert len(texts) <= 4
    assert last.usage is not None and last.usage.estimated  # partial usage is still reported
    # The HTTP stream itself was closed: the server saw the client go away.
    async with asyncio.timeout(1.0):
        while openai_server.stats.streams_abandoned == 0:
            await asyncio.sleep(0.02)
    assert openai_server.stats.tokens_sent < 40


async def test_cancel_before_first_token(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("slow", Reply(first_token_delay=30))
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, cancel.set)
    started = time.monotonic()
    chunks = await collect(
        stream_completion(
            "openai/slow", HELLO, api_base=openai_server.base_url, api_key="k", cancel=cancel
        )
    )
    assert time.monotonic() - started < 1.2
    assert [c.finish_reason for c in chunks] == ["cancelled"]


async def test_breaking_out_closes_the_http_stream(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("long", Reply(text="word " * 1000, tokens_per_second=50))
    stream = stream_completion("openai/long", HELLO, api_base=openai_server.base_url, api_key="k")
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    async with asyncio.timeout(1.0):
        while openai_server.stats.streams_abandoned == 0:
            await asyncio.sleep(0.02)


async def test_many_streams_at_once_are_interleaved(openai_server: OpenAIStreamServer) -> None:
    # Five agents answering the same message: their tokens arrive interleaved, not one by one.
    for i in range(5):
        openai_server.script(
            f"agent{i}", Reply(text=f"agent{i} says " + "hm " * 20, tokens_per_second=100)
        )
    order: list[int] = []

    async def run(i: int) -> str:
        parts = []
        async for chunk in stream_completion(
            f"openai/agent{i}", HELLO, api_base=openai_server.base_url, api_key="k"
        ):
            if chunk.text:
                order.append(i)
                parts.append(chunk.text)
        return "".join(parts)

    replies = await asyncio.gather(*(run(i) for i in range(5)))
    assert [r.split()[0] for r in replies] == [f"agent{i}" for i in range(5)]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches > 20


def test_provider_message_strips_litellm_wrapping() -> None:
    raw = (
        "litellm.MidStreamFallbackError: litellm.APIConnectionError: APIConnectionError: "
        "OpenAIException - Response payload is not completed Original exception: blah"
    )
    assert provider_message(Exception(raw)) == "Response payload is not completed"
    assert provider_message(Exception("plain words")) == "plain words"


def test_classify_without_a_network() -> None:
    from collab.flows.llm import load_litellm

    litellm = load_litellm()
    err = classify_error(
        litellm.Timeout(message="Request timed out.", model="m", llm_provider="openai"),
        model="openai/m",
    )
    assert isinstance(err, ProviderTimeout)
    err = classify_error(
        litellm.ContextWindowExceededError(
            message="maximum context length is 8192 tokens", model="m", llm_provider="openai"
        ),
        model="openai/m",
        agent="quinn",
    )
    assert isinstance(err, ProviderError) and "context window" in str(err)
    err = classify_error(ValueError("oops"), model="openai/m")
    assert isinstance(err, ProviderError) and "unexpected ValueError: oops" in str(err)
