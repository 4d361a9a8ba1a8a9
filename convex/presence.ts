// Presence: who is here, what they look at, who is typing. Ephemeral rows in their own table
// (so heartbeats never re-run content queries), one per terminal (`client`), deleted by a
// scheduled sweep when the heartbeats stop. Twin of backend/model/presence.py.
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, type DatabaseReader } from "./_generated/server";
import { mutation, query } from "./_auth";
import { invalid } from "./_errors";

export const PRESENCE_TTL_MS = 30_000;

async function rowOf(
  db: DatabaseReader,
  spaceId: Id<"spaces">,
  actorId: Id<"actors">,
  client: string,
): Promise<Doc<"presence"> | null> {
  return await db
    .query("presence")
    .withIndex("by_space_actor_client", (q) => q.eq("spaceId", spaceId).eq("actorId", actorId).eq("client", client))
    .unique();
}

export const heartbeat = mutation({
  args: {
    spaceId: v.id("spaces"),
    client: v.optional(v.string()),
    artifactId: v.optional(v.id("artifacts")),
    view: v.optional(v.string()),
    typing: v.optional(v.boolean()),
    ttlMs: v.optional(v.number()),
  },
  policy: "viewer",
  scope: "space",
  // I am here (every ~10 s, and when what I look at or my typing changes). Returns
  // `{presenceId, expiresAt}`.
  handler: async (ctx, args) => {
    const caller = ctx.caller;
    const now = Date.now();
    const ttl = args.ttlMs ?? PRESENCE_TTL_MS;
    if (!(1_000 <= ttl && ttl <= 300_000)) invalid("ttlMs must be between 1000 and 300000");
    const client = args.client ?? "default";
    const fields = {
      typing: Boolean(args.typing ?? false),
      lastSeen: now,
      expiresAt: now + ttl,
      ...(args.artifactId !== undefined ? { artifactId: args.artifactId } : {}),
      ...(args.view !== undefined ? { view: args.view } : {}),
    };
    const row = await rowOf(ctx.db, args.spaceId, caller.actorId, client);
    let presenceId: Id<"presence">;
    if (row === null) {
      presenceId = await ctx.db.insert("presence", {
        spaceId: args.spaceId,
        actorId: caller.actorId,
        actorKind: caller.kind,
        actorHandle: caller.handle,
        client,
        ...fields,
      });
    } else {
      presenceId = row._id;
      if (row.expiryJobId) await ctx.scheduler.cancel(row.expiryJobId as Id<"_scheduled_functions">);
      await ctx.db.patch(presenceId, fields);
    }
    const job = await ctx.scheduler.runAt(fields.expiresAt, internal.presence.expire, { presenceId });
    await ctx.db.patch(presenceId, { expiryJobId: job });
    return { presenceId, expiresAt: fields.expiresAt };
  },
});

export const leave = mutation({
  args: { spaceId: v.id("spaces"), client: v.optional(v.string()) },
  policy: "viewer",
  scope: "space",
  handler: async (ctx, args): Promise<null> => {
    const row = await rowOf(ctx.db, args.spaceId, ctx.caller.actorId, args.client ?? "default");
    if (row !== null) {
      if (row.expiryJobId) await ctx.scheduler.cancel(row.expiryJobId as Id<"_scheduled_functions">);
      await ctx.db.delete(row._id);
    }
    return null;
  },
});

export const list = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  // Everyone present (one row per terminal): handle, kind, artifact/view, typing, expiresAt.
  handler: async (ctx, args) =>
    await ctx.db
      .query("presence")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .collect(),
});

export const expire = internalMutation({
  args: { presenceId: v.id("presence") },
  handler: async (ctx, args): Promise<boolean> => {
    const row = await ctx.db.get(args.presenceId);
    if (row === null || row.expiresAt > Date.now()) return false;
    await ctx.db.delete(row._id);
    return true;
  },
});
