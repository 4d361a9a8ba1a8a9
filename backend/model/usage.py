"""What the agents of a space cost: tokens and USD per agent and in total, all time and since
given times (the client passes them: today's midnight, when the app was opened), with the
space's budget. Recording happens in ``runs:complete`` / ``runs:fail`` (``_usage.record``)."""

from __future__ import annotations

from typing import Any

from collab.backend.model._auth import query
from collab.backend.model._errors import invalid
from collab.backend.validators import v

MAX_WINDOWS = 4


def _empty() -> dict[str, Any]:
    return {"runs": 0, "promptTokens": 0, "completionTokens": 0, "costUsd": 0.0}


def _add(into: dict[str, Any], row: dict[str, Any], runs: float = 1) -> None:
    into["runs"] += runs
    into["promptTokens"] += row["promptTokens"]
    into["completionTokens"] += row["completionTokens"]
    into["costUsd"] += row["costUsd"]


def _totals(rows: list[tuple[str, str, dict[str, Any], float]]) -> dict[str, Any]:
    total = _empty()
    agents: dict[str, dict[str, Any]] = {}
    for agent_id, handle, row, runs in rows:
        cur = agents.setdefault(agent_id, {"agentId": agent_id, "handle": handle, **_empty()})
        _add(cur, row, runs)
        _add(total, row, runs)
    return {"total": total, "agents": sorted(agents.values(), key=lambda a: a["handle"])}


@query(args={"spaceId": v.id("spaces"), "since": v.optional(v.array(v.number()))}, policy="viewer", scope="space")
def summary(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``{budgetUsd, allTime, windows}``: ``allTime`` and each of ``windows`` (one per time in
    ``since``, ms since the epoch, same order) are ``{total, agents: [{agentId, handle, runs,
    promptTokens, completionTokens, costUsd}]}``; ``budgetUsd`` is null when the space has no
    budget. ``runs`` counts usage reports (a retried run reports once per attempt)."""
    since = args.get("since") or []
    if len(since) > MAX_WINDOWS:
        invalid(f"at most {MAX_WINDOWS} windows")
    space_id = args["spaceId"]
    totals = ctx.db.query("usageTotals").with_index("by_space_agent", lambda q: q.eq("spaceId", space_id)).collect()
    all_time = _totals([(t["agentId"], t["agentHandle"], t, t["runs"]) for t in totals])
    windows = []
    if since:
        start = min(since)
        events = ctx.db.query("usageEvents").with_index(
            "by_space_at", lambda q: q.eq("spaceId", space_id).gte("at", start)).collect()
        for t in since:
            windows.append(_totals([(e["agentId"], e["agentHandle"], e, 1) for e in events if e["at"] >= t]))
    return {"budgetUsd": ctx.caller.space.get("budgetUsd"), "allTime": all_time, "windows": windows}
