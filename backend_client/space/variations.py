"""The variations facade: rounds of an artifact, a round's variations with their live tails,
and the actions (start, N more, star, pick under the lock, compose, cancel). The flow picker's
knowledge of the config's flows is here too: the backend does not read the config, so a flow's
agents, temperatures, instructions and N travel with the call."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collab.backend_client.api import api
from collab.backend_client.errors import ConvexError
from collab.backend_client.live_query import LiveQuery
from collab.backend_client.space.errors import LockConflict, Queued
from collab.backend_client.space.locks import LeasePolicy, LockHold

if TYPE_CHECKING:
    from collab.backend_client.space.session import SpaceSession

__all__ = ["DEFAULT_MAX_N", "MAX_N", "Part", "RoundPlan", "VariationsView", "parse_vary"]

MAX_N = 10
DEFAULT_MAX_N = 5
_VARY = re.compile(r"^\s*(?:(\d+)\s+)?#([A-Za-z0-9][A-Za-z0-9_./-]*)\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Part:
    """Lines ``start`` to ``end`` (0-based, end excluded) of a variation, for a composition."""

    variation_id: str
    index: int
    start: int
    end: int

    def wire(self) -> dict[str, Any]:
        return {"variationId": self.variation_id, "range": {"start": self.start, "end": self.end}}


@dataclass
class RoundPlan:
    """What a new round is made of: N, who writes, at which temperatures, the flow."""

    n: int
    agents: list[str] = field(default_factory=list)
    temperatures: list[float] = field(default_factory=list)
    flow: str | None = None
    instructions: str | None = None
    max_n: int = DEFAULT_MAX_N

    def args(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "maxN": self.max_n}
        if self.agents:
            out["agents"] = self.agents
        if self.temperatures:
            out["temperatures"] = self.temperatures
        if self.flow:
            out["flow"] = self.flow
        if self.instructions:
            out["flowInstructions"] = self.instructions
        return out


def parse_vary(text: str) -> tuple[int | None, str, str]:
    """``/vary 5 #plan make it shorter`` (without the command): (N or None, slug, instruction).
    ValueError says what is missing."""
    m = _VARY.match(text)
    if not m:
        raise ValueError("say which artifact: /vary 5 #artifact what to change")
    n = int(m.group(1)) if m.group(1) else None
    instruction = m.group(3).strip()
    if not instruction:
        raise ValueError("say what the variations should do: /vary 5 #artifact make it shorter")
    return n, m.group(2).rstrip(".-/_").lower(), instruction


class VariationsView:
    def __init__(self, session: SpaceSession) -> None:
        self.session = session
        self.client = session.client

    # ------------------------------------------------------------------ live queries

    def watch_rounds(self, artifact_id: str, limit: int | None = None) -> LiveQuery[Any]:
        """The artifact's rounds, newest first, with counts by status and stars."""
        args: dict[str, Any] = {"artifactId": artifact_id}
        if limit is not None:
            args["limit"] = limit
        return self.client.watch(api.variations.forArtifact, args)

    def watch_round(self, round_id: str) -> LiveQuery[Any]:
        """A round and its variations (content at the persistence cadence)."""
        return self.client.watch(api.variations.round, {"roundId": round_id})

    def watch_tails(self, artifact_id: str) -> LiveQuery[Any]:
        """The live tails (~30 ms) of the proposals streaming into the artifact."""
        return self.client.watch(api.proposals.live, {"artifactId": artifact_id})

    # ------------------------------------------------------------------ plans

    def plan(self, flow: str | None = None, n: int | None = None) -> RoundPlan:
        """A round as the config says: a flow's agents, temperatures (one agent N times),
        instructions and N (up to ``max(5, its N)``, at most 10); without a flow, N (default 5)
        variations by the space's agents in turn. ValueError for an unknown flow or a bad N."""
        config = self.session.config
        if flow is None:
            count = n if n is not None else DEFAULT_MAX_N
            plan = RoundPlan(count)
        else:
            try:
                f = config.flow(flow)
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
            count = n if n is not None else f.variations
            temps = list(f.temperatures)
            if temps and count != len(temps):
                temps = [temps[i % len(temps)] for i in range(count)]
            plan = RoundPlan(count, list(f.agents), temps, flow, f.instructions.strip() or None,
                             min(MAX_N, max(DEFAULT_MAX_N, f.variations)))
        if not 1 <= plan.n <= plan.max_n:
            raise ValueError(f"N must be from 1 to {plan.max_n}")
        return plan

    # ------------------------------------------------------------------ actions

    async def start(self, artifact_id: str, instruction: str, plan: RoundPlan) -> dict[str, Any]:
        """A new round; returns ``{roundId, number, variationIds}``."""
        return dict(await self.client.mutation(api.variations.start, {"artifactId": artifact_id,
                                                                      "instruction": instruction, **plan.args()}))

    async def start_by_slug(self, slug: str, instruction: str, plan: RoundPlan) -> dict[str, Any]:
        """``/vary``: the artifact by its ``#slug``; ValueError when the space has none."""
        rows = await self.client.query(api.artifacts.list, {"spaceId": self.session.space_id})
        found = next((a for a in rows if a.get("slug") == slug), None)
        if found is None:
            raise ValueError(f"no artifact #{slug} in this space")
        return {**await self.start(str(found["_id"]), instruction, plan), "artifactId": str(found["_id"])}

    async def more(self, round_id: str, note: str | None = None, n: int | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"roundId": round_id}
        if note:
            args["note"] = note
        if n is not None:
            args["n"] = n
        return dict(await self.client.mutation(api.variations.more, args))

    async def star(self, variation_id: str, starred: bool) -> None:
        fn = api.variations.star if starred else api.variations.unstar
        await self.client.mutation(fn, {"variationId": variation_id})

    async def pick(self, artifact_id: str, variation_id: str) -> dict[str, Any] | LockConflict | Queued:
        """Make the variation the next version through the lock: take it (a conflict says who
        holds it; the caller may queue like the edit key does), then the fenced pick, which
        releases. Returns the save's ``{version, ...}``."""
        hold = LockHold(self.client, artifact_id, LeasePolicy.from_config(self.session.config.locks),
                        me_actor_id=self.session.actor_id)
        got = await hold.acquire()
        if not isinstance(got, LockHold):
            return got
        try:
            result = await hold.end_with(api.variations.pick, {"variationId": variation_id, "token": hold.token,
                                                              "idempotencyKey": hold.key("pick")})
        except ConvexError:
            await hold.release(keep_draft=False)
            raise
        hold.end()
        return dict(result)

    async def queue_for_pick(self, artifact_id: str) -> LockHold | LockConflict | Queued:
        """Join the lock's queue to pick later (the "lock granted" notification says when)."""
        hold = LockHold(self.client, artifact_id, LeasePolicy.from_config(self.session.config.locks),
                        me_actor_id=self.session.actor_id)
        got = await hold.acquire(wait=True)
        if isinstance(got, LockHold):  # free meanwhile: nothing to wait for
            await got.release(keep_draft=False)
        return got

    async def compose(self, round_id: str, parts: list[Part], instruction: str | None = None,
                      agent: str | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"roundId": round_id, "parts": [p.wire() for p in parts]}
        if instruction:
            args["instruction"] = instruction
        if agent:
            args["agent"] = agent
        return dict(await self.client.mutation(api.variations.compose, args))

    async def cancel(self, round_id: str, variation_id: str | None = None) -> int:
        args: dict[str, Any] = {"roundId": round_id}
        if variation_id:
            args["variationId"] = variation_id
        return int((await self.client.mutation(api.variations.cancel, args))["cancelled"])
