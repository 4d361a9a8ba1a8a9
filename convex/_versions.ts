// A new version of an artifact under its lock: the one transition every content change goes
// through (a save, a restore, a picked variation, an approved pipeline stage). Twin of
// backend/model/_versions.py.
//
// Fence check + new version + release + grant to the queue head + audit, in the calling
// mutation's transaction. A retry with the same idempotency key returns the first result.
import type { Value } from "convex/values";
import type { Doc } from "./_generated/dataModel";
import type { GuardedMutationCtx } from "./_auth";
import { invalid } from "./_errors";
import * as lk from "./_lockcore";
import { audit, cpLen } from "./_util";

export const MAX_CONTENT = 2_000_000;

export function checkContent(content: string): void {
  const size = cpLen(content);
  if (size > MAX_CONTENT) invalid(`content is larger than ${MAX_CONTENT} characters`, { size });
}

/** What a commit needs of its caller's call. */
export type CommitArgs = { token: number; message?: string; idempotencyKey?: string };

/** Returns `{version, versionId, grantedTo}`. */
export async function commitVersion(
  ctx: GuardedMutationCtx,
  artifact: Doc<"artifacts">,
  args: CommitArgs,
  fn: string,
  content: string,
  source: "human" | "agent" | "merge",
  opts: { restoredFrom?: number; provenance?: Record<string, Value> } = {},
): Promise<Value> {
  const caller = ctx.caller;
  const key = args.idempotencyKey;
  const rec = await lk.recall(ctx.db, caller.actorId, key, fn, artifact._id);
  if (rec !== null) return rec.result; // a retry: the first result, applied once
  let lock = await lk.checkFence(ctx, caller.actorId, artifact._id, args.token);
  checkContent(content);
  const now = Date.now();
  const number = artifact.version + 1;
  const versionId = await ctx.db.insert("versions", {
    artifactId: artifact._id,
    spaceId: artifact.spaceId,
    version: number,
    content,
    authorId: caller.actorId,
    source,
    parentVersion: artifact.version,
    lockEpoch: lock.epoch,
    at: now,
    ...(args.message ? { message: args.message } : {}),
    ...(opts.restoredFrom !== undefined ? { restoredFrom: opts.restoredFrom } : {}),
    ...(opts.provenance !== undefined ? { provenance: opts.provenance } : {}),
  });
  await ctx.db.patch(artifact._id, { content, version: number, updatedBy: caller.actorId, updatedAt: now });
  await audit(
    ctx,
    artifact.spaceId,
    "artifact.saved",
    {
      version: number,
      epoch: lock.epoch,
      source,
      restoredFrom: opts.restoredFrom ?? null,
      provenance: opts.provenance ?? null,
    },
    { artifactId: artifact._id, actorId: caller.actorId },
  );
  lock = await lk.endHold(ctx, lock, "saved", { by: caller.actor });
  const granted = await lk.grantNext(ctx, lock);
  const result = { version: number, versionId, grantedTo: granted !== null ? granted.holder : null };
  await lk.remember(ctx, caller.actorId, key, fn, artifact._id, result);
  return result;
}
