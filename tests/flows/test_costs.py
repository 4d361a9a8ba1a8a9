"""What agents cost, end to end: runs against the loopback OpenAI-compatible server (which
reports exact token counts) under model names litellm's local price map knows; the worker
records usage and cost, the backend totals them per agent and per space (all time and in time
windows), stamps each reply, and refuses runs once the space's budget is spent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collab.backend_client import ConvexError
from collab.backend_client.api import api
from collab.flows.testing.openai_server import OpenAIStreamServer, Reply, split_tokens
from tests.flows._world import make_config, worker, world

PRICED = {"rhea": "gpt-4o-mini", "quinn": "gpt-4o"}  # handle -> model litellm prices
REPLY = {"gpt-4o-mini": "Short and cheap answer here.", "gpt-4o": "A longer, dearer answer with more words in it."}


def _litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


async def test_costs_are_recorded_totalled_and_budgeted(tmp_path: Path, openai_server: OpenAIStreamServer) -> None:
    for model, text in REPLY.items():
        openai_server.script(model, Reply(text))
    config = make_config(openai_server.base_url, PRICED)
    handles = list(PRICED)
    async with world(tmp_path, handles) as w:
        before = await w.human.query(api.usage.summary, {"spaceId": w.space, "since": [0]})
        assert before["allTime"]["total"]["runs"] == 0
        async with worker(w, config, handles):
            await w.post("@rhea @quinn what does it cost?")
            runs = await w.runs_finished(2)
        litellm = _litellm()
        expected: dict[str, tuple[int, int, float]] = {}
        for h, model in PRICED.items():
            sent = openai_server.requests_for(model)[0].messages
            prompt = sum(len(split_tokens(str(m.get("content") or ""))) + 4 for m in sent)
            completion = len(split_tokens(REPLY[model]))
            p_cost, c_cost = litellm.cost_per_token(model=f"openai/{model}", prompt_tokens=prompt,
                                                    completion_tokens=completion)
            expected[h] = (prompt, completion, p_cost + c_cost)
            assert p_cost + c_cost > 0, f"litellm's price map has no price for {model}"
        by_agent = {r["agentId"]: r for r in runs}
        for h, (prompt, completion, cost) in expected.items():
            run = by_agent[w.agents[h]]
            assert run["usage"]["promptTokens"] == prompt and run["usage"]["completionTokens"] == completion
            assert run["costUsd"] == pytest.approx(cost)
        summary = await w.human.query(api.usage.summary, {"spaceId": w.space, "since": [0]})
        agents = {a["handle"]: a for a in summary["allTime"]["agents"]}
        for h, (prompt, completion, cost) in expected.items():
            assert (agents[h]["runs"], agents[h]["promptTokens"], agents[h]["completionTokens"]) == (1, prompt, completion)
            assert agents[h]["costUsd"] == pytest.approx(cost)
        total = sum(c for _, _, c in expected.values())
        assert summary["allTime"]["total"]["costUsd"] == pytest.approx(total)
        assert summary["windows"][0]["total"]["costUsd"] == pytest.approx(total)
        # each reply carries its own run's tokens and cost
        replies = [m for m in await w.messages() if m["authorKind"] == "agent"]
        assert sorted(m["usage"]["costUsd"] for m in replies) == pytest.approx(sorted(c for _, _, c in expected.values()))

        # a budget below what was spent: asking an agent is refused before any run starts
        await w.human.mutation(api.spaces.setBudget, {"spaceId": w.space, "budgetUsd": total / 2})
        with pytest.raises(ConvexError) as refused:
            await w.post("@rhea once more")
        assert refused.value.data["code"] == "BUDGET_EXCEEDED" and "budget" in refused.value.data["message"]
        assert len(await w.runs()) == 2
