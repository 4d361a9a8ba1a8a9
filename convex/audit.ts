// The audit log: append-only rows written by the other modules (lock grants and releases,
// saves, force releases with their reason, membership changes, runs). Twin of
// backend/model/audit.py.
import { v } from "convex/values";
import { query } from "./_auth";

export const list = query({
  args: { spaceId: v.id("spaces"), artifactId: v.optional(v.id("artifacts")), limit: v.optional(v.number()) },
  policy: "viewer",
  scope: "space",
  // Newest first (default 200), of the space or of one of its artifacts.
  handler: async (ctx, args) => {
    const limit = Math.max(0, Math.trunc(args.limit ?? 200));
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
