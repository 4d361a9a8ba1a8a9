// Notifications of the caller: you were mentioned, the lock you waited for is yours, you lost a
// lock (and why), a run you queued failed. Twin of backend/model/notifications.py.
import { v } from "convex/values";
import { mutation, query } from "./_auth";
import { fail } from "./_errors";
import { getIn } from "./_util";

export const list = query({
  args: { unreadOnly: v.optional(v.boolean()), spaceId: v.optional(v.id("spaces")), limit: v.optional(v.number()) },
  policy: "authenticated",
  // The caller's notifications, newest first (default 50).
  handler: async (ctx, args) => {
    const actor = ctx.caller.actor;
    if (actor === null) return [];
    const limit = Math.max(0, Math.trunc(args.limit ?? 50));
    let q = args.unreadOnly
      ? ctx.db.query("notifications").withIndex("by_actor_read", (r) => r.eq("actorId", actor._id).eq("read", false))
      : ctx.db.query("notifications").withIndex("by_actor", (r) => r.eq("actorId", actor._id));
    if (args.spaceId !== undefined) {
      const spaceId = args.spaceId;
      q = q.filter((f) => f.eq(f.field("spaceId"), spaceId));
    }
    return await q.order("desc").take(limit);
  },
});

export const markRead = mutation({
  args: { notificationId: v.optional(v.id("notifications")) },
  policy: "authenticated",
  // Mark one (or, without an id, all) of the caller's notifications read. Returns how many.
  handler: async (ctx, args): Promise<number> => {
    const me = ctx.caller.actorId;
    if (args.notificationId !== undefined) {
      const row = await getIn(ctx.db, "notifications", args.notificationId);
      if (row === null || row.actorId !== me) {
        fail("NOT_FOUND", "no such notification of yours", { what: "notification", id: args.notificationId });
      }
      if (!row.read) {
        await ctx.db.patch(row._id, { read: true });
        return 1;
      }
      return 0;
    }
    const rows = await ctx.db
      .query("notifications")
      .withIndex("by_actor_read", (r) => r.eq("actorId", me).eq("read", false))
      .collect();
    for (const row of rows) await ctx.db.patch(row._id, { read: true });
    return rows.length;
  },
});
