// Drafts: the holder's unsaved work, streamed in deltas under the lock. Twin of
// backend/model/drafts.py.
//
// One draft per hold (artifact, epoch), in its own table so streaming never re-runs queries of
// the artifact's content. A draft of an expired or force-released hold stays `orphaned` (and
// visible in `drafts:list`) until discarded: it is never merged silently.
import { v } from "convex/values";
import { mutation, query } from "./_auth";
import { fail } from "./_errors";
import * as lk from "./_lockcore";
import { cpLen, getIn } from "./_util";

export const append = mutation({
  args: {
    artifactId: v.id("artifacts"),
    token: v.number(),
    text: v.string(),
    seq: v.optional(v.number()),
    replace: v.optional(v.boolean()),
  },
  policy: "editor",
  scope: "artifact",
  // Append `text` to the caller's draft (`replace: true` sets it). A `seq` at or below the last
  // applied one is a retry and is ignored. An accepted delta renews the lease (at most every few
  // seconds). Returns `{seq, length, expiresAt, duplicate}`.
  handler: async (ctx, args) => {
    const caller = ctx.caller;
    const lock = await lk.checkFence(ctx, caller.actorId, args.artifactId, args.token);
    const now = Date.now();
    let draft = await ctx.db
      .query("drafts")
      .withIndex("by_artifact_epoch", (q) => q.eq("artifactId", args.artifactId).eq("epoch", lock.epoch))
      .unique();
    if (draft === null) {
      const draftId = await ctx.db.insert("drafts", {
        artifactId: args.artifactId,
        spaceId: lock.spaceId,
        actorId: caller.actorId,
        epoch: lock.epoch,
        baseVersion: caller.artifact().version,
        content: "",
        seq: 0,
        status: "live",
        updatedAt: now,
      });
      draft = (await ctx.db.get(draftId))!;
    }
    const seq = args.seq ?? draft.seq + 1;
    if (seq <= draft.seq) {
      return { seq: draft.seq, length: cpLen(draft.content), expiresAt: lock.expiresAt!, duplicate: true };
    }
    const content = args.replace ? args.text : draft.content + args.text;
    await ctx.db.patch(draft._id, { content, seq, updatedAt: now });
    let expires = lock.expiresAt!;
    if (expires - now < lock.ttlMs! - lk.renewSlackMs(lock.ttlMs!)) {
      expires = await lk.extendLease(ctx, lock, lock.ttlMs!);
    }
    return { seq, length: cpLen(content), expiresAt: expires, duplicate: false };
  },
});

export const get = query({
  args: { artifactId: v.id("artifacts") },
  policy: "viewer",
  scope: "artifact",
  // The live draft of the current holder (what it is writing right now), or null.
  handler: async (ctx, args) => {
    const lock = await lk.lockOf(ctx.db, args.artifactId);
    if (lock.holderId === undefined) return null;
    return await ctx.db
      .query("drafts")
      .withIndex("by_artifact_epoch", (q) => q.eq("artifactId", args.artifactId).eq("epoch", lock.epoch))
      .unique();
  },
});

export const list = query({
  args: { artifactId: v.id("artifacts"), status: v.optional(v.string()) },
  policy: "viewer",
  scope: "artifact",
  // Kept drafts (default: `orphaned`) with their content, newest first.
  handler: async (ctx, args) => {
    const status = args.status ?? "orphaned";
    return await ctx.db
      .query("drafts")
      // the index field is a union of literals; any other string simply matches nothing
      .withIndex("by_artifact_status", (q) =>
        q.eq("artifactId", args.artifactId).eq("status", status as "live" | "orphaned" | "saved" | "released"),
      )
      .order("desc")
      .collect();
  },
});

export const discard = mutation({
  args: { artifactId: v.id("artifacts"), draftId: v.id("drafts") },
  policy: "editor",
  scope: "artifact",
  // Delete a kept draft: its author, or an owner.
  handler: async (ctx, args): Promise<null> => {
    const draft = await getIn(ctx.db, "drafts", args.draftId);
    if (draft === null || draft.artifactId !== args.artifactId) {
      fail("NOT_FOUND", "no such draft on this artifact", { what: "draft", id: args.draftId });
    }
    if (draft.status === "live") fail("DRAFT_LIVE", "this draft belongs to the current hold; release or save instead");
    if (draft.actorId !== ctx.caller.actorId && !ctx.caller.isAtLeast("owner")) {
      fail("FORBIDDEN", "only the draft's author or an owner discards it", { required: "owner", role: ctx.caller.role });
    }
    await ctx.db.delete(draft._id);
    return null;
  },
});
