"""A backend with the collaboration functions, a human owner's client, a space with agent
members and an artifact, and a config whose agents talk to the loopback OpenAI server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collab.backend.testing import RunningBackend, running_backend
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.config import Config, load_config_text
from collab.flows.worker import Worker

MODEL_APP = "collab.backend.model"


def config_text(base_url: str, models: dict[str, str], *, extra: str = "", ttl_s: float = 30,
                key_env: dict[str, str] | None = None) -> str:
    """TOML: agent ``handle`` -> loopback model ``models[handle]`` (scripted per model);
    ``key_env[handle]`` names a key variable that model needs."""
    lines = ["[models]", 'default = "local"', ""]
    for handle, model in models.items():
        lines += [f"[models.aliases.m_{handle}]", f'model = "openai/{model}"', f'api_base = "{base_url}"']
        if key_env and handle in key_env:
            lines.append(f'api_key_env = "{key_env[handle]}"')
        lines.append("")
    for handle in models:
        lines += ["[[agents]]", f'handle = "{handle}"', f'model = "m_{handle}"', ""]
    renew = max(1.0, ttl_s / 3)
    lines += ["[streaming]", "ui_interval_ms = 30", "persist_interval_ms = 250", "",
              "[locks]", f"lease_ttl_s = {ttl_s}", f"renew_every_s = {renew:g}", "stop_margin_s = 1", ""]
    return "\n".join(lines) + extra


def make_config(base_url: str, models: dict[str, str], **kw: Any) -> Config:
    return load_config_text(config_text(base_url, models, **kw))


@dataclass
class World:
    backend: RunningBackend
    human: ConvexClient
    space: str
    artifact: str
    agents: dict[str, str]  # handle -> actorId

    async def post(self, body: str, **extra: Any) -> str:
        return str(await self.human.mutation(api.messages.post, {"spaceId": self.space, "body": body, **extra}))

    async def runs(self) -> list[dict[str, Any]]:
        return list(await self.human.query(api.runs.list, {"spaceId": self.space}))

    async def messages(self) -> list[dict[str, Any]]:
        return list(await self.human.query(api.messages.list, {"spaceId": self.space}))

    async def wait_for(self, check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        """Poll an async check until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def runs_finished(self, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            runs = await self.runs()
            done = [r for r in runs if r["status"] in ("done", "failed", "cancelled")]
            return runs if len(runs) >= n and len(done) == len(runs) else None
        return list(await self.wait_for(check, timeout, f"{n} runs to finish"))


@asynccontextmanager
async def world(tmp: Path, handles: list[str], *, content: str = "Step 1. Test the thing.\n") -> AsyncIterator[World]:
    async with running_backend(tmp / "data", functions=MODEL_APP) as backend:
        human = ConvexClient(backend.url, auth=backend.mint_token("olga"))
        await human.connect(timeout=10)
        try:
            space = await human.mutation(api.spaces.create, {"name": "flows"})
            agents = {}
            for h in handles:
                await human.mutation(api.spaces.addMember, {"spaceId": space, "handle": h, "kind": "agent",
                                                            "role": "editor"})
            for m in await human.query(api.spaces.members, {"spaceId": space}):
                if m["kind"] == "agent":
                    agents[m["handle"]] = m["actorId"]
            art = await human.mutation(api.artifacts.create, {"spaceId": space, "title": "Plan", "kind": "document",
                                                              "content": content})
            yield World(backend, human, str(space), str(art), agents)
        finally:
            await human.close()


@asynccontextmanager
async def worker(w: World, config: Config, handles: list[str], **kw: Any) -> AsyncIterator[Worker]:
    wk = Worker(w.backend.url, config, lambda h: w.backend.mint_token(h, agent=True),
                agents=[config.agent(h) for h in handles], **kw)
    await wk.start()
    try:
        yield wk
    finally:
        await wk.stop()
