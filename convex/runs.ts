// Runs: agent jobs. queued -> claimed (with a lease) -> streaming -> done / failed / cancelled.
// Twin of backend/model/runs.py.
//
// A worker acting as the agent claims the oldest queued run assigned to it; the claim has a
// lease (renewed by `runs:heartbeat`) and an `attempt` number that fences the worker: once the
// lease expires the sweeper requeues the run (or fails it after `maxAttempts`), and writes
// carrying the old attempt are rejected.
import { v, type Value } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, type MutationCtx } from "./_generated/server";
import { membership, mutation, query, type GuardedMutationCtx } from "./_auth";
import { fail, invalid } from "./_errors";
import * as live from "./_live";
import { rowLimit } from "./_limits";
import { runEnded } from "./_pipeline";
import * as usage from "./_usage";
import { audit, cpSlice, getIn, notify } from "./_util";
import { RUN_STATUS } from "./schema";

export const DEFAULT_LEASE_MS = 60_000;
const ACTIVE = ["claimed", "streaming"];
const TERMINAL = ["done", "failed", "cancelled"];
type Status = Doc<"runs">["status"];

function leaseOf(args: { leaseMs?: number }): number {
  const lease = args.leaseMs ?? DEFAULT_LEASE_MS;
  if (!(200 <= lease && lease <= 3_600_000)) invalid("leaseMs must be between 200 and 3600000");
  return lease;
}

async function setLease(ctx: MutationCtx, run: Doc<"runs">, lease: number, attempt: number): Promise<number> {
  const expires = Date.now() + lease;
  if (run.expiryJobId) await ctx.scheduler.cancel(run.expiryJobId as Id<"_scheduled_functions">);
  const job = await ctx.scheduler.runAt(expires, internal.runs.expire, { runId: run._id, attempt });
  await ctx.db.patch(run._id, { leaseExpiresAt: expires, expiryJobId: job });
  return expires;
}

/** The run if the caller's claim (this attempt) is still current. */
function owned(ctx: GuardedMutationCtx, attempt: number): Doc<"runs"> {
  const run = ctx.caller.run();
  if (run.status === "cancelled") fail("RUN_CANCELLED", "this run was cancelled", { runId: run._id });
  if (!ACTIVE.includes(run.status) || run.claimedBy !== ctx.caller.actorId || run.attempt !== attempt) {
    fail("RUN_LOST", "this claim is no longer current (lease expired or another attempt runs)", {
      runId: run._id,
      status: run.status,
      attempt: run.attempt,
    });
  }
  return run;
}

type Extra = { output?: Value; usage?: Value; costUsd?: number; error?: string };

/** End a run: `done`, or `failed` / `cancelled` (its unfinished streams and proposals keep
 * their text and say so, `_live.endRun`). Audited; a failure notifies the run's creator. */
export async function finishRun(
  ctx: MutationCtx,
  run: Doc<"runs">,
  status: "done" | "failed" | "cancelled",
  fields: Extra,
): Promise<void> {
  if (run.expiryJobId) await ctx.scheduler.cancel(run.expiryJobId as Id<"_scheduled_functions">);
  await ctx.db.patch(run._id, {
    status,
    finishedAt: Date.now(),
    expiryJobId: undefined,
    leaseExpiresAt: undefined,
    ...fields,
  });
  if (status !== "done") {
    // streams its worker did not finish keep their text, marked failed
    await live.endRun(ctx, run._id, String(fields.error || status), status);
  }
  await audit(
    ctx,
    run.spaceId,
    `run.${status}`,
    { runId: run._id, kind: run.kind, error: fields.error ?? null },
    { ...(run.artifactId !== undefined ? { artifactId: run.artifactId } : {}), actorId: run.agentId },
  );
  if (status === "failed") {
    await notify(
      ctx,
      run.createdBy,
      run.spaceId,
      "runFailed",
      cpSlice(`A ${run.kind} run failed: ${fields.error ?? ""}`, 0, 200),
      { data: { runId: run._id } },
    );
  }
  await runEnded(ctx, run, fields.error); // a pipeline stage stops with it
}

/** Queue a run (checked by the caller): `runs:enqueue` and `messages:post` (mentions). */
export async function insertRun(
  ctx: GuardedMutationCtx,
  spaceId: Id<"spaces">,
  agentId: Id<"actors">,
  kind: string,
  input: Value,
  opts: { artifactId?: Id<"artifacts">; messageId?: Id<"messages">; maxAttempts?: number } = {},
): Promise<Id<"runs">> {
  const runId = await ctx.db.insert("runs", {
    spaceId,
    agentId,
    kind,
    input,
    status: "queued",
    attempt: 0,
    maxAttempts: opts.maxAttempts ?? 3,
    createdBy: ctx.caller.actorId,
    queuedAt: Date.now(),
    ...(opts.artifactId !== undefined ? { artifactId: opts.artifactId } : {}),
    ...(opts.messageId !== undefined ? { messageId: opts.messageId } : {}),
  });
  await audit(ctx, spaceId, "run.queued", { runId, kind, agentId }, { actorId: ctx.caller.actorId });
  return runId;
}

export const enqueue = mutation({
  args: {
    spaceId: v.id("spaces"),
    agentId: v.id("actors"),
    kind: v.string(),
    input: v.optional(v.any()),
    artifactId: v.optional(v.id("artifacts")),
    messageId: v.optional(v.id("messages")),
    maxAttempts: v.optional(v.number()),
  },
  policy: "editor",
  scope: "space",
  // Queue a job for an agent member of the space. Returns the runId. `BUDGET_EXCEEDED` once the
  // space has spent its budget.
  handler: async (ctx, args) => {
    await usage.checkBudget(ctx.db, ctx.caller.spaceDoc());
    const member = await membership(ctx.db, args.spaceId, args.agentId);
    if (member === null || member.kind !== "agent") {
      fail("NOT_AN_AGENT", "runs are for agent members of this space", { actorId: args.agentId });
    }
    if (args.artifactId !== undefined) {
      const doc = await getIn(ctx.db, "artifacts", args.artifactId);
      if (doc === null || doc.spaceId !== args.spaceId) {
        fail("NOT_FOUND", `artifact ${args.artifactId} is not in this space`, { what: "artifact", id: args.artifactId });
      }
    }
    if (args.messageId !== undefined) {
      const doc = await getIn(ctx.db, "messages", args.messageId);
      if (doc === null || doc.spaceId !== args.spaceId) {
        fail("NOT_FOUND", `message ${args.messageId} is not in this space`, { what: "message", id: args.messageId });
      }
    }
    return await insertRun(ctx, args.spaceId, args.agentId, args.kind, args.input ?? null, {
      artifactId: args.artifactId,
      messageId: args.messageId,
      maxAttempts: args.maxAttempts ?? 3,
    });
  },
});

export const claim = mutation({
  args: { spaceId: v.id("spaces"), leaseMs: v.optional(v.number()) },
  policy: "editor",
  scope: "space",
  // The caller (an agent) claims its oldest queued run in the space, or gets null.
  handler: async (ctx, args) => {
    const lease = leaseOf(args);
    const me = ctx.caller.actorId;
    const run = await ctx.db
      .query("runs")
      .withIndex("by_agent_status", (q) => q.eq("agentId", me).eq("status", "queued"))
      .filter((f) => f.eq(f.field("spaceId"), args.spaceId))
      .first();
    if (run === null) return null;
    const attempt = run.attempt + 1;
    await ctx.db.patch(run._id, { status: "claimed", attempt, claimedBy: me, startedAt: Date.now() });
    await setLease(ctx, run, lease, attempt);
    return await ctx.db.get(run._id);
  },
});

export const heartbeat = mutation({
  args: { runId: v.id("runs"), attempt: v.number(), streaming: v.optional(v.boolean()), leaseMs: v.optional(v.number()) },
  policy: "editor",
  scope: "run",
  // Renew the claim's lease (and move to `streaming`). RUN_CANCELLED tells the worker to stop.
  handler: async (ctx, args) => {
    const run = owned(ctx, args.attempt);
    if (args.streaming && run.status === "claimed") await ctx.db.patch(run._id, { status: "streaming" });
    return { leaseExpiresAt: await setLease(ctx, run, leaseOf(args), run.attempt) };
  },
});

export const complete = mutation({
  args: {
    runId: v.id("runs"),
    attempt: v.number(),
    output: v.optional(v.any()),
    usage: v.optional(v.any()),
    costUsd: v.optional(v.number()),
  },
  policy: "editor",
  scope: "run",
  handler: async (ctx, args): Promise<null> => {
    const run = owned(ctx, args.attempt);
    await usage.record(ctx, run, args.usage, args.costUsd, args.output);
    const fields: Extra = {};
    if (args.output !== undefined) fields.output = args.output;
    if (args.usage !== undefined) fields.usage = args.usage;
    if (args.costUsd !== undefined) fields.costUsd = args.costUsd;
    await finishRun(ctx, run, "done", fields);
    return null;
  },
});

const failRun = mutation({
  args: {
    runId: v.id("runs"),
    attempt: v.number(),
    error: v.string(),
    retry: v.optional(v.boolean()),
    usage: v.optional(v.any()),
    costUsd: v.optional(v.number()),
  },
  policy: "editor",
  scope: "run",
  // Report a failure; `retry: true` requeues while attempts remain. Returns `{status}`.
  handler: async (ctx, args) => {
    const run = owned(ctx, args.attempt);
    const extra: Extra = {};
    if (args.usage !== undefined) extra.usage = args.usage;
    if (args.costUsd !== undefined) extra.costUsd = args.costUsd;
    await usage.record(ctx, run, args.usage, args.costUsd); // tokens spent count, even on failure
    if (args.retry && run.attempt < run.maxAttempts) {
      if (run.expiryJobId) await ctx.scheduler.cancel(run.expiryJobId as Id<"_scheduled_functions">);
      await live.endRun(ctx, run._id, args.error, "requeued");
      await ctx.db.patch(run._id, {
        status: "queued",
        error: args.error,
        claimedBy: undefined,
        leaseExpiresAt: undefined,
        expiryJobId: undefined,
        ...extra,
      });
      return { status: "queued" };
    }
    await finishRun(ctx, run, "failed", { error: args.error, ...extra });
    return { status: "failed" };
  },
});
// Exported as `fail` (`runs:fail` on both backends); the local name keeps the error helper
// `fail` of this module unshadowed.
export { failRun as fail };

export const cancel = mutation({
  args: { runId: v.id("runs"), reason: v.optional(v.string()) },
  policy: "editor",
  scope: "run",
  // Cancel a run that has not finished (the worker learns it from its next heartbeat).
  handler: async (ctx, args) => {
    const run = ctx.caller.run();
    if (TERMINAL.includes(run.status)) return { status: run.status };
    await finishRun(ctx, run, "cancelled", { error: args.reason ?? "cancelled" });
    return { status: "cancelled" as Status };
  },
});

export const cancelAll = mutation({
  args: { spaceId: v.id("spaces"), reason: v.optional(v.string()) },
  policy: "editor",
  scope: "space",
  // Cancel every run of the space that has not finished (queued, claimed, streaming) in one
  // transaction (`ctrl+g` in the app); their workers stop within a second. Returns the runs
  // stopped, oldest first: `[{runId, agentId, agentHandle, kind}]`.
  handler: async (ctx, args) => {
    const reason = args.reason || `cancelled by @${ctx.caller.handle}`;
    const stopped: { runId: Id<"runs">; agentId: Id<"actors">; kind: string; agentHandle: string; at: number }[] = [];
    for (const status of ["queued", ...ACTIVE] as Status[]) {
      const runs = await ctx.db
        .query("runs")
        .withIndex("by_space_status", (q) => q.eq("spaceId", args.spaceId).eq("status", status))
        .collect();
      for (const run of runs) {
        await finishRun(ctx, run, "cancelled", { error: reason });
        const agent = await ctx.db.get(run.agentId);
        stopped.push({
          runId: run._id,
          agentId: run.agentId,
          kind: run.kind,
          agentHandle: agent !== null ? agent.handle : "?",
          at: run._creationTime,
        });
      }
    }
    stopped.sort((a, b) => a.at - b.at); // stable, as Python's sort
    return stopped.map(({ at: _at, ...rest }) => rest);
  },
});

export const retry = mutation({
  args: { runId: v.id("runs") },
  policy: "editor",
  scope: "run",
  // Queue a failed or cancelled run again (one more attempt). Returns `{status}`.
  handler: async (ctx) => {
    const run = ctx.caller.run();
    if (run.kind === "stage" || run.kind === "review") {
      fail("PIPELINE_RUN", "this run belongs to a pipeline stage: retry the pipeline (pipelines:retry)", {
        pipelineId: ((run.input ?? {}) as Record<string, Value>).pipelineId ?? null,
      });
    }
    if (run.status !== "failed" && run.status !== "cancelled") {
      fail("RUN_ACTIVE", `this run is ${run.status}: only failed or cancelled runs are retried`, { status: run.status });
    }
    await ctx.db.patch(run._id, {
      status: "queued",
      maxAttempts: run.attempt + 1,
      claimedBy: undefined,
      finishedAt: undefined,
      queuedAt: Date.now(),
    });
    await live.endRun(ctx, run._id, "retried", "requeued"); // its proposals start over
    await audit(
      ctx,
      run.spaceId,
      "run.retried",
      { runId: run._id, kind: run.kind },
      { ...(run.artifactId !== undefined ? { artifactId: run.artifactId } : {}), actorId: ctx.caller.actorId },
    );
    return { status: "queued" };
  },
});

export const pending = query({
  args: {},
  policy: "authenticated",
  // The caller's (an agent's) queued runs in every space, oldest first: what a worker watches,
  // so it wakes when a run is queued instead of polling `runs:claim`.
  handler: async (ctx) => {
    const actor = ctx.caller.actor;
    if (actor === null) return [];
    return await ctx.db
      .query("runs")
      .withIndex("by_agent_status", (q) => q.eq("agentId", actor._id).eq("status", "queued"))
      .collect();
  },
});

export const active = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  // Runs of the space not finished yet, oldest first, each with `agentHandle`: what every agent
  // is doing (queued, claimed = thinking, streaming) for the presence bar.
  handler: async (ctx, args) => {
    const rows: Doc<"runs">[] = [];
    for (const status of ["queued", ...ACTIVE] as Status[]) {
      rows.push(
        ...(await ctx.db
          .query("runs")
          .withIndex("by_space_status", (q) => q.eq("spaceId", args.spaceId).eq("status", status))
          .collect()),
      );
    }
    rows.sort((a, b) => a._creationTime - b._creationTime); // stable, as Python's sorted
    const out = [];
    for (const r of rows) {
      const agent = await ctx.db.get(r.agentId);
      out.push({
        runId: r._id,
        agentId: r.agentId,
        agentHandle: agent !== null ? agent.handle : "?",
        kind: r.kind,
        status: r.status,
        artifactId: r.artifactId ?? null,
        messageId: r.messageId ?? null,
        queuedAt: r.queuedAt,
        startedAt: r.startedAt ?? null,
      });
    }
    return out;
  },
});

export const get = query({
  args: { runId: v.id("runs") },
  policy: "viewer",
  scope: "run",
  handler: async (ctx) => ctx.caller.run(),
});

const STATUSES: Status[] = ["queued", "claimed", "streaming", "done", "failed", "cancelled"];

export const list = query({
  args: { spaceId: v.id("spaces"), status: v.optional(RUN_STATUS), limit: v.optional(v.number()) },
  policy: "viewer",
  scope: "space",
  // Runs of a space, newest first (optionally of one status); `limit` at most 1000. Every run
  // of a long history: `runs:page`.
  handler: async (ctx, args) => {
    const limit = rowLimit(args.limit, 100);
    if (args.status !== undefined) {
      const status = args.status;
      return await ctx.db
        .query("runs")
        .withIndex("by_space_status", (q) => q.eq("spaceId", args.spaceId).eq("status", status))
        .order("desc")
        .take(limit);
    }
    const rows: Doc<"runs">[] = [];
    for (const status of STATUSES) {
      rows.push(
        ...(await ctx.db
          .query("runs")
          .withIndex("by_space_status", (q) => q.eq("spaceId", args.spaceId).eq("status", status))
          .order("desc")
          .take(limit)),
      );
    }
    return rows.sort((a, b) => b._creationTime - a._creationTime).slice(0, limit);
  },
});

export const page = query({
  args: { spaceId: v.id("spaces"), numItems: v.number(), cursor: v.union(v.string(), v.null()) },
  policy: "viewer",
  scope: "space",
  // Every run of the space, newest first, in pages (`{page, isDone, continueCursor}`) keyed by
  // creation time: a run changing status stays on its page. `numItems` at most 1000.
  handler: async (ctx, args) => {
    const result = await ctx.db
      .query("runs")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .order("desc")
      .paginate({ numItems: rowLimit(args.numItems, 0, "numItems"), cursor: args.cursor });
    return { page: result.page, isDone: result.isDone, continueCursor: result.continueCursor };
  },
});

/** A claim whose lease ended: requeue while attempts remain, else fail. */
export const expire = internalMutation({
  args: { runId: v.id("runs"), attempt: v.number() },
  handler: async (ctx, args): Promise<string | null> => {
    const run = await ctx.db.get(args.runId);
    if (run === null || !ACTIVE.includes(run.status) || run.attempt !== args.attempt) return null;
    if (run.leaseExpiresAt! > Date.now()) return null;
    if (run.attempt < run.maxAttempts) {
      await live.endRun(ctx, run._id, "the worker stopped answering (claim lease expired); retrying", "requeued");
      await ctx.db.patch(run._id, {
        status: "queued",
        claimedBy: undefined,
        leaseExpiresAt: undefined,
        expiryJobId: undefined,
        error: "claim lease expired",
      });
      return "queued";
    }
    // This job is the run's expiry job: finish without cancelling the running job.
    await finishRun(ctx, { ...run, expiryJobId: undefined }, "failed", {
      error: "the worker stopped answering (claim lease expired)",
    });
    return "failed";
  },
});
