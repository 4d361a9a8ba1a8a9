"""The loopback OpenAI-compatible server itself: wire format, scripting, thread mode."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
import pytest
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply, split_tokens

pytestmark = pytest.mark.timeout(60)


async def post(url: str, body: dict[str, object]) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/chat/completions", json=body) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def test_split_tokens_round_trips() -> None:
    text = "Hello,  world!\nA second line. "
    assert "".join(split_tokens(text)) == text
    assert split_tokens("a b") == ["a", " b"]


async def test_sse_wire_format(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("m", "one two")
    status, ctype, body = await post(
        openai_server.base_url,
        {
            "model": "m",
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
            "stream_options": {"include_usage": True},
        },
    )
    assert status == 200 and ctype.startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in body.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["one", " two"]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[4]["choices"] == [] and chunks[4]["usage"]["completion_tokens"] == 2


async def test_scripted_replies_are_consumed_in_order(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("m", Reply.error(429), "second", "third")
    bodies = []
    for _ in range(4):
        bodies.append(await post(openai_server.base_url, {"model": "m", "messages": []}))
    assert bodies[0][0] == 429
    texts = [json.loads(b)["choices"][0]["message"]["content"] for _, _, b in bodies[1:]]
    assert texts == ["second", "third", "third"]  # the last one repeats
    assert len(openai_server.requests_for("m")) == 4


async def test_reply_from_the_request(openai_server: OpenAIStreamServer) -> None:
    openai_server.script("echo", Reply(text=lambda req: "you said " + req.messages[-1]["content"]))
    _, _, body = await post(
        openai_server.base_url, {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    )
    assert json.loads(body)["choices"][0]["message"]["content"] == "you said x"


async def test_known_models_and_error_shape() -> None:
    async with OpenAIStreamServer(known_models={"a"}) as server:
        status, _, body = await post(server.base_url, {"model": "b", "messages": []})
        assert status == 404
        assert "does not exist" in json.loads(body)["error"]["message"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.base_url + "/models") as resp,
        ):
            assert [m["id"] for m in (await resp.json())["data"]] == ["a"]


def test_in_thread_for_benchmarks() -> None:
    async def client(url: str) -> int:
        status, _, _ = await post(url, {"model": "x", "messages": []})
        return status

    with OpenAIStreamServer.in_thread(default="hi") as server:
        assert asyncio.run(client(server.base_url)) == 200
        assert server.requests[0].model == "x"


async def test_runs_as_a_process() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collab.flows.testing.openai_server",
        "--tps",
        "0",
        "--reply",
        "pong",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        url = line.strip().removeprefix("listening on ")
        _, _, body = await post(url, {"model": "x", "messages": []})
        assert json.loads(body)["choices"][0]["message"]["content"] == "pong"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
