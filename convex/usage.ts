// What the agents of a space cost: tokens and USD per agent and in total, all time and since
// given times (the client passes them: today's midnight, when the app was opened), with the
// space's budget. Recording happens in `runs:complete` / `runs:fail` (`_usage.record`). Twin of
// backend/model/usage.py.
import { v } from "convex/values";
import type { Id } from "./_generated/dataModel";
import { query } from "./_auth";
import { invalid } from "./_errors";

const MAX_WINDOWS = 4;

type Sums = { runs: number; promptTokens: number; completionTokens: number; costUsd: number };
type AgentSums = { agentId: Id<"actors">; handle: string } & Sums;
type Reported = { agentId: Id<"actors">; agentHandle: string; promptTokens: number; completionTokens: number; costUsd: number };

function empty(): Sums {
  return { runs: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 };
}

function add(into: Sums, row: Reported, runs: number): void {
  into.runs += runs;
  into.promptTokens += row.promptTokens;
  into.completionTokens += row.completionTokens;
  into.costUsd += row.costUsd;
}

/** Python's `<` on str: code point order (JS `<` compares UTF-16 units, which differs past
 * U+FFFF). */
function codePointCompare(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

function totals(rows: [Reported, number][]): { total: Sums; agents: AgentSums[] } {
  const total = empty();
  const agents = new Map<string, AgentSums>();
  for (const [row, runs] of rows) {
    let cur = agents.get(row.agentId);
    if (cur === undefined) {
      cur = { agentId: row.agentId, handle: row.agentHandle, ...empty() };
      agents.set(row.agentId, cur);
    }
    add(cur, row, runs);
    add(total, row, runs);
  }
  // stable, as Python's sorted
  return { total, agents: [...agents.values()].sort((a, b) => codePointCompare(a.handle, b.handle)) };
}

export const summary = query({
  args: { spaceId: v.id("spaces"), since: v.optional(v.array(v.number())) },
  policy: "viewer",
  scope: "space",
  // `{budgetUsd, allTime, windows}`: `allTime` and each of `windows` (one per time in `since`,
  // ms since the epoch, same order) are `{total, agents: [{agentId, handle, runs, promptTokens,
  // completionTokens, costUsd}]}`; `budgetUsd` is null when the space has no budget. `runs`
  // counts usage reports (a retried run reports once per attempt).
  handler: async (ctx, args) => {
    const since = args.since ?? [];
    if (since.length > MAX_WINDOWS) invalid(`at most ${MAX_WINDOWS} windows`);
    const spaceId = args.spaceId;
    const rows = await ctx.db
      .query("usageTotals")
      .withIndex("by_space_agent", (q) => q.eq("spaceId", spaceId))
      .collect();
    const allTime = totals(rows.map((t) => [t, t.runs]));
    const windows = [];
    if (since.length > 0) {
      const start = Math.min(...since);
      const events = await ctx.db
        .query("usageEvents")
        .withIndex("by_space_at", (q) => q.eq("spaceId", spaceId).gte("at", start))
        .collect();
      for (const t of since) windows.push(totals(events.filter((e) => e.at >= t).map((e) => [e, 1])));
    }
    return { budgetUsd: ctx.caller.spaceDoc().budgetUsd ?? null, allTime, windows };
  },
});
