// The lock protocol's state transitions (DESIGN 2.4), shared by locks, artifacts and drafts: the
// twin of backend/model/_lockcore.py.
//
// Every transition runs inside the calling mutation's transaction, so "fence check, new version,
// release, grant to the queue head, audit" is one atomic step. Invariants kept here:
// - `locks.epoch` (the fencing token) only grows: each grant is `epoch + 1`.
// - At most one holder: a grant happens only on a free lock, and `lockHolds` has one row per
//   epoch with how it ended.
// - A write under the lock is accepted only if the caller is the holder, its token equals the
//   current epoch and `now < expiresAt` (an expired lease the sweeper has not reached yet still
//   rejects the write).
// - Expiry is written by the scheduled `locks:expire` (or lazily by the next acquire), never
//   computed by a query: queries return `expiresAt` and clients show the countdown.
import type { Value } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader, MutationCtx } from "./_generated/server";
import { ROLE_RANK, membership } from "./_auth";
import { fail, invalid } from "./_errors";
import * as live from "./_live";
import { summary as pipelineSummary } from "./_pipeline";
import { audit, notify, pyRepr } from "./_util";

export const DEFAULT_TTL_MS = 30_000;
export const MIN_TTL_MS = 200;
export const MAX_TTL_MS = 10 * 60_000;
export const IDEMPOTENCY_KEEP_MS = 24 * 3600_000;

export type Lock = Doc<"locks">;
export type Holder = { actorId: Id<"actors">; handle: string; kind: "human" | "agent"; since: number; expiresAt: number };
export type Granted = { status: "granted"; token: number; expiresAt: number; since: number; ttlMs: number };

export function ttlOf(args: { ttlMs?: number }, fallback: number = DEFAULT_TTL_MS): number {
  const ttl = args.ttlMs ?? fallback;
  if (!(MIN_TTL_MS <= ttl && ttl <= MAX_TTL_MS)) {
    invalid(`ttlMs must be between ${MIN_TTL_MS} and ${MAX_TTL_MS}`, { ttlMs: ttl });
  }
  return ttl;
}

/** A draft delta renews the lease only when that gains at least this much: a stream of deltas
 * every 250 ms then rewrites the lock row every few seconds, not 4 times a second. */
export function renewSlackMs(ttl: number): number {
  return Math.min(ttl / 3, 5_000);
}

export async function lockOf(db: DatabaseReader, artifactId: Id<"artifacts">): Promise<Lock> {
  const lock = await db
    .query("locks")
    .withIndex("by_artifact", (q) => q.eq("artifactId", artifactId))
    .unique();
  if (lock === null) {
    // created with the artifact; missing means a corrupted space
    fail("NOT_FOUND", `artifact ${artifactId} has no lock row`, { what: "lock", id: artifactId });
  }
  return lock;
}

export async function waiters(db: DatabaseReader, artifactId: Id<"artifacts">): Promise<Doc<"lockWaiters">[]> {
  return await db
    .query("lockWaiters")
    .withIndex("by_artifact", (q) => q.eq("artifactId", artifactId))
    .collect();
}

export async function waiterOf(
  db: DatabaseReader,
  artifactId: Id<"artifacts">,
  actorId: Id<"actors">,
): Promise<Doc<"lockWaiters"> | null> {
  return await db
    .query("lockWaiters")
    .withIndex("by_artifact_actor", (q) => q.eq("artifactId", artifactId).eq("actorId", actorId))
    .first();
}

export async function holdOf(
  db: DatabaseReader,
  artifactId: Id<"artifacts">,
  epoch: number,
): Promise<Doc<"lockHolds"> | null> {
  return await db
    .query("lockHolds")
    .withIndex("by_artifact_epoch", (q) => q.eq("artifactId", artifactId).eq("epoch", epoch))
    .unique();
}

/** Who holds the lock, as everybody may see it (never the token). */
export function holderInfo(lock: Lock): Holder | null {
  if (lock.holderId === undefined) return null;
  return {
    actorId: lock.holderId,
    handle: lock.holderHandle!,
    kind: lock.holderKind!,
    since: lock.since!,
    expiresAt: lock.expiresAt!,
  };
}

/** The pipeline holding the artifact (title, stage, status, who is at work), or null. */
export async function pipelineInfo(db: DatabaseReader, lock: Lock) {
  if (lock.pipelineId === undefined) return null;
  const p = await db.get(lock.pipelineId);
  return p !== null ? await pipelineSummary(db, p) : null;
}

export async function lockState(db: DatabaseReader, lock: Lock) {
  const queue = await waiters(db, lock.artifactId);
  const holder = holderInfo(lock);
  return {
    held: holder !== null,
    holder,
    queueLength: queue.length,
    queue: queue.map((w, i) => ({
      actorId: w.actorId,
      handle: w.actorHandle,
      kind: w.actorKind,
      since: w.since,
      position: i + 1,
    })),
    pipeline: await pipelineInfo(db, lock),
  };
}

// --- idempotency keys -------------------------------------------------------------------------

/** The record of a previous call with this key, or null. A key reused for another function or
 * artifact is a client bug, reported rather than guessed at. */
export async function recall(
  db: DatabaseReader,
  actorId: Id<"actors">,
  key: string | undefined,
  fn: string,
  artifactId: Id<"artifacts">,
): Promise<Doc<"idempotencyKeys"> | null> {
  if (key === undefined) return null;
  const rec = await db
    .query("idempotencyKeys")
    .withIndex("by_actor_key", (q) => q.eq("actorId", actorId).eq("key", key))
    .unique();
  if (rec !== null && (rec.fn !== fn || rec.artifactId !== artifactId)) {
    invalid(`idempotency key ${pyRepr(key)} was already used for ${rec.fn} on another artifact`, {
      idempotencyKey: key,
    });
  }
  return rec;
}

export async function remember(
  ctx: MutationCtx,
  actorId: Id<"actors">,
  key: string | undefined,
  fn: string,
  artifactId: Id<"artifacts">,
  result: Value,
): Promise<void> {
  if (key === undefined) return;
  const expires = Date.now() + IDEMPOTENCY_KEEP_MS;
  const recId = await ctx.db.insert("idempotencyKeys", { actorId, key, fn, artifactId, result, expiresAt: expires });
  await ctx.scheduler.runAt(expires, internal.locks.forgetKey, { keyId: recId });
}

export async function updateRemembered(
  ctx: MutationCtx,
  actorId: Id<"actors">,
  key: string | undefined,
  result: Value,
): Promise<void> {
  if (key === undefined) return;
  const rec = await ctx.db
    .query("idempotencyKeys")
    .withIndex("by_actor_key", (q) => q.eq("actorId", actorId).eq("key", key))
    .unique();
  if (rec !== null) await ctx.db.patch(rec._id, { result });
}

// --- transitions ------------------------------------------------------------------------------

async function scheduleExpiry(
  ctx: MutationCtx,
  lockId: Id<"locks">,
  artifactId: Id<"artifacts">,
  epoch: number,
  expiresAt: number,
  oldJob: string | undefined,
): Promise<void> {
  if (oldJob) await ctx.scheduler.cancel(oldJob as Id<"_scheduled_functions">);
  const job = await ctx.scheduler.runAt(expiresAt, internal.locks.expire, { artifactId, epoch });
  await ctx.db.patch(lockId, { expiryJobId: job });
}

/** Give a free lock to `actorId`: the next epoch, a fresh lease, a hold row, an audit row. */
export async function grant(
  ctx: MutationCtx,
  lock: Lock,
  actorId: Id<"actors">,
  kind: "human" | "agent",
  handle: string,
  ttl: number,
  via: "acquire" | "queue",
): Promise<Granted> {
  if (lock.holderId !== undefined) throw new Error("grant on a held lock");
  const now = Date.now();
  const epoch = lock.epoch + 1;
  const expires = now + ttl;
  await ctx.db.patch(lock._id, {
    epoch,
    holderId: actorId,
    holderKind: kind,
    holderHandle: handle,
    since: now,
    expiresAt: expires,
    ttlMs: ttl,
  });
  await scheduleExpiry(ctx, lock._id, lock.artifactId, epoch, expires, lock.expiryJobId);
  await ctx.db.insert("lockHolds", {
    artifactId: lock.artifactId,
    spaceId: lock.spaceId,
    epoch,
    holderId: actorId,
    holderKind: kind,
    holderHandle: handle,
    grantedAt: now,
    via,
  });
  await audit(
    ctx,
    lock.spaceId,
    "lock.granted",
    { epoch, holderId: actorId, holderHandle: handle, holderKind: kind, via, expiresAt: expires },
    { artifactId: lock.artifactId, actorId },
  );
  return { status: "granted", token: epoch, expiresAt: expires, since: now, ttlMs: ttl };
}

export async function extendLease(ctx: MutationCtx, lock: Lock, ttl: number): Promise<number> {
  const expires = Date.now() + ttl;
  await ctx.db.patch(lock._id, { expiresAt: expires, ttlMs: ttl });
  await scheduleExpiry(ctx, lock._id, lock.artifactId, lock.epoch, expires, lock.expiryJobId);
  return expires;
}

type HoldEnd = "saved" | "released" | "expired" | "forceReleased" | "submitted";

/** Free the lock. The holder's live draft: deleted on save (the version has it) and on a plain
 * release (unless `keepDraft`); kept as `orphaned` when the hold expired or was force-released,
 * and the holder is told. */
export async function endHold(
  ctx: MutationCtx,
  lock: Lock,
  reason: HoldEnd,
  opts: { by?: Doc<"actors"> | null; forceReason?: string; keepDraft?: boolean } = {},
): Promise<Lock> {
  const now = Date.now();
  const by = opts.by ?? null;
  const { artifactId, epoch } = lock;
  const holderId = lock.holderId!;
  if (lock.expiryJobId) await ctx.scheduler.cancel(lock.expiryJobId as Id<"_scheduled_functions">);
  await ctx.db.patch(lock._id, {
    holderId: undefined,
    holderKind: undefined,
    holderHandle: undefined,
    since: undefined,
    expiresAt: undefined,
    ttlMs: undefined,
    expiryJobId: undefined,
  });
  const hold = await holdOf(ctx.db, artifactId, epoch);
  if (hold !== null) {
    await ctx.db.patch(hold._id, {
      endedAt: now,
      endReason: reason,
      ...(by !== null ? { endedBy: by._id, endedByHandle: by.handle } : {}),
      ...(opts.forceReason !== undefined ? { forceReason: opts.forceReason } : {}),
    });
  }
  await live.endDraft(ctx, artifactId, epoch); // the hold's live tail ends with it
  const draft = await ctx.db
    .query("drafts")
    .withIndex("by_artifact_epoch", (q) => q.eq("artifactId", artifactId).eq("epoch", epoch))
    .unique();
  if (draft !== null && draft.status === "live") {
    if (reason === "expired" || reason === "forceReleased") {
      await ctx.db.patch(draft._id, { status: "orphaned", updatedAt: now });
    } else if (reason === "released" && opts.keepDraft) {
      await ctx.db.patch(draft._id, { status: "released", updatedAt: now });
    } else {
      await ctx.db.delete(draft._id);
    }
  }
  const data: Record<string, Value> = { epoch, holderId, holderHandle: lock.holderHandle!, reason };
  if (by !== null) {
    data.byId = by._id;
    data.byHandle = by.handle;
  }
  if (opts.forceReason !== undefined) data.forceReason = opts.forceReason;
  await audit(ctx, lock.spaceId, "lock.released", data, {
    artifactId,
    ...(by !== null ? { actorId: by._id } : {}),
  });
  if (reason === "expired" || reason === "forceReleased") {
    const why = reason === "expired" ? "your lease expired" : `@${by !== null ? by.handle : "?"} force-released it: ${opts.forceReason}`;
    await notify(ctx, holderId, lock.spaceId, "lockLost", `You lost the lock on this artifact (${why}); your draft is kept.`, {
      artifactId,
      data: {
        epoch,
        reason,
        forceReason: opts.forceReason ?? null,
        byHandle: by !== null ? by.handle : null,
        draftKept: draft !== null,
      },
    });
  }
  return (await ctx.db.get(lock._id))!;
}

/** Hand a free lock to the head of the FIFO queue (skipping waiters who lost their editor role
 * meanwhile). Returns the grant, with the new holder, or null if nobody waits. */
export async function grantNext(
  ctx: MutationCtx,
  lock: Lock,
): Promise<(Granted & { holder: { actorId: Id<"actors">; handle: string; kind: "human" | "agent" } }) | null> {
  for (const waiter of await waiters(ctx.db, lock.artifactId)) {
    await ctx.db.delete(waiter._id);
    const member = await membership(ctx.db, lock.spaceId, waiter.actorId);
    if (member === null || ROLE_RANK[member.role] < ROLE_RANK.editor) {
      await audit(
        ctx,
        lock.spaceId,
        "lock.left",
        { actorId: waiter.actorId, handle: waiter.actorHandle, why: "no longer an editor" },
        { artifactId: lock.artifactId, actorId: waiter.actorId },
      );
      await updateRemembered(ctx, waiter.actorId, waiter.idempotencyKey, { status: "cancelled" });
      continue;
    }
    const result = await grant(ctx, lock, waiter.actorId, waiter.actorKind, waiter.actorHandle, waiter.ttlMs, "queue");
    await updateRemembered(ctx, waiter.actorId, waiter.idempotencyKey, result);
    await notify(ctx, waiter.actorId, lock.spaceId, "lockGranted", "The lock you waited for is yours.", {
      artifactId: lock.artifactId,
      data: { expiresAt: result.expiresAt },
    });
    return { ...result, holder: { actorId: waiter.actorId, handle: waiter.actorHandle, kind: waiter.actorKind } };
  }
  return null;
}

/** Lazy sweep: a lease that ended but that the scheduled sweeper has not reached yet is expired
 * now (in this mutation) and the lock goes to the queue head. */
export async function expireIfDue(ctx: MutationCtx, lock: Lock): Promise<Lock> {
  if (lock.holderId !== undefined && lock.expiresAt! <= Date.now()) {
    lock = await endHold(ctx, lock, "expired");
    await grantNext(ctx, lock);
    lock = (await ctx.db.get(lock._id))!;
  }
  return lock;
}

const REASON_TEXT: Record<string, string> = {
  expired: "your lease expired",
  saved: "you saved and released it",
  released: "you released it",
  submitted: "you handed in the stage output",
};

/** The lock row if `token` is the caller's live hold; otherwise a STALE_TOKEN / NOT_HOLDER error
 * that says why the lock was lost. */
export async function checkFence(
  ctx: MutationCtx,
  actorId: Id<"actors">,
  artifactId: Id<"artifacts">,
  token: number,
): Promise<Lock> {
  const lock = await lockOf(ctx.db, artifactId);
  if (lock.holderId === actorId && lock.epoch === token) {
    if (lock.expiresAt! > Date.now()) return lock;
    fail("STALE_TOKEN", "your lease expired: the lock is no longer yours", {
      reason: "expired",
      token,
      at: lock.expiresAt!,
      currentHolder: null,
      draftKept: true,
    });
  }
  const hold = await holdOf(ctx.db, artifactId, token);
  const current = holderInfo(lock);
  if (hold === null) {
    if (token > lock.epoch) fail("INVALID_TOKEN", "this lock token was never issued", { token });
    fail("STALE_TOKEN", "the lock was lost: a newer holder superseded this token", {
      reason: "superseded",
      token,
      currentHolder: current,
    });
  }
  if (hold.holderId !== actorId) {
    fail("NOT_HOLDER", `this token belongs to @${hold.holderHandle}, not to you`, { token, currentHolder: current });
  }
  const reason = hold.endReason ?? "superseded";
  const by = hold.endedByHandle ?? null;
  const text = reason === "forceReleased" ? `@${by} force-released it` : (REASON_TEXT[reason] ?? reason);
  fail("STALE_TOKEN", `the lock was lost: ${text}`, {
    reason,
    token,
    at: hold.endedAt ?? null,
    byHandle: by,
    currentHolder: current,
    ...(hold.forceReason !== undefined ? { forceReason: hold.forceReason } : {}),
  });
}
