// Proposals: candidate content for an artifact, streamed but not saved (DESIGN 2.3). Twin of
// backend/model/proposals.py.
//
// A proposal is written by one author (an agent's run, or a human composing parts) at the two
// cadences of every stream: the durable `content` grows with `proposals:append` (persistence
// cadence) and its not-yet-persisted tail is a `liveStreams` row of kind "proposal" pushed with
// `streams:push` (UI cadence). It is not tied to a lock epoch: five can stream into one artifact
// at once while nobody holds its lock. It becomes a version only through the lock
// (`variations:pick`, an approved pipeline stage).
//
// Status: queued (its run has not started) -> streaming -> done / failed / cancelled. A run that
// ends without finishing its proposal closes it with the text it had (`_live.endRun`).
// `provenance` says what it is: `{kind: "variation", roundId, index}`, `{kind: "compose",
// roundId, parts, instruction?}`, or a pipeline stage's output.
//
// A pipeline stage's output (provenance `{kind: "stage", ...}`) is written under the artifact's
// lock: `open` and `append` then carry the stage actor's fencing `token` and are refused like a
// stale draft delta once that hold is over; it is handed in with `pipelines:submit`, not
// `finish`.
import { v, type Value } from "convex/values";
import type { Doc } from "./_generated/dataModel";
import { mutation, query, type GuardedMutationCtx } from "./_auth";
import { fail, invalid } from "./_errors";
import * as live from "./_live";
import { fenceStage } from "./_pipeline";
import { cpLen } from "./_util";
import { MAX_CONTENT } from "./_versions";

const FINISHED = ["done", "failed", "cancelled"];

/** The caller's proposal, still being written. */
function own(ctx: GuardedMutationCtx): Doc<"proposals"> {
  const prop = ctx.caller.proposal();
  if (prop.authorId !== ctx.caller.actorId) fail("NOT_AUTHOR", "only the author writes this proposal");
  if (FINISHED.includes(prop.status)) fail("NOT_STREAMING", `this proposal is ${prop.status}`, { state: prop.status });
  return prop;
}

export const open = mutation({
  args: { proposalId: v.id("proposals"), key: v.string(), token: v.optional(v.number()) },
  policy: "editor",
  scope: "proposal",
  // Start writing the caller's proposal: it becomes `streaming` and gets its live stream (write
  // capability `key`, >= 16 characters) in one transaction. Opening it again with the same key
  // returns the same stream. Returns `{streamId, content}` (the content so far). A stage's
  // output needs the `token` of the stage actor's hold.
  handler: async (ctx, args) => {
    const prop = own(ctx);
    const now = Date.now();
    await fenceStage(ctx, prop, args.token);
    if (cpLen(args.key) < live.MIN_KEY) invalid(`key must be at least ${live.MIN_KEY} characters`);
    const existing = await ctx.db
      .query("liveStreams")
      .withIndex("by_proposal", (q) => q.eq("proposalId", prop._id))
      .first();
    if (existing !== null) {
      if (existing.key !== args.key) {
        fail("STREAM_OPEN", "another stream is already open on this proposal", { streamId: existing._id });
      }
      return { streamId: existing._id, content: prop.content };
    }
    await ctx.db.patch(prop._id, { status: "streaming", updatedAt: now });
    const row: live.NewRow = {
      spaceId: prop.spaceId,
      actorId: ctx.caller.actorId,
      actorHandle: ctx.caller.handle,
      kind: "proposal",
      proposalId: prop._id,
      artifactId: prop.artifactId,
      base: cpLen(prop.content),
      text: "",
      seq: 0,
      key: args.key,
      startedAt: now,
      updatedAt: now,
    };
    if (prop.runId) row.runId = prop.runId;
    return { streamId: await live.openRow(ctx, row), content: prop.content };
  },
});

export const append = mutation({
  args: { proposalId: v.id("proposals"), text: v.string(), token: v.optional(v.number()) },
  policy: "editor",
  scope: "proposal",
  // Append streamed text (at the persistence cadence, never per token); fenced by `token` for a
  // stage's output.
  handler: async (ctx, args): Promise<null> => {
    const prop = own(ctx);
    await fenceStage(ctx, prop, args.token);
    if (cpLen(prop.content) + cpLen(args.text) > MAX_CONTENT) invalid(`a proposal is at most ${MAX_CONTENT} characters`);
    await ctx.db.patch(prop._id, { content: prop.content + args.text, updatedAt: Date.now() });
    return null;
  },
});

export const finish = mutation({
  args: {
    proposalId: v.id("proposals"),
    status: v.union(v.literal("done"), v.literal("failed")),
    content: v.optional(v.string()),
    error: v.optional(v.string()),
    usage: v.optional(v.any()),
    costUsd: v.optional(v.number()),
  },
  policy: "editor",
  scope: "proposal",
  // End the caller's proposal (optionally with its final content), with the run's usage and
  // cost; its live stream goes in the same commit. (A stage's output ends with
  // `pipelines:submit`, or with its run.)
  handler: async (ctx, args): Promise<null> => {
    const prop = own(ctx);
    if (((prop.provenance ?? {}) as Record<string, Value>).kind === "stage") {
      fail("STAGE_OUTPUT", "a stage's output is handed in with pipelines:submit (or ends with its run)");
    }
    const fields: { status: "done" | "failed"; updatedAt: number; content?: string; error?: string; usage?: Value; costUsd?: number } =
      { status: args.status, updatedAt: Date.now() };
    if (args.content !== undefined) fields.content = args.content;
    if (args.error !== undefined) fields.error = args.error;
    if (args.usage !== undefined) fields.usage = args.usage;
    if (args.costUsd !== undefined) fields.costUsd = args.costUsd;
    if (cpLen(fields.content ?? prop.content) > MAX_CONTENT) invalid(`a proposal is at most ${MAX_CONTENT} characters`);
    await ctx.db.patch(prop._id, fields);
    await live.endProposal(ctx, prop._id);
    return null;
  },
});

export const get = query({
  args: { proposalId: v.id("proposals") },
  policy: "viewer",
  scope: "proposal",
  handler: async (ctx) => ctx.caller.proposal(),
});

const liveTails = query({
  args: { artifactId: v.id("artifacts") },
  policy: "viewer",
  scope: "artifact",
  // The live tails (~30 ms) of every proposal being streamed into the artifact: show each after
  // its proposal's content with the merge rule.
  handler: async (ctx, args) => {
    const rows = await ctx.db
      .query("liveStreams")
      .withIndex("by_artifact", (q) => q.eq("artifactId", args.artifactId))
      .collect();
    return rows.filter((r) => r.kind === "proposal").map((r) => live.publicRow(r)!);
  },
});
// Exported as `live` (`proposals:live` on both backends); the local name keeps the helper module
// `live` (./_live) unshadowed.
export { liveTails as live };
