"""What a flow gets to execute one run: the agent (its identity's client, persona, model),
the run row, the cancel event, the shared live pusher and the cadences."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collab.backend_client import ConvexClient
from collab.backend_client.space import LeasePolicy, LockHold
from collab.config import AgentConfig, LocksConfig, ModelSpec
from collab.flows.cadence import Cadence
from collab.flows.live import LivePusher
from collab.flows.llm import Message, TokenChunk, Usage, stream_completion

__all__ = ["Agent", "RunContext", "RunFailed"]


class RunFailed(Exception):
    """The run cannot finish; ``str()`` is the sentence recorded on the run (and already
    posted in the thread by the flow)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Agent:
    """One agent this worker acts as: its own identity (``client``), persona and model."""

    config: AgentConfig
    model: ModelSpec
    client: ConvexClient
    actor_id: str = ""

    @property
    def handle(self) -> str:
        return self.config.handle


@dataclass
class RunContext:
    run: dict[str, Any]
    agent: Agent
    pusher: LivePusher
    cadence: Cadence
    locks: LocksConfig
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    env: Mapping[str, str] | None = None
    usage: Usage | None = None
    # set when the backend says the claim is over (cancelled from the UI, or lease lost)
    stop_reason: str | None = None

    @property
    def client(self) -> ConvexClient:
        return self.agent.client

    @property
    def run_id(self) -> str:
        return str(self.run["_id"])

    @property
    def space_id(self) -> str:
        return str(self.run["spaceId"])

    @property
    def input(self) -> dict[str, Any]:
        value = self.run.get("input")
        return value if isinstance(value, dict) else {}

    def key(self, what: str) -> str:
        """An idempotency key for this attempt's ``what`` (acquire, save)."""
        return f"{self.key_prefix}:{what}"

    @property
    def key_prefix(self) -> str:
        return f"run:{self.run_id}:{int(self.run['attempt'])}"

    def hold(self, artifact_id: str) -> LockHold:
        """A hold of ``artifact_id``'s lock for this run: the agent's identity, the config's
        lease, idempotency keys of this attempt."""
        return LockHold(self.client, artifact_id, LeasePolicy.from_config(self.locks),
                        me_actor_id=self.agent.actor_id, key_prefix=self.key_prefix)

    async def stream(self, messages: Sequence[Message], temperature: float | None = None) -> AsyncIterator[TokenChunk]:
        """The agent's model, streamed (stops at once when ``cancel`` is set); keeps the usage.
        ``temperature``: this run's own (a variation's), instead of the agent's."""
        spec, cfg = self.agent.model, self.agent.config
        env = os.environ if self.env is None else self.env
        async for chunk in stream_completion(
            spec.model, messages, api_base=spec.api_base, api_key=spec.api_key(env),
            api_key_env=spec.api_key_env, agent=cfg.handle,
            temperature=cfg.temperature if temperature is None else temperature,
            max_tokens=cfg.max_tokens or spec.max_tokens, timeout=spec.timeout_s, cancel=self.cancel,
            extra=spec.params or None,
        ):
            if chunk.done:
                self.usage = chunk.usage
            yield chunk

    def usage_fields(self) -> dict[str, Any]:
        if self.usage is None:
            return {}
        u = self.usage
        return {"usage": {"promptTokens": u.prompt_tokens, "completionTokens": u.completion_tokens,
                          "estimated": u.estimated}, "costUsd": u.cost_usd}
