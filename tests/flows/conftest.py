"""Fixtures for the flows tests: the loopback OpenAI-compatible server (real HTTP and SSE)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from collab.flows.testing.openai_server import OpenAIStreamServer


@pytest.fixture
async def openai_server() -> AsyncIterator[OpenAIStreamServer]:
    """A started server on 127.0.0.1 (port 0); ``openai_server.base_url`` is the api_base."""
    async with OpenAIStreamServer() as server:
        yield server
