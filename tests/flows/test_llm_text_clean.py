"""A lone surrogate streamed by a provider becomes U+FFFD, never an error that kills the run
(issue 14): the server refuses unsendable text, so it is cleaned before anything is written."""

from __future__ import annotations

import pytest

from collab.flows.llm import stream_completion
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
]


async def test_lone_surrogates_from_the_provider_become_replacement_characters(
    openai_server: OpenAIStreamServer,
) -> None:
    # The loopback server writes each token with json.dumps: "\ud800" goes out as that escape,
    # exactly what a misbehaving provider sends; the SSE parser reads it back as a lone surrogate.
    openai_server.script("poison", Reply(text=["fine ", "\ud800", " and \U0001F600 ", "x\udfff"]))
    chunks = [c async for c in stream_completion(
        "openai/poison", [{"role": "user", "content": "hi"}], api_base=openai_server.base_url, api_key="k")]
    *tokens, last = chunks
    assert [c.text for c in tokens] == ["fine ", "\ufffd", " and \U0001F600 ", "x\ufffd"]
    assert last.done and last.finish_reason == "stop"
    "".join(c.text for c in tokens).encode("utf-8")  # sendable
