// A new version of an artifact under its lock: the one transition every content change goes
// through (a save, a restore, a picked variation, an approved pipeline stage). Twin of
// backend/model/_versions.py.
//
// Fence check + new version + release + grant to the queue head + audit, in the calling
// mutation's transaction. A retry with the same idempotency key returns the first result.
//
// While a pipeline holds the artifact (`locks.pipelineId`), a save under the lock is refused
// (`PIPELINE_HOLDS`: the stage's actor hands its output in for review instead); the approval of
// a stage commits in pipeline mode (see `commitVersion`).
import type { Value } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { GuardedMutationCtx } from "./_auth";
import { invalid } from "./_errors";
import * as lk from "./_lockcore";
import { refuse } from "./_pipeline"; // (it imports this module: used at call time only)
import { audit, cpLen } from "./_util";

export const MAX_CONTENT = 2_000_000;

export function checkContent(content: string): void {
  const size = cpLen(content);
  if (size > MAX_CONTENT) invalid(`content is larger than ${MAX_CONTENT} characters`, { size });
}

/** What a commit needs of its caller's call (a pipeline's commit has no token). */
export type CommitArgs = { token?: number; message?: string; idempotencyKey?: string };

/** Returns `{version, versionId, grantedTo}`. In pipeline mode (`opts.pipeline`) the lock row
 * must name that pipeline and have no holder; the version's author is the stage's actor
 * (`opts.authorId`) and its `lockEpoch` the hold the output was written under (`opts.epoch`);
 * the lock stays with the pipeline. Otherwise a save while a pipeline holds the artifact is
 * `PIPELINE_HOLDS`. */
export async function commitVersion(
  ctx: GuardedMutationCtx,
  artifact: Doc<"artifacts">,
  args: CommitArgs,
  fn: string,
  content: string,
  source: "human" | "agent" | "merge",
  opts: {
    restoredFrom?: number;
    provenance?: Record<string, Value>;
    pipeline?: Doc<"pipelines">;
    authorId?: Id<"actors">;
    epoch?: number;
  } = {},
): Promise<Value> {
  const caller = ctx.caller;
  const key = args.idempotencyKey;
  const rec = await lk.recall(ctx.db, caller.actorId, key, fn, artifact._id);
  if (rec !== null) return rec.result; // a retry: the first result, applied once
  let lock: lk.Lock;
  let author: Id<"actors">;
  let lockEpoch: number | undefined;
  if (opts.pipeline === undefined) {
    lock = await lk.checkFence(ctx, caller.actorId, artifact._id, args.token!);
    if (lock.pipelineId !== undefined) {
      await refuse(ctx.db, lock, (await ctx.db.get(lock.pipelineId))!, undefined, "PIPELINE_HOLDS");
    }
    author = caller.actorId;
    lockEpoch = lock.epoch;
  } else {
    lock = await lk.lockOf(ctx.db, artifact._id);
    if (lock.pipelineId !== opts.pipeline._id || lock.holderId !== undefined) {
      throw new Error("a pipeline commits only while it holds the artifact and nobody holds the lock");
    }
    author = opts.authorId ?? caller.actorId;
    lockEpoch = opts.epoch;
  }
  checkContent(content);
  const now = Date.now();
  const number = artifact.version + 1;
  const versionId = await ctx.db.insert("versions", {
    artifactId: artifact._id,
    spaceId: artifact.spaceId,
    version: number,
    content,
    authorId: author,
    source,
    parentVersion: artifact.version,
    at: now,
    ...(lockEpoch !== undefined ? { lockEpoch } : {}),
    ...(args.message ? { message: args.message } : {}),
    ...(opts.restoredFrom !== undefined ? { restoredFrom: opts.restoredFrom } : {}),
    ...(opts.provenance !== undefined ? { provenance: opts.provenance } : {}),
  });
  await ctx.db.patch(artifact._id, { content, version: number, updatedBy: author, updatedAt: now });
  await audit(
    ctx,
    artifact.spaceId,
    "artifact.saved",
    {
      version: number,
      epoch: lockEpoch ?? null,
      source,
      restoredFrom: opts.restoredFrom ?? null,
      provenance: opts.provenance ?? null,
    },
    { artifactId: artifact._id, actorId: author },
  );
  let granted = null;
  if (opts.pipeline === undefined) {
    lock = await lk.endHold(ctx, lock, "saved", { by: caller.actor });
    granted = await lk.grantNext(ctx, lock);
  }
  const result = { version: number, versionId, grantedTo: granted !== null ? granted.holder : null };
  await lk.remember(ctx, caller.actorId, key, fn, artifact._id, result);
  return result;
}
