"""Usage and cost of agent runs: recording what a run reports, the space's budget.

A run reports ``usage`` (``{promptTokens, completionTokens, estimated}``) and ``costUsd`` when
it ends (``runs:complete`` / ``runs:fail``). Each report adds one ``usageEvents`` row (time
windows: today, since the app was opened) and moves the space's per-agent ``usageTotals``
(all time, the budget), and stamps the message or version the run produced.

The budget is enforced where runs are queued (``messages:post`` when it mentions agents,
``runs:enqueue``), inside the same transaction, so every client (this app, a script, the
official Convex clients) meets the same refusal before a run starts (docs/DECISIONS.md).
"""

from __future__ import annotations

from typing import Any

from collab.backend.model._errors import fail


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def usage_row(usage: Any, cost: Any) -> dict[str, Any]:
    """The ``usage`` field stamped on a message or version: tokens and cost of its run."""
    u = usage if isinstance(usage, dict) else {}
    return {"promptTokens": _num(u.get("promptTokens")), "completionTokens": _num(u.get("completionTokens")),
            "costUsd": _num(cost), "estimated": bool(u.get("estimated", False))}


def record(ctx: Any, run: dict[str, Any], usage: Any, cost: Any, output: Any = None) -> None:
    """Add one run's report to the totals and stamp what the run produced."""
    if usage is None and cost is None:
        return
    row = usage_row(usage, cost)
    agent = ctx.db.get(run["agentId"])
    handle = agent["handle"] if agent else "?"
    ctx.db.insert("usageEvents", {"spaceId": run["spaceId"], "agentId": run["agentId"], "agentHandle": handle,
                                  "runId": run["_id"], "at": ctx.now(), "promptTokens": row["promptTokens"],
                                  "completionTokens": row["completionTokens"], "costUsd": row["costUsd"]})
    total = ctx.db.query("usageTotals").with_index(
        "by_space_agent", lambda q: q.eq("spaceId", run["spaceId"]).eq("agentId", run["agentId"])).unique()
    if total is None:
        ctx.db.insert("usageTotals", {"spaceId": run["spaceId"], "agentId": run["agentId"], "agentHandle": handle,
                                      "runs": 1, "promptTokens": row["promptTokens"],
                                      "completionTokens": row["completionTokens"], "costUsd": row["costUsd"]})
    else:
        ctx.db.patch(total["_id"], {"runs": total["runs"] + 1,
                                    "promptTokens": total["promptTokens"] + row["promptTokens"],
                                    "completionTokens": total["completionTokens"] + row["completionTokens"],
                                    "costUsd": total["costUsd"] + row["costUsd"]})
    _stamp(ctx, run, row, output)


def _stamp(ctx: Any, run: dict[str, Any], row: dict[str, Any], output: Any) -> None:
    """Show the run's tokens and cost on the reply or version it produced (the run's output
    names it: ``{messageId}`` for a reply, ``{artifactId, version}`` for a revision)."""
    out = output if isinstance(output, dict) else {}
    message_id = out.get("messageId")
    if isinstance(message_id, str) and ctx.db.normalize_id("messages", message_id) is not None:
        msg = ctx.db.get(message_id)
        if msg is not None and msg["spaceId"] == run["spaceId"]:
            ctx.db.patch(msg["_id"], {"usage": row})
    version = out.get("version")
    artifact_id = out.get("artifactId") or run.get("artifactId")
    if isinstance(version, (int, float)) and isinstance(artifact_id, str) \
            and ctx.db.normalize_id("artifacts", artifact_id) is not None:
        ver = ctx.db.query("versions").with_index(
            "by_artifact_version", lambda q: q.eq("artifactId", artifact_id).eq("version", version)).unique()
        if ver is not None and ver["spaceId"] == run["spaceId"]:
            ctx.db.patch(ver["_id"], {"usage": row})


def spent(ctx: Any, space_id: str) -> float:
    """What the space's runs cost so far (all time), in USD."""
    return sum(t["costUsd"] for t in ctx.db.query("usageTotals").with_index(
        "by_space_agent", lambda q: q.eq("spaceId", space_id)).collect())


def check_budget(ctx: Any, space: dict[str, Any]) -> None:
    """Refuse to queue a run once the space has spent its budget (``BUDGET_EXCEEDED``)."""
    budget = space.get("budgetUsd")
    if budget is None:
        return
    used = spent(ctx, space["_id"])
    if used >= budget:
        fail("BUDGET_EXCEEDED",
             f"space {space['name']!r} has spent ${used:.4f} of its ${budget:.2f} budget for agent runs, "
             "so no run was started; an owner can raise it ([budget] in the config)",
             spaceId=space["_id"], budgetUsd=budget, spentUsd=used)
