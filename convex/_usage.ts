// Usage and cost of agent runs: recording what a run reports, the space's budget. Twin of
// backend/model/_usage.py.
//
// A run reports `usage` (`{promptTokens, completionTokens, estimated}`) and `costUsd` when it
// ends (`runs:complete` / `runs:fail`). Each report adds one `usageEvents` row (time windows:
// today, since the app was opened) and moves the space's per-agent `usageTotals` (all time, the
// budget), and stamps the message or version the run produced.
//
// The budget is enforced where runs are queued (`messages:post` when it mentions agents,
// `runs:enqueue`), inside the same transaction, so every client (this app, a script, the
// official Convex clients) meets the same refusal before a run starts (docs/DECISIONS.md).
import type { Value } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader, MutationCtx } from "./_generated/server";
import { fail } from "./_errors";
import { pyFixed, pyRepr, pyTruthy } from "./_util";

export type UsageRow = { promptTokens: number; completionTokens: number; costUsd: number; estimated: boolean };

/** Python's `_num`: a number (not a boolean) as a float, anything else 0. */
function num(value: Value | undefined): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return 0;
}

/** Python's `isinstance(value, dict)` for a Convex value. */
function isObject(value: Value | undefined): value is Record<string, Value> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof ArrayBuffer);
}

/** The `usage` field stamped on a message or version: tokens and cost of its run. */
export function usageRow(usage: Value | undefined, cost: Value | undefined): UsageRow {
  const u = isObject(usage) ? usage : {};
  return {
    promptTokens: num(u["promptTokens"]),
    completionTokens: num(u["completionTokens"]),
    costUsd: num(cost),
    estimated: pyTruthy(u["estimated"] ?? false),
  };
}

/** Add one run's report to the totals and stamp what the run produced. */
export async function record(
  ctx: MutationCtx,
  run: Doc<"runs">,
  usage: Value | undefined,
  cost: number | undefined,
  output?: Value,
): Promise<void> {
  if ((usage === undefined || usage === null) && cost === undefined) return;
  const row = usageRow(usage, cost);
  const agent = await ctx.db.get(run.agentId);
  const handle = agent !== null ? agent.handle : "?";
  await ctx.db.insert("usageEvents", {
    spaceId: run.spaceId,
    agentId: run.agentId,
    agentHandle: handle,
    runId: run._id,
    at: Date.now(),
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    costUsd: row.costUsd,
  });
  const total = await ctx.db
    .query("usageTotals")
    .withIndex("by_space_agent", (q) => q.eq("spaceId", run.spaceId).eq("agentId", run.agentId))
    .unique();
  if (total === null) {
    await ctx.db.insert("usageTotals", {
      spaceId: run.spaceId,
      agentId: run.agentId,
      agentHandle: handle,
      runs: 1,
      promptTokens: row.promptTokens,
      completionTokens: row.completionTokens,
      costUsd: row.costUsd,
    });
  } else {
    await ctx.db.patch(total._id, {
      runs: total.runs + 1,
      promptTokens: total.promptTokens + row.promptTokens,
      completionTokens: total.completionTokens + row.completionTokens,
      costUsd: total.costUsd + row.costUsd,
    });
  }
  await stamp(ctx, run, row, output);
}

/** Show the run's tokens and cost on the reply or version it produced (the run's output names
 * it: `{messageId}` for a reply, `{artifactId, version}` for a revision). */
async function stamp(ctx: MutationCtx, run: Doc<"runs">, row: UsageRow, output: Value | undefined): Promise<void> {
  const out = isObject(output) ? output : {};
  const messageId = out["messageId"];
  if (typeof messageId === "string") {
    const id = ctx.db.normalizeId("messages", messageId);
    const msg = id !== null ? await ctx.db.get(id) : null;
    if (msg !== null && msg.spaceId === run.spaceId) await ctx.db.patch(msg._id, { usage: row });
  }
  const version = out["version"];
  // Python's `out.get("artifactId") or run.get("artifactId")`: a falsy output value falls back.
  const artifactId = pyTruthy(out["artifactId"]) ? out["artifactId"] : run.artifactId;
  if (typeof version === "number" && typeof artifactId === "string") {
    const id = ctx.db.normalizeId("artifacts", artifactId);
    if (id !== null) {
      const ver = await ctx.db
        .query("versions")
        .withIndex("by_artifact_version", (q) => q.eq("artifactId", id).eq("version", version))
        .unique();
      if (ver !== null && ver.spaceId === run.spaceId) await ctx.db.patch(ver._id, { usage: row });
    }
  }
}

/** What the space's runs cost so far (all time), in USD. */
export async function spent(db: DatabaseReader, spaceId: Id<"spaces">): Promise<number> {
  const totals = await db
    .query("usageTotals")
    .withIndex("by_space_agent", (q) => q.eq("spaceId", spaceId))
    .collect();
  let sum = 0;
  for (const t of totals) sum += t.costUsd;
  return sum;
}

/** Refuse to queue a run once the space has spent its budget (`BUDGET_EXCEEDED`). */
export async function checkBudget(db: DatabaseReader, space: Doc<"spaces">): Promise<void> {
  const budget = space.budgetUsd;
  if (budget === undefined) return;
  const used = await spent(db, space._id);
  if (used >= budget) {
    fail(
      "BUDGET_EXCEEDED",
      `space ${pyRepr(space.name)} has spent $${pyFixed(used, 4)} of its $${pyFixed(budget, 2)} budget for agent runs, ` +
        "so no run was started; an owner can raise it ([budget] in the config)",
      { spaceId: space._id, budgetUsd: budget, spentUsd: used },
    );
  }
}
