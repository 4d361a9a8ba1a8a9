// Pessimistic, fenced, leased artifact locks (DESIGN 2.4); the transitions are in _lockcore.
// Twin of backend/model/locks.py.
//
// `acquire` answers either `{status: "granted", token, expiresAt, since, ttlMs}` or
// `{status: "queued", position, queueLength, holder}`: a queued caller is granted the lock when
// it reaches the head of the FIFO queue (a `lockGranted` notification; `artifacts:get` shows it
// as holder), and then gets its token by calling `acquire` again (a holder's acquire returns its
// current token) or by retrying with the same idempotency key.
import { v, type Value } from "convex/values";
import type { Id } from "./_generated/dataModel";
import { internalMutation, type DatabaseReader } from "./_generated/server";
import { mutation, query } from "./_auth";
import { fail, invalid } from "./_errors";
import * as lk from "./_lockcore";
import * as pl from "./_pipeline";
import { audit, pyStrip } from "./_util";

async function queued(db: DatabaseReader, lock: lk.Lock, actorId: Id<"actors">) {
  const queue = await lk.waiters(db, lock.artifactId);
  const position = queue.findIndex((w) => w.actorId === actorId) + 1;
  return { status: "queued" as const, position, queueLength: queue.length, holder: lk.holderInfo(lock) };
}

export const acquire = mutation({
  args: {
    artifactId: v.id("artifacts"),
    ttlMs: v.optional(v.number()),
    idempotencyKey: v.optional(v.string()),
    wait: v.optional(v.boolean()),
  },
  policy: "editor",
  scope: "artifact",
  // Take the lock, or join the FIFO queue (`wait: false`: fail with LOCKED instead).
  handler: async (ctx, args): Promise<Value> => {
    const caller = ctx.caller;
    const key = args.idempotencyKey;
    const artifactId = args.artifactId;
    const ttl = lk.ttlOf(args);
    const rec = await lk.recall(ctx.db, caller.actorId, key, "locks:acquire", artifactId);
    if (rec !== null) {
      // A retry. "granted" (possibly upgraded from "queued" when the queue reached us) is
      // returned as first given, even if that hold has ended since: using its token then fails
      // with the reason. A still-waiting request reports its current position.
      const result = rec.result as { status: string };
      if (result.status === "queued") {
        const lock = await lk.lockOf(ctx.db, artifactId);
        if ((await lk.waiterOf(ctx.db, artifactId, caller.actorId)) !== null) {
          return await queued(ctx.db, lock, caller.actorId);
        }
      }
      return rec.result;
    }
    let lock = await lk.expireIfDue(ctx, await lk.lockOf(ctx.db, artifactId));
    if (lock.holderId === undefined && (await lk.waiters(ctx.db, artifactId)).length > 0) {
      await lk.grantNext(ctx, lock); // cannot happen through the API; heals a free lock with waiters
      lock = await lk.lockOf(ctx.db, artifactId);
    }
    // A pipeline holds the artifact: only its current stage's actor gets the lock (LOCKED naming
    // the pipeline for anyone else, with or without `wait`: nobody queues behind it).
    const stage = lock.pipelineId !== undefined ? await pl.gate(ctx.db, lock, caller) : null;
    let result: Value;
    if (lock.holderId === caller.actorId) {
      // Re-entrant: the holder (e.g. granted from the queue, or another pane of the same user)
      // gets its live token; nothing changes.
      result = {
        status: "granted",
        token: lock.epoch,
        expiresAt: lock.expiresAt!,
        since: lock.since!,
        ttlMs: lock.ttlMs!,
      };
    } else if ((await lk.waiterOf(ctx.db, artifactId, caller.actorId)) !== null) {
      result = await queued(ctx.db, lock, caller.actorId);
    } else if (lock.holderId === undefined) {
      result = await lk.grant(ctx, lock, caller.actorId, caller.kind, caller.handle, ttl, "acquire");
    } else {
      const holder = lk.holderInfo(lock)!;
      if (args.wait === false) {
        const queue = await lk.waiters(ctx.db, artifactId);
        fail("LOCKED", `@${holder.handle} (${holder.kind}) holds this lock`, { holder, queueLength: queue.length });
      }
      await ctx.db.insert("lockWaiters", {
        artifactId,
        spaceId: lock.spaceId,
        actorId: caller.actorId,
        actorKind: caller.kind,
        actorHandle: caller.handle,
        ttlMs: ttl,
        since: Date.now(),
        ...(key !== undefined ? { idempotencyKey: key } : {}),
      });
      const waiting = await queued(ctx.db, lock, caller.actorId);
      result = waiting;
      await audit(
        ctx,
        lock.spaceId,
        "lock.queued",
        { actorId: caller.actorId, handle: caller.handle, position: waiting.position },
        { artifactId, actorId: caller.actorId },
      );
    }
    const got = result as { status: string; token?: number };
    if (stage !== null && got.status === "granted" && stage.epoch !== got.token) {
      await pl.granted(ctx, stage, caller, got.token!); // the stage's output is written under it
    }
    await lk.remember(ctx, caller.actorId, key, "locks:acquire", artifactId, result);
    return result;
  },
});

export const renew = mutation({
  args: { artifactId: v.id("artifacts"), token: v.number(), ttlMs: v.optional(v.number()) },
  policy: "editor",
  scope: "artifact",
  // Extend a live lease (every ~10 s for the default 30 s). Returns `{token, expiresAt}`.
  handler: async (ctx, args) => {
    const lock = await lk.checkFence(ctx, ctx.caller.actorId, args.artifactId, args.token);
    const expires = await lk.extendLease(ctx, lock, lk.ttlOf(args, lock.ttlMs!));
    return { token: lock.epoch, expiresAt: expires };
  },
});

export const release = mutation({
  args: { artifactId: v.id("artifacts"), token: v.number(), keepDraft: v.optional(v.boolean()) },
  policy: "editor",
  scope: "artifact",
  // Give the lock up without saving; the queue head gets it. The draft is dropped unless
  // `keepDraft`. Returns `{released: true, grantedTo}`.
  handler: async (ctx, args) => {
    let lock = await lk.checkFence(ctx, ctx.caller.actorId, args.artifactId, args.token);
    lock = await lk.endHold(ctx, lock, "released", { by: ctx.caller.actor, keepDraft: Boolean(args.keepDraft) });
    const granted = await lk.grantNext(ctx, lock);
    return { released: true, grantedTo: granted !== null ? granted.holder : null };
  },
});

export const forceRelease = mutation({
  args: { artifactId: v.id("artifacts"), reason: v.string() },
  policy: "owner",
  scope: "artifact",
  // Owners only: take the lock from its holder (fenced: its token stops working at once; its
  // draft is kept as orphaned; it is notified). The queue head gets the lock.
  handler: async (ctx, args) => {
    const reason = pyStrip(args.reason);
    if (!reason) invalid("a force release needs a reason");
    let lock = await lk.lockOf(ctx.db, args.artifactId);
    if (lock.holderId === undefined) fail("NOT_LOCKED", "nobody holds this lock");
    const previous = lk.holderInfo(lock);
    lock = await lk.endHold(ctx, lock, "forceReleased", { by: ctx.caller.actor, forceReason: reason });
    const granted = await lk.grantNext(ctx, lock);
    return { epoch: lock.epoch, previousHolder: previous, grantedTo: granted !== null ? granted.holder : null };
  },
});

export const leave = mutation({
  args: { artifactId: v.id("artifacts") },
  policy: "editor",
  scope: "artifact",
  // Leave the wait queue. Returns `{left: bool}`.
  handler: async (ctx, args) => {
    const waiter = await lk.waiterOf(ctx.db, args.artifactId, ctx.caller.actorId);
    if (waiter === null) return { left: false };
    await ctx.db.delete(waiter._id);
    await audit(
      ctx,
      waiter.spaceId,
      "lock.left",
      { actorId: waiter.actorId, handle: waiter.actorHandle },
      { artifactId: args.artifactId, actorId: waiter.actorId },
    );
    await lk.updateRemembered(ctx, ctx.caller.actorId, waiter.idempotencyKey, { status: "cancelled" });
    return { left: true };
  },
});

export const queue = query({
  args: { artifactId: v.id("artifacts") },
  policy: "viewer",
  scope: "artifact",
  // `{held, holder, queueLength, queue: [{actorId, handle, kind, since, position}]}`.
  handler: async (ctx, args) => lk.lockState(ctx.db, await lk.lockOf(ctx.db, args.artifactId)),
});

export const list = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  // Lock badges of a space: `[{artifactId, holder, pipeline}]` for locks that are held or that
  // a pipeline holds (`holder` may then be null between two stages).
  handler: async (ctx, args) => {
    const rows = await ctx.db
      .query("locks")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .collect();
    const out = [];
    for (const r of rows) {
      if (r.holderId === undefined && r.pipelineId === undefined) continue;
      out.push({ artifactId: r.artifactId, holder: lk.holderInfo(r), pipeline: await lk.pipelineInfo(ctx.db, r) });
    }
    return out;
  },
});

export const waiting = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  // Who waits for which lock in the space (the members screen): `[{artifactId, actorId, handle,
  // kind, since, position}]`, in queue order per artifact (1 = next).
  handler: async (ctx, args) => {
    const rows = await ctx.db
      .query("lockWaiters")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .collect();
    const position = new Map<string, number>();
    const out = [];
    for (const w of rows) {
      // creation order is queue order
      const n = (position.get(w.artifactId) ?? 0) + 1;
      position.set(w.artifactId, n);
      out.push({
        artifactId: w.artifactId,
        actorId: w.actorId,
        handle: w.actorHandle,
        kind: w.actorKind,
        since: w.since,
        position: n,
      });
    }
    return out;
  },
});

/** The sweeper, scheduled at each lease end: expires the hold only if that lease really ended
 * (a renewal moved `expiresAt` and scheduled its own check). */
export const expire = internalMutation({
  args: { artifactId: v.id("artifacts"), epoch: v.number() },
  handler: async (ctx, args): Promise<boolean> => {
    const lock = await ctx.db
      .query("locks")
      .withIndex("by_artifact", (q) => q.eq("artifactId", args.artifactId))
      .unique();
    if (lock === null || lock.holderId === undefined || lock.epoch !== args.epoch) return false;
    if (lock.expiresAt! > Date.now()) return false;
    // This job is the lock's expiry job: end the hold without cancelling the running job.
    const ended = await lk.endHold(ctx, { ...lock, expiryJobId: undefined }, "expired");
    await lk.grantNext(ctx, ended);
    return true;
  },
});

export const forgetKey = internalMutation({
  args: { keyId: v.id("idempotencyKeys") },
  handler: async (ctx, args): Promise<null> => {
    if ((await ctx.db.get(args.keyId)) !== null) await ctx.db.delete(args.keyId);
    return null;
  },
});
