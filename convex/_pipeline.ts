// The pipeline's core (DESIGN 1.3, docs/PIPELINE.md): who may work on or review a stage, the
// pipeline's hold on the artifact, and the transitions shared by `pipelines:*`,
// `locks:acquire`, `proposals:*` and the end of an agent's run (`runs.finishRun`). Twin of
// backend/model/_pipeline.py.
//
// The hold: from `pipelines:start` until the pipeline is done or cancelled, the artifact's lock
// row names the pipeline (`locks.pipelineId`). Meanwhile `locks:acquire` grants the lock only to
// the current stage's actor while its stage is at work (fenced and leased like any hold; nobody
// queues behind a pipeline), and every other acquire answers `LOCKED` naming the pipeline and
// the stage. A stage's actor hands its output in with `pipelines:submit` (which ends its hold:
// reason `submitted`) rather than saving; the only new versions while the pipeline holds the
// artifact are approved content outputs (`commitVersion` in pipeline mode). A failed pipeline
// keeps the hold (`pipelines:retry` resumes on the same input); cancelling gives it back.
import type { Value } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader, MutationCtx } from "./_generated/server";
import type { Caller, GuardedMutationCtx } from "./_auth";
import { fail } from "./_errors";
import * as lk from "./_lockcore";
import { audit, cpSlice, getIn, notify, pyG } from "./_util";
import { commitVersion } from "./_versions";
import { insertRun } from "./runs"; // (runs imports this module: used at call time only)

export const HOLDING = ["running", "awaitingReview", "failed"]; // the pipeline holds the artifact
const AGENT_RUN_KINDS = ["stage", "review"];
export const HUMAN = "human";
export const AUTO = "auto";

type Pipeline = Doc<"pipelines">;
type StageRun = Doc<"stageRuns">;
export type Reviewer = { actorId?: Id<"actors">; handle: string; kind: string };

// ---------------------------------------------------------------------------- who
// (the role rule of wire/roles.py, so the app offers the keys to exactly who may use them)

export function isAgentRole(role: string): boolean {
  return role !== HUMAN && role !== AUTO && !role.startsWith(HUMAN + ":");
}

/** Does an actor of `kind` (human / agent) and `handle` fill `role`? */
export function matches(role: string, kind: string, handle: string): boolean {
  if (role === AUTO) return false;
  if (role === HUMAN) return kind === "human";
  if (role.startsWith(HUMAN + ":")) return kind === "human" && handle === role.slice(HUMAN.length + 1);
  return kind === "agent" && handle === role;
}

/** `@edwin`, `@bob`, `a human editor`, `nobody (auto-approved)`. */
export function describe(role: string): string {
  if (role === HUMAN) return "a human editor";
  if (role === AUTO) return "nobody (auto-approved)";
  const colon = role.indexOf(":");
  return "@" + (colon >= 0 ? role.slice(colon + 1) : role);
}

export async function editors(db: DatabaseReader, spaceId: Id<"spaces">): Promise<Doc<"members">[]> {
  const rows = await db
    .query("members")
    .withIndex("by_space", (q) => q.eq("spaceId", spaceId))
    .collect();
  return rows.filter((m) => m.role !== "viewer");
}

/** The space's editors who fill the role `spec`. */
export async function membersFor(db: DatabaseReader, spaceId: Id<"spaces">, spec: string): Promise<Doc<"members">[]> {
  return (await editors(db, spaceId)).filter((m) => matches(spec, m.kind, m.handle));
}

// ---------------------------------------------------------------------------- reads

/** Every attempt of every stage, in order (stage, then attempt). */
export async function stageRuns(db: DatabaseReader, pipelineId: Id<"pipelines">): Promise<StageRun[]> {
  return await db
    .query("stageRuns")
    .withIndex("by_pipeline", (q) => q.eq("pipelineId", pipelineId))
    .collect();
}

/** The latest attempt of the pipeline's current stage. */
export async function currentRun(db: DatabaseReader, p: Pipeline): Promise<StageRun | null> {
  return await db
    .query("stageRuns")
    .withIndex("by_pipeline", (q) => q.eq("pipelineId", p._id).eq("stage", p.current))
    .order("desc")
    .first();
}

/** What a lock badge, a refusal or a list shows of a pipeline (no content). */
export async function summary(db: DatabaseReader, p: Pipeline, given?: StageRun | null): Promise<Record<string, Value>> {
  const sr = given !== undefined ? given : await currentRun(db, p);
  const stage = p.stages[p.current]!;
  const out: Record<string, Value> = {
    pipelineId: p._id,
    title: p.title,
    status: p.status,
    stage: p.current,
    stageName: stage.name,
    stages: p.stages.length,
    actor: stage.actor,
    approver: stage.approver,
    startedByHandle: p.startedByHandle,
  };
  if (p.flow) out.flow = p.flow;
  if (p.reason) out.reason = p.reason;
  if (sr !== null) {
    out.stageStatus = sr.status;
    out.attempt = sr.attempt;
    out.stageRunId = sr._id;
    if (sr.actorHandle) out.actorHandle = sr.actorHandle;
  }
  return out;
}

function doing(p: Pipeline, sr: StageRun | null): string {
  const stage = p.stages[p.current]!;
  const who = sr !== null && sr.actorHandle ? `@${sr.actorHandle}` : describe(stage.actor);
  if (p.status === "awaitingReview") return `stage ${stage.name} by ${who} awaits review by ${describe(stage.approver)}`;
  if (p.status === "failed") return `it stopped at stage ${stage.name} (${p.reason || "failed"})`;
  return `stage ${stage.name} is ${who}'s turn`;
}

/** The answer to anyone outside the pipeline who wants to write the artifact. */
export async function refuse(
  db: DatabaseReader,
  lock: Doc<"locks">,
  p: Pipeline,
  given?: StageRun | null,
  code: string = "LOCKED",
): Promise<never> {
  const sr = given !== undefined ? given : await currentRun(db, p);
  return fail(
    code,
    `The ${p.title} pipeline holds this artifact: ${doing(p, sr)}. An owner or @${p.startedByHandle}, who started it, can cancel it.`,
    { holder: lk.holderInfo(lock), queueLength: 0, pipeline: await summary(db, p, sr) },
  );
}

// ---------------------------------------------------------------------------- the lock

/** `locks:acquire` on an artifact a pipeline holds: the current stage run if the caller is its
 * actor and the stage is at work (and nobody else holds the lock); otherwise LOCKED naming the
 * pipeline. Nobody queues behind a pipeline. */
export async function gate(db: DatabaseReader, lock: Doc<"locks">, caller: Caller): Promise<StageRun> {
  const p = (await db.get(lock.pipelineId!))!;
  const sr = await currentRun(db, p);
  if (
    p.status === "running" &&
    sr !== null &&
    sr.status === "working" &&
    matches(sr.actor, caller.kind, caller.handle) &&
    (lock.holderId === undefined || lock.holderId === caller.actorId)
  ) {
    return sr;
  }
  return await refuse(db, lock, p, sr);
}

/** The stage's actor took the lock: the stage run records who and under which hold. */
export async function granted(ctx: MutationCtx, sr: StageRun, caller: Caller, epoch: number): Promise<void> {
  await ctx.db.patch(sr._id, { epoch, actorId: caller.actorId, actorHandle: caller.handle, actorKind: caller.kind });
}

/** A write into a stage's output (a proposal of kind "stage") is fenced like a draft delta: the
 * caller's live hold, whose token is the stage run's. null for other proposals. */
export async function fenceStage(
  ctx: GuardedMutationCtx,
  prop: Doc<"proposals">,
  token: number | undefined,
): Promise<StageRun | null> {
  const prov = (prop.provenance ?? {}) as Record<string, Value>;
  if (prov.kind !== "stage") return null;
  if (token === undefined) fail("INVALID_ARGUMENT", "a stage's output is written under the artifact's lock: pass its token");
  await lk.checkFence(ctx, ctx.caller.actorId, prop.artifactId, token);
  const sr = await getIn(ctx.db, "stageRuns", String(prov.stageRunId));
  if (sr === null || sr.status !== "working" || sr.epoch !== token) {
    fail("STAGE_OVER", "this stage attempt is no longer at work", { status: sr !== null ? sr.status : null });
  }
  return sr;
}

/** The pipeline is over: the artifact's lock row forgets it (and a queue could move on). */
export async function releaseArtifact(ctx: MutationCtx, p: Pipeline): Promise<void> {
  let lock = await lk.lockOf(ctx.db, p.artifactId);
  if (lock.pipelineId !== p._id) return;
  await ctx.db.patch(lock._id, { pipelineId: undefined });
  lock = (await ctx.db.get(lock._id))!;
  if (lock.holderId === undefined) await lk.grantNext(ctx, lock);
}

// ---------------------------------------------------------------------------- stage runs

async function slugOf(db: DatabaseReader, p: Pipeline): Promise<string> {
  const art = await db.get(p.artifactId);
  return art !== null ? `#${art.slug}` : "the artifact";
}

/** A new attempt of stage `stage` on `inputVersion`, at work at once: an agent actor's run is
 * queued (and its output proposal created); human actors are told it is their turn (after a
 * rejection, the human who made the previous attempt is told why). */
export async function openStage(
  ctx: GuardedMutationCtx,
  p: Pipeline,
  stage: number,
  attempt: number,
  inputVersion: number,
  previous: StageRun | null = null,
): Promise<Id<"stageRuns">> {
  const spec = p.stages[stage]!;
  const now = Date.now();
  const srId = await ctx.db.insert("stageRuns", {
    spaceId: p.spaceId,
    artifactId: p.artifactId,
    pipelineId: p._id,
    stage,
    stageName: spec.name,
    attempt,
    actor: spec.actor,
    inputVersion,
    status: "working",
    startedAt: now,
  });
  const where = `stage ${spec.name} of the ${p.title} pipeline on ${await slugOf(ctx.db, p)}`;
  if (isAgentRole(spec.actor)) {
    const agent = (await membersFor(ctx.db, p.spaceId, spec.actor))[0];
    if (agent === undefined) {
      await ctx.db.patch(srId, { status: "failed", error: `@${spec.actor} is no longer an agent of this space` });
      await failPipeline(ctx, (await ctx.db.get(p._id))!, `@${spec.actor} is no longer an agent of this space`);
      return srId;
    }
    const propId = await ctx.db.insert("proposals", {
      spaceId: p.spaceId,
      artifactId: p.artifactId,
      authorId: agent.actorId,
      authorKind: "agent",
      authorHandle: agent.handle,
      baseVersion: inputVersion,
      content: "",
      status: "queued",
      updatedAt: now,
      provenance: { kind: "stage", pipelineId: p._id, stageRunId: srId, stage, stageName: spec.name, attempt },
    });
    const runId = await insertRun(ctx, p.spaceId, agent.actorId, "stage", { pipelineId: p._id, stageRunId: srId }, {
      artifactId: p.artifactId,
      maxAttempts: 1,
    });
    await ctx.db.patch(propId, { runId });
    await ctx.db.patch(srId, {
      proposalId: propId,
      runId,
      actorId: agent.actorId,
      actorHandle: agent.handle,
      actorKind: "agent",
    });
  } else if (previous !== null && previous.actorId !== undefined && previous.status === "rejected") {
    await notify(
      ctx,
      previous.actorId,
      p.spaceId,
      "stageRejected",
      cpSlice(`Your stage ${spec.name} was rejected: ${previous.reason ?? ""}`, 0, 300),
      { artifactId: p.artifactId, data: { pipelineId: p._id, stageRunId: srId } },
    );
  } else {
    for (const m of await membersFor(ctx.db, p.spaceId, spec.actor)) {
      await notify(ctx, m.actorId, p.spaceId, "stageTurn", `Your turn: ${where} (attempt ${attempt})`, {
        artifactId: p.artifactId,
        data: { pipelineId: p._id, stageRunId: srId },
      });
    }
  }
  return srId;
}

/** The output is in: `auto` approves at once, an agent approver's review run is queued, human
 * approvers are told their review is needed. */
export async function requestReview(ctx: GuardedMutationCtx, p: Pipeline, sr: StageRun): Promise<void> {
  const spec = p.stages[sr.stage]!;
  if (spec.approver === AUTO) {
    await approve(ctx, p, sr, { handle: AUTO, kind: AUTO }, null);
    return;
  }
  if (isAgentRole(spec.approver)) {
    const agent = (await membersFor(ctx.db, p.spaceId, spec.approver))[0];
    if (agent === undefined) {
      await failPipeline(ctx, p, `@${spec.approver} is no longer an agent of this space`);
      return;
    }
    const runId = await insertRun(ctx, p.spaceId, agent.actorId, "review", { pipelineId: p._id, stageRunId: sr._id }, {
      artifactId: p.artifactId,
      maxAttempts: 1,
    });
    await ctx.db.patch(sr._id, { reviewRunId: runId });
    return;
  }
  for (const m of await membersFor(ctx.db, p.spaceId, spec.approver)) {
    await notify(
      ctx,
      m.actorId,
      p.spaceId,
      "reviewNeeded",
      `Your review is needed: stage ${spec.name} by @${sr.actorHandle ?? "?"} of the ${p.title} pipeline on ${await slugOf(ctx.db, p)}`,
      { artifactId: p.artifactId, data: { pipelineId: p._id, stageRunId: sr._id } },
    );
  }
}

// ---------------------------------------------------------------------------- decisions

/** Approved: a content output becomes the next version (the pipeline's fenced commit, recording
 * pipeline, stage and approver), notes stay on record for the next stage; then the next stage
 * starts, or the pipeline is done and gives the artifact back. */
export async function approve(
  ctx: GuardedMutationCtx,
  p: Pipeline,
  sr: StageRun,
  reviewer: Reviewer,
  reason: string | null,
): Promise<void> {
  const spec = p.stages[sr.stage]!;
  await ctx.db.patch(sr._id, { status: "approved", reviewer, decidedAt: Date.now(), ...(reason ? { reason } : {}) });
  if (spec.output === "content") {
    const prop = (await ctx.db.get(sr.proposalId!))!;
    const provenance: Record<string, Value> = {
      kind: "pipeline",
      pipelineId: p._id,
      title: p.title,
      flow: p.flow ?? null,
      stage: sr.stage,
      stageName: spec.name,
      stageRunId: sr._id,
      attempt: sr.attempt,
      actor: sr.actorHandle ?? null,
      approver: reviewer.handle,
      approverKind: reviewer.kind,
      inputVersion: sr.inputVersion,
    };
    const by = reviewer.kind === AUTO ? "auto" : "@" + reviewer.handle;
    const done = (await commitVersion(
      ctx,
      (await ctx.db.get(p.artifactId))!,
      { message: `${p.title}: stage ${spec.name} by @${sr.actorHandle}, approved by ${by}` },
      "pipelines:approve",
      prop.content,
      sr.actorKind ?? "agent",
      { provenance, pipeline: p, authorId: sr.actorId, epoch: sr.epoch },
    )) as { version: number };
    await ctx.db.patch(sr._id, { outputVersion: done.version });
  }
  await audit(
    ctx,
    p.spaceId,
    "pipeline.approved",
    { pipelineId: p._id, stage: spec.name, attempt: sr.attempt, by: reviewer.handle },
    { artifactId: p.artifactId, ...(reviewer.actorId !== undefined ? { actorId: reviewer.actorId } : {}) },
  );
  const next = sr.stage + 1;
  if (next < p.stages.length) {
    await ctx.db.patch(p._id, { current: next, status: "running", updatedAt: Date.now() });
    await openStage(ctx, (await ctx.db.get(p._id))!, next, 1, (await ctx.db.get(p.artifactId))!.version);
  } else {
    await finish(ctx, p, "done");
  }
}

/** Rejected with a reason: the stage goes back to its actor for another attempt on the same
 * input (its previous output and every reason in its context), unless it used its attempts:
 * then the pipeline stops and says so (it keeps the artifact: retry or cancel). */
export async function reject(
  ctx: GuardedMutationCtx,
  p: Pipeline,
  sr: StageRun,
  reviewer: Reviewer,
  reason: string,
): Promise<void> {
  const spec = p.stages[sr.stage]!;
  await ctx.db.patch(sr._id, { status: "rejected", reviewer, reason, decidedAt: Date.now() });
  await audit(
    ctx,
    p.spaceId,
    "pipeline.rejected",
    { pipelineId: p._id, stage: spec.name, attempt: sr.attempt, by: reviewer.handle, reason },
    { artifactId: p.artifactId, ...(reviewer.actorId !== undefined ? { actorId: reviewer.actorId } : {}) },
  );
  if (sr.attempt >= p.maxAttempts) {
    await failPipeline(
      ctx,
      p,
      `stage ${spec.name} was rejected ${pyG(sr.attempt)} times, the maximum (last reason: ${reason})`,
    );
    if (sr.actorId !== undefined && sr.actorKind === "human") {
      await notify(ctx, sr.actorId, p.spaceId, "stageRejected", cpSlice(`Your stage ${spec.name} was rejected: ${reason}`, 0, 300), {
        artifactId: p.artifactId,
        data: { pipelineId: p._id, stageRunId: sr._id },
      });
    }
    return;
  }
  await ctx.db.patch(p._id, { status: "running", updatedAt: Date.now() });
  await openStage(ctx, (await ctx.db.get(p._id))!, sr.stage, sr.attempt + 1, sr.inputVersion, (await ctx.db.get(sr._id))!);
}

/** The pipeline stops where it is (it keeps the artifact: `pipelines:retry` resumes on the same
 * input, `pipelines:cancel` gives it back); whoever started it is told why. */
export async function failPipeline(ctx: MutationCtx, p: Pipeline, reason: string): Promise<void> {
  await ctx.db.patch(p._id, { status: "failed", reason: cpSlice(reason, 0, 1000), updatedAt: Date.now() });
  await notify(
    ctx,
    p.startedBy,
    p.spaceId,
    "pipelineFailed",
    cpSlice(`The ${p.title} pipeline on ${await slugOf(ctx.db, p)} stopped: ${reason}`, 0, 300),
    { artifactId: p.artifactId, data: { pipelineId: p._id } },
  );
  await audit(ctx, p.spaceId, "pipeline.failed", { pipelineId: p._id, reason }, { artifactId: p.artifactId });
}

/** Done or cancelled: the record is closed and the artifact is given back. */
export async function finish(
  ctx: MutationCtx,
  p: Pipeline,
  status: "done" | "cancelled",
  reason: string | null = null,
  by: string | null = null,
): Promise<void> {
  const now = Date.now();
  await ctx.db.patch(p._id, {
    status,
    finishedAt: now,
    updatedAt: now,
    ...(reason ? { reason } : {}),
    ...(by ? { endedByHandle: by } : {}),
  });
  await releaseArtifact(ctx, p);
  if (status === "done") {
    await notify(ctx, p.startedBy, p.spaceId, "pipelineDone", `The ${p.title} pipeline on ${await slugOf(ctx.db, p)} is done.`, {
      artifactId: p.artifactId,
      data: { pipelineId: p._id },
    });
  }
  await audit(ctx, p.spaceId, `pipeline.${status}`, { pipelineId: p._id, reason, by }, { artifactId: p.artifactId });
}

/** A `stage` or `review` run ended (`runs.finishRun`). If its stage had not moved on (the agent
 * died, failed, was cancelled, or finished without handing anything in), the stage fails with
 * the reason and the pipeline stops, keeping the output written so far. */
export async function runEnded(ctx: MutationCtx, run: Doc<"runs">, error: string | undefined): Promise<void> {
  if (!AGENT_RUN_KINDS.includes(run.kind)) return;
  const input = (run.input ?? {}) as Record<string, Value>;
  const p = await getIn(ctx.db, "pipelines", String(input.pipelineId ?? ""));
  const sr = await getIn(ctx.db, "stageRuns", String(input.stageRunId ?? ""));
  if (p === null || sr === null || !["running", "awaitingReview"].includes(p.status)) return;
  const agent = await ctx.db.get(run.agentId);
  const who = agent !== null ? `@${agent.handle}` : "the agent";
  const why =
    error || (run.kind === "stage" ? "it finished without handing in its output" : "it finished without a verdict");
  if (run.kind === "stage" && sr.runId === run._id && sr.status === "working") {
    await ctx.db.patch(sr._id, { status: "failed", error: why });
    await failPipeline(ctx, p, `stage ${sr.stageName} failed: ${why}`);
  } else if (run.kind === "review" && sr.reviewRunId === run._id && sr.status === "awaitingReview") {
    await ctx.db.patch(sr._id, { error: `the review by ${who} failed: ${why}` });
    await failPipeline(ctx, p, `the review of stage ${sr.stageName} by ${who} failed: ${why}`);
  }
}
