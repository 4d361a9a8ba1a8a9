// Actors: the humans and agents behind tokens (`sub` = `human:<handle>` / `agent:<handle>`).
// Twin of backend/model/actors.py.
import { v } from "convex/values";
import { mutation, query } from "./_auth";
import { invalid } from "./_errors";
import { cpLen, pyStrip } from "./_util";

export const me = query({
  args: {},
  policy: "authenticated",
  // The caller's actor, or null before its first mutation (queries cannot create rows).
  handler: async (ctx) => ctx.caller.actor,
});

export const ensure = mutation({
  args: { name: v.optional(v.string()) },
  policy: "authenticated",
  // Create the caller's actor on first use (the wrapper did) and update its display name.
  handler: async (ctx, args) => {
    let actor = ctx.caller.actor!;
    if (args.name !== undefined) {
      const name = pyStrip(args.name);
      if (!name || cpLen(name) > 80) invalid("name must be 1-80 characters");
      if (name !== actor.name) {
        await ctx.db.patch(actor._id, { name });
        actor = (await ctx.db.get(actor._id))!;
      }
    }
    return actor;
  },
});
