// Pipelines (DESIGN 1.3): an artifact goes through stages in turn (drafter -> editor ->
// polisher), each worked on by its actor (an agent or a human) and reviewed by its approver
// before the next begins. Twin of backend/model/pipelines.py; docs/PIPELINE.md says who may do
// what and what is recorded.
//
// - `start`: the stages are given by the caller (a flow's, from the client's config: the
//   backend never reads the config); the pipeline holds the artifact at once (`_pipeline`).
// - `submit`: the stage's actor hands its output in under its lock hold (fenced), which ends the
//   hold; the stage awaits review (`auto` approves at once; an agent approver's review run is
//   queued; human approvers are told).
// - `approve` / `reject` (a reason is required): only the stage's approver. Approval of a
//   content output is the next version, recording pipeline, stage and approver; rejection sends
//   the stage back for another attempt, up to `maxAttempts`, after which the pipeline stops.
// - `cancel`: owners and whoever started it; the artifact is given back. `retry`: a failed
//   stage (or review) again, on the same input.
//
// Each is one transaction that also queues the next agent run.
import { v, type Value } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader } from "./_generated/server";
import { mutation, query, type GuardedMutationCtx } from "./_auth";
import { fail, invalid } from "./_errors";
import * as live from "./_live";
import * as lk from "./_lockcore";
import * as pl from "./_pipeline";
import { audit, cpLen, getIn, pyG, pyRepr, pyStrip } from "./_util";
import { checkContent } from "./_versions";
import { finishRun } from "./runs";

const MAX_STAGES = 10;
const MAX_ATTEMPTS = 10;
const DEFAULT_ATTEMPTS = 3;
const MAX_TEXT = 4_000;
const ACTIVE_RUNS = ["queued", "claimed", "streaming"];
const STAGE_ARG = v.object({
  name: v.string(),
  actor: v.string(),
  approver: v.optional(v.string()),
  instructions: v.optional(v.string()),
  output: v.optional(v.union(v.literal("content"), v.literal("notes"))),
});

type Pipeline = Doc<"pipelines">;
type StageRun = Doc<"stageRuns">;
type Stage = Pipeline["stages"][number];

// ---------------------------------------------------------------------------- checks

/** `spec` must name someone of this space who can take the role (an agent editor, a human
 * editor, any human) or `auto` for an approver. */
async function role(db: DatabaseReader, spaceId: Id<"spaces">, raw: string, what: string, approver: boolean): Promise<string> {
  const spec = pyStrip(raw);
  if (spec === pl.AUTO) {
    if (approver) return spec;
    invalid(`${what}: "auto" only approves; a stage needs an agent or a human to work on it`);
  }
  if (spec === pl.HUMAN) {
    if (!(await pl.editors(db, spaceId)).some((m) => m.kind === "human")) invalid(`${what}: no human editor in this space`);
    return spec;
  }
  if (!spec || spec.startsWith("@")) {
    const also = approver ? ', or "auto"' : "";
    invalid(`${what} must be an agent handle, "human" or "human:<handle>"${also} (got ${pyRepr(spec)})`);
  }
  if ((await pl.membersFor(db, spaceId, spec)).length === 0) {
    const kind = spec.startsWith(pl.HUMAN + ":") ? "a human" : "an agent";
    invalid(`${what}: ${pl.describe(spec)} is not ${kind} editor of this space`);
  }
  return spec;
}

type StageArg = { name: string; actor: string; approver?: string; instructions?: string; output?: "content" | "notes" };

async function checkStages(db: DatabaseReader, spaceId: Id<"spaces">, stages: StageArg[]): Promise<Stage[]> {
  if (!(1 <= stages.length && stages.length <= MAX_STAGES)) {
    invalid(`a pipeline has 1 to ${MAX_STAGES} stages (got ${stages.length})`);
  }
  const out: Stage[] = [];
  for (const [i, s] of stages.entries()) {
    const name = pyStrip(s.name);
    if (!(1 <= cpLen(name) && cpLen(name) <= 40)) invalid(`stages[${i}].name must be 1-40 characters`, { stage: i });
    if (out.some((o) => o.name === name)) {
      invalid(`two stages are called ${pyRepr(name)}: stage names are unique`, { stage: i });
    }
    const instructions = pyStrip(s.instructions || "");
    if (cpLen(instructions) > MAX_TEXT) {
      invalid(`stages[${i}].instructions is longer than ${MAX_TEXT} characters`, { stage: i });
    }
    out.push({
      name,
      actor: await role(db, spaceId, s.actor, `stages[${i}].actor`, false),
      approver: await role(db, spaceId, s.approver || pl.HUMAN, `stages[${i}].approver`, true),
      instructions,
      output: s.output || "content",
    });
  }
  return out;
}

/** The pipeline's current attempt, in `status`; a decided or superseded one is STAGE_OVER
 * (someone else was faster, or it moved on). */
async function stageRun(db: DatabaseReader, p: Pipeline, stageRunId: string, status: string): Promise<StageRun> {
  const sr = await getIn(db, "stageRuns", stageRunId);
  if (sr === null || sr.pipelineId !== p._id) {
    fail("NOT_FOUND", "that stage attempt is not in this pipeline", { what: "stageRun", id: stageRunId });
  }
  const current = await pl.currentRun(db, p);
  const want = status === "working" ? "running" : "awaitingReview";
  if (current === null || current._id !== sr._id || sr.status !== status || p.status !== want) {
    const who = ((sr.reviewer ?? {}) as Record<string, Value>).handle;
    const state = sr.status + (who && who !== pl.AUTO ? ` by @${who}` : "");
    fail("STAGE_OVER", `stage ${sr.stageName} attempt ${pyG(sr.attempt)} is ${state}; the pipeline is ${p.status}`, {
      status: sr.status,
      pipelineStatus: p.status,
    });
  }
  return sr;
}

function reviewerOf(ctx: GuardedMutationCtx, p: Pipeline, sr: StageRun): pl.Reviewer {
  const spec = p.stages[sr.stage]!.approver;
  const caller = ctx.caller;
  if (!pl.matches(spec, caller.kind, caller.handle)) {
    fail("FORBIDDEN", `only ${pl.describe(spec)} reviews stage ${sr.stageName}`, { required: spec, role: caller.role });
  }
  return { actorId: caller.actorId, handle: caller.handle, kind: caller.kind };
}

function ownerOrStarter(ctx: GuardedMutationCtx, p: Pipeline, what: string): void {
  if (p.startedBy !== ctx.caller.actorId && !ctx.caller.isAtLeast("owner")) {
    fail("FORBIDDEN", `only an owner or @${p.startedByHandle}, who started it, can ${what} this pipeline`, {
      required: "owner",
      role: ctx.caller.role,
    });
  }
}

function reasonOf(text: string | undefined, required: boolean): string | null {
  const reason = pyStrip(text || "");
  if (required && !reason) invalid("say why: a rejection needs a reason (the stage's actor gets it)");
  if (cpLen(reason) > MAX_TEXT) invalid(`the reason is longer than ${MAX_TEXT} characters`);
  return reason || null;
}

// ---------------------------------------------------------------------------- transitions

export const start = mutation({
  args: {
    artifactId: v.id("artifacts"),
    stages: v.array(STAGE_ARG),
    flow: v.optional(v.string()),
    title: v.optional(v.string()),
    instructions: v.optional(v.string()),
    maxAttempts: v.optional(v.number()),
  },
  policy: "editor",
  scope: "artifact",
  // Send the artifact through `stages`: the pipeline holds the artifact from now on and the
  // first stage is at work (its agent's run queued, or its humans told). LOCKED if someone holds
  // the lock or another pipeline holds the artifact. Returns `{pipelineId, stageRunId}`.
  handler: async (ctx, args) => {
    const artifact = ctx.caller.artifact();
    const caller = ctx.caller;
    const stages = await checkStages(ctx.db, artifact.spaceId, args.stages);
    const attempts = args.maxAttempts ?? DEFAULT_ATTEMPTS;
    if (attempts !== Math.trunc(attempts) || !(1 <= attempts && attempts <= MAX_ATTEMPTS)) {
      invalid(`maxAttempts must be a whole number from 1 to ${MAX_ATTEMPTS}`, { maxAttempts: attempts });
    }
    const title = pyStrip(args.title || args.flow || "Pipeline");
    if (!(1 <= cpLen(title) && cpLen(title) <= 60)) invalid("the title must be 1-60 characters");
    const instructions = pyStrip(args.instructions || "");
    if (cpLen(instructions) > MAX_TEXT) invalid(`instructions are longer than ${MAX_TEXT} characters`);
    const lock = await lk.expireIfDue(ctx, await lk.lockOf(ctx.db, artifact._id));
    if (lock.pipelineId !== undefined) await pl.refuse(ctx.db, lock, (await ctx.db.get(lock.pipelineId))!);
    const holder = lk.holderInfo(lock);
    if (holder !== null) {
      fail("LOCKED", `@${holder.handle} (${holder.kind}) holds the lock on #${artifact.slug}: start the pipeline when it is free`, {
        holder,
        queueLength: (await lk.waiters(ctx.db, artifact._id)).length,
      });
    }
    const now = Date.now();
    const flow = args.flow ? pyStrip(args.flow) : undefined;
    const pid = await ctx.db.insert("pipelines", {
      spaceId: artifact.spaceId,
      artifactId: artifact._id,
      title,
      stages,
      current: 0,
      status: "running",
      maxAttempts: attempts,
      baseVersion: artifact.version,
      startedBy: caller.actorId,
      startedByHandle: caller.handle,
      startedAt: now,
      updatedAt: now,
      ...(flow !== undefined ? { flow } : {}),
      ...(instructions ? { instructions } : {}),
    });
    await ctx.db.patch(lock._id, { pipelineId: pid });
    await audit(
      ctx,
      artifact.spaceId,
      "pipeline.started",
      { pipelineId: pid, title, flow: flow ?? null, stages: stages.map((s) => s.name) },
      { artifactId: artifact._id, actorId: caller.actorId },
    );
    const srId = await pl.openStage(ctx, (await ctx.db.get(pid))!, 0, 1, artifact.version);
    return { pipelineId: pid, stageRunId: srId };
  },
});

export const submit = mutation({
  args: {
    pipelineId: v.id("pipelines"),
    stageRunId: v.id("stageRuns"),
    token: v.number(),
    content: v.optional(v.string()),
  },
  policy: "editor",
  scope: "pipeline",
  // The stage's actor hands its output in, under its hold (`token`): `content` (a human's text;
  // an agent's streamed output by default), which ends the hold (reason `submitted`), and the
  // stage awaits review (or is approved at once by `auto`). Returns `{status}`.
  handler: async (ctx, args) => {
    const p = ctx.caller.pipeline();
    const caller = ctx.caller;
    const sr = await stageRun(ctx.db, p, args.stageRunId, "working");
    const lock = await lk.checkFence(ctx, caller.actorId, p.artifactId, args.token);
    if (sr.epoch !== args.token) fail("STAGE_OVER", "this hold is not the stage's: take the lock for the stage first");
    const prop = sr.proposalId !== undefined ? await ctx.db.get(sr.proposalId) : null;
    const content = args.content !== undefined ? args.content : (prop?.content ?? "");
    if (!pyStrip(content)) invalid("the stage output is empty: there is nothing to review");
    checkContent(content);
    const now = Date.now();
    let propId: Id<"proposals">;
    if (prop !== null) {
      await ctx.db.patch(prop._id, { content, status: "done", updatedAt: now });
      await live.endProposal(ctx, prop._id);
      propId = prop._id;
    } else {
      const spec = p.stages[sr.stage]!;
      propId = await ctx.db.insert("proposals", {
        spaceId: p.spaceId,
        artifactId: p.artifactId,
        authorId: caller.actorId,
        authorKind: caller.kind,
        authorHandle: caller.handle,
        baseVersion: sr.inputVersion,
        content,
        status: "done",
        updatedAt: now,
        provenance: {
          kind: "stage",
          pipelineId: p._id,
          stageRunId: sr._id,
          stage: sr.stage,
          stageName: spec.name,
          attempt: sr.attempt,
        },
      });
    }
    await lk.endHold(ctx, lock, "submitted", { by: caller.actor });
    await ctx.db.patch(sr._id, { status: "awaitingReview", submittedAt: now, proposalId: propId });
    await ctx.db.patch(p._id, { status: "awaitingReview", updatedAt: now });
    await audit(
      ctx,
      p.spaceId,
      "pipeline.submitted",
      { pipelineId: p._id, stage: sr.stageName, attempt: sr.attempt, length: cpLen(content) },
      { artifactId: p.artifactId, actorId: caller.actorId },
    );
    await pl.requestReview(ctx, (await ctx.db.get(p._id))!, (await ctx.db.get(sr._id))!);
    return { status: (await ctx.db.get(p._id))!.status };
  },
});

export const approve = mutation({
  args: { pipelineId: v.id("pipelines"), stageRunId: v.id("stageRuns"), reason: v.optional(v.string()) },
  policy: "editor",
  scope: "pipeline",
  // The stage's approver approves the output awaiting review: a content output becomes the next
  // version, then the next stage starts or the pipeline is done. Returns `{status, version?}`.
  handler: async (ctx, args) => {
    const p = ctx.caller.pipeline();
    const sr = await stageRun(ctx.db, p, args.stageRunId, "awaitingReview");
    await pl.approve(ctx, p, sr, reviewerOf(ctx, p, sr), reasonOf(args.reason, false));
    return { status: (await ctx.db.get(p._id))!.status, version: (await ctx.db.get(sr._id))!.outputVersion ?? null };
  },
});

export const reject = mutation({
  args: { pipelineId: v.id("pipelines"), stageRunId: v.id("stageRuns"), reason: v.string() },
  policy: "editor",
  scope: "pipeline",
  // The stage's approver sends the output back with a `reason` (required): another attempt of the
  // stage on the same input, its actor told why; after `maxAttempts` the pipeline stops (failed)
  // and says so. Returns `{status, attempt}` (the new attempt, if any).
  handler: async (ctx, args) => {
    let p = ctx.caller.pipeline();
    const reason = reasonOf(args.reason, true)!;
    const sr = await stageRun(ctx.db, p, args.stageRunId, "awaitingReview");
    await pl.reject(ctx, p, sr, reviewerOf(ctx, p, sr), reason);
    p = (await ctx.db.get(p._id))!;
    const current = await pl.currentRun(ctx.db, p);
    return { status: p.status, attempt: current !== null ? current.attempt : null };
  },
});

export const cancel = mutation({
  args: { pipelineId: v.id("pipelines"), reason: v.optional(v.string()) },
  policy: "editor",
  scope: "pipeline",
  // Owners, or whoever started it: stop the pipeline and give the artifact back. The stage at
  // work stops (its agent's run is cancelled, its output kept; a stage actor's lock hold is
  // ended). Returns `{status: "cancelled"}`.
  handler: async (ctx, args) => {
    const p = ctx.caller.pipeline();
    const caller = ctx.caller;
    ownerOrStarter(ctx, p, "cancel");
    if (!pl.HOLDING.includes(p.status)) fail("PIPELINE_OVER", `this pipeline is already ${p.status}`, { status: p.status });
    const reason = reasonOf(args.reason, false) ?? `cancelled by @${caller.handle}`;
    await ctx.db.patch(p._id, { status: "cancelled" }); // first: the runs ending below find it over
    const sr = await pl.currentRun(ctx.db, p);
    if (sr !== null) {
      if (sr.status === "working" || sr.status === "awaitingReview") {
        await ctx.db.patch(sr._id, { status: "cancelled", error: reason });
      }
      for (const runId of [sr.runId, sr.reviewRunId]) {
        const run = runId !== undefined ? await ctx.db.get(runId) : null;
        if (run !== null && ACTIVE_RUNS.includes(run.status)) await finishRun(ctx, run, "cancelled", { error: reason });
      }
    }
    const lock = await lk.lockOf(ctx.db, p.artifactId);
    if (lock.holderId !== undefined && lock.pipelineId === p._id) {
      await lk.endHold(ctx, lock, "forceReleased", { by: caller.actor, forceReason: reason });
    }
    await pl.finish(ctx, p, "cancelled", reason, caller.handle);
    return { status: "cancelled" };
  },
});

export const retry = mutation({
  args: { pipelineId: v.id("pipelines") },
  policy: "editor",
  scope: "pipeline",
  // Owners, or whoever started it: a failed pipeline goes on where it stopped. A failed (or
  // finally rejected) stage gets another attempt on the same input; a failed review is asked
  // again. Returns `{status, attempt}`.
  handler: async (ctx) => {
    let p = ctx.caller.pipeline();
    ownerOrStarter(ctx, p, "retry");
    if (p.status !== "failed") fail("NOT_FAILED", `only a failed pipeline is retried; this one is ${p.status}`, { status: p.status });
    const sr = await pl.currentRun(ctx.db, p);
    if (sr === null) fail("NOT_FAILED", "this pipeline has no stage to retry");
    await audit(
      ctx,
      p.spaceId,
      "pipeline.retried",
      { pipelineId: p._id, stage: sr.stageName, reason: p.reason ?? null },
      { artifactId: p.artifactId, actorId: ctx.caller.actorId },
    );
    if (sr.status === "awaitingReview") {
      await ctx.db.patch(p._id, { status: "awaitingReview", reason: undefined, updatedAt: Date.now() });
      await pl.requestReview(ctx, (await ctx.db.get(p._id))!, sr);
      return { status: (await ctx.db.get(p._id))!.status, attempt: sr.attempt };
    }
    await ctx.db.patch(p._id, { status: "running", reason: undefined, updatedAt: Date.now() });
    await pl.openStage(ctx, (await ctx.db.get(p._id))!, sr.stage, sr.attempt + 1, sr.inputVersion, sr);
    p = (await ctx.db.get(p._id))!;
    return { status: p.status, attempt: (await pl.currentRun(ctx.db, p))!.attempt };
  },
});

// ---------------------------------------------------------------------------- queries

async function runView(db: DatabaseReader, sr: StageRun, content: boolean): Promise<Record<string, Value>> {
  const { spaceId: _space, artifactId: _artifact, ...out } = sr;
  const view: Record<string, Value> = { ...(out as Record<string, Value>) };
  const prop = sr.proposalId !== undefined ? await db.get(sr.proposalId) : null;
  view.outputStatus = prop !== null ? prop.status : null;
  view.outputLength = prop !== null ? cpLen(prop.content) : 0;
  if (content) {
    view.output = prop !== null ? prop.content : "";
    if (prop !== null && prop.error) view.outputError = prop.error;
  }
  return view;
}

export const get = query({
  args: { pipelineId: v.id("pipelines") },
  policy: "viewer",
  scope: "pipeline",
  // The pipeline with every attempt of every stage in order: `{pipeline, runs}` (output at the
  // persistence cadence: add the live tail of `proposals:live`).
  handler: async (ctx) => {
    const p = ctx.caller.pipeline();
    const runs = [];
    for (const sr of await pl.stageRuns(ctx.db, p._id)) runs.push(await runView(ctx.db, sr, true));
    return { pipeline: p, runs };
  },
});

export const forArtifact = query({
  args: { artifactId: v.id("artifacts"), limit: v.optional(v.number()) },
  policy: "viewer",
  scope: "artifact",
  // The artifact's pipelines, newest first (at most `limit`, default 20), each with its current
  // attempt (`currentRun`, no content) and whether it holds the artifact.
  handler: async (ctx, args) => {
    if (Number.isNaN(args.limit)) invalid("limit must be a number", { field: "limit" });
    const limit = Math.trunc(Math.min(Math.max(args.limit ?? 20, 1), 100));
    const rows = await ctx.db
      .query("pipelines")
      .withIndex("by_artifact", (q) => q.eq("artifactId", args.artifactId))
      .order("desc")
      .take(limit);
    const out = [];
    for (const p of rows) {
      const sr = await pl.currentRun(ctx.db, p);
      out.push({ ...p, holding: pl.HOLDING.includes(p.status), currentRun: sr !== null ? await runView(ctx.db, sr, false) : null });
    }
    return out;
  },
});
