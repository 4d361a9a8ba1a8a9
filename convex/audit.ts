// The audit log: append-only rows written by the other modules (lock grants and releases,
// saves, force releases with their reason, membership changes, runs). Twin of
// backend/model/audit.py.
import { v } from "convex/values";
import { query } from "./_auth";
import { rowLimit } from "./_limits";

export const list = query({
  args: { spaceId: v.id("spaces"), artifactId: v.optional(v.id("artifacts")), limit: v.optional(v.number()) },
  policy: "viewer",
  scope: "space",
  // Newest first (default 200, at most 1000), of the space or of one of its artifacts.
  handler: async (ctx, args) => {
    const limit = rowLimit(args.limit, 200);
    if (args.artifactId !== undefined) {
      const artifactId = args.artifactId;
      const rows = await ctx.db
        .query("audit")
        .withIndex("by_artifact", (q) => q.eq("artifactId", artifactId))
        .order("desc")
        .take(limit);
      return rows.filter((r) => r.spaceId === args.spaceId);
    }
    return await ctx.db
      .query("audit")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .order("desc")
      .take(limit);
  },
});

export const page = query({
  args: {
    spaceId: v.id("spaces"),
    artifactId: v.optional(v.id("artifacts")),
    numItems: v.number(),
    cursor: v.union(v.string(), v.null()),
  },
  policy: "viewer",
  scope: "space",
  // The whole log, newest first, in pages (`{page, isDone, continueCursor}`), of the space or
  // of one of its artifacts. `numItems` at most 1000.
  handler: async (ctx, args) => {
    const artifactId = args.artifactId;
    const q =
      artifactId !== undefined
        ? ctx.db
            .query("audit")
            .withIndex("by_artifact", (r) => r.eq("artifactId", artifactId))
            .filter((f) => f.eq(f.field("spaceId"), args.spaceId))
        : ctx.db.query("audit").withIndex("by_space", (r) => r.eq("spaceId", args.spaceId));
    const result = await q.order("desc").paginate({ numItems: rowLimit(args.numItems, 0, "numItems"), cursor: args.cursor });
    return { page: result.page, isDone: result.isDone, continueCursor: result.continueCursor };
  },
});
