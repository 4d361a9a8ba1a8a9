// Spaces and their members (roles owner / editor / viewer; agents are members too). Twin of
// backend/model/spaces.py.
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader, MutationCtx } from "./_generated/server";
import { actorBySubject, membership, mutation, query, type GuardedMutationCtx } from "./_auth";
import { fail, invalid } from "./_errors";
import { audit, cpLen, pyStrip, randomToken } from "./_util";
import { ACTOR_KIND, ROLE } from "./schema";

// Invite codes: 12 random bytes, base64url (16 characters), like the embedded backend's.
const INVITE_CODE_BYTES = 12;

async function insertMember(
  ctx: MutationCtx,
  spaceId: Id<"spaces">,
  actor: Doc<"actors">,
  role: Doc<"members">["role"],
  by: Id<"actors"> | null,
): Promise<Id<"members">> {
  return await ctx.db.insert("members", {
    spaceId,
    actorId: actor._id,
    role,
    kind: actor.kind,
    handle: actor.handle,
    ...(by !== null ? { addedBy: by } : {}),
  });
}

async function owners(db: DatabaseReader, spaceId: Id<"spaces">): Promise<Doc<"members">[]> {
  const members = await db
    .query("members")
    .withIndex("by_space", (q) => q.eq("spaceId", spaceId))
    .collect();
  return members.filter((m) => m.role === "owner");
}

export const create = mutation({
  args: { name: v.string(), description: v.optional(v.string()) },
  policy: "authenticated",
  // A new space; the caller becomes its owner. Returns the spaceId.
  handler: async (ctx, args) => createSpace(ctx, args.name, args.description),
});

async function createSpace(ctx: GuardedMutationCtx, rawName: string, description: string | undefined): Promise<Id<"spaces">> {
  const name = pyStrip(rawName);
  if (!name || cpLen(name) > 120) invalid("space name must be 1-120 characters");
  const actor = ctx.caller.actor!;
  const spaceId = await ctx.db.insert("spaces", {
    name,
    createdBy: actor._id,
    ...(description ? { description } : {}),
  });
  await insertMember(ctx, spaceId, actor, "owner", null);
  await audit(ctx, spaceId, "space.created", { name }, { actorId: actor._id });
  return spaceId;
}

export const list = query({
  args: {},
  policy: "authenticated",
  // Spaces the caller is a member of, with the caller's role.
  handler: async (ctx) => {
    const actor = ctx.caller.actor;
    if (actor === null) return [];
    const out = [];
    const members = await ctx.db
      .query("members")
      .withIndex("by_actor", (q) => q.eq("actorId", actor._id))
      .collect();
    for (const m of members) {
      const space = await ctx.db.get(m.spaceId);
      if (space !== null) out.push({ ...space, role: m.role });
    }
    return out;
  },
});

export const get = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  handler: async (ctx) => ({ ...ctx.caller.spaceDoc(), role: ctx.caller.role }),
});

export const members = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  handler: async (ctx, args) => {
    const out = [];
    const rows = await ctx.db
      .query("members")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .collect();
    for (const m of rows) {
      const actor = await ctx.db.get(m.actorId);
      out.push({
        memberId: m._id,
        actorId: m.actorId,
        role: m.role,
        kind: m.kind,
        handle: m.handle,
        name: actor !== null ? actor.name : m.handle,
        since: m._creationTime,
      });
    }
    return out;
  },
});

export const invite = mutation({
  args: { spaceId: v.id("spaces"), role: v.optional(ROLE), maxUses: v.optional(v.number()) },
  policy: "owner",
  scope: "space",
  // An invite code for `spaces:join` (default role editor).
  handler: async (ctx, args) => {
    // Convex allows `crypto.getRandomValues` in mutations (seeded per execution).
    const code = randomToken(INVITE_CODE_BYTES);
    const role = args.role ?? "editor";
    await ctx.db.insert("invites", {
      spaceId: args.spaceId,
      code,
      role,
      createdBy: ctx.caller.actorId,
      uses: 0,
      revoked: false,
      ...(args.maxUses !== undefined ? { maxUses: args.maxUses } : {}),
    });
    await audit(ctx, args.spaceId, "space.invited", { role }, { actorId: ctx.caller.actorId });
    return { code, role };
  },
});

export const join = mutation({
  args: { code: v.string() },
  policy: "authenticated",
  // Join the space of an invite code. Returns `{spaceId, role}`; joining again is a no-op
  // (never a downgrade).
  handler: async (ctx, args) => {
    const inv = await ctx.db
      .query("invites")
      .withIndex("by_code", (q) => q.eq("code", args.code))
      .unique();
    if (inv === null || inv.revoked || (inv.maxUses !== undefined && inv.uses >= inv.maxUses)) {
      fail("INVALID_INVITE", "this invite code is unknown, revoked or used up");
    }
    const actor = ctx.caller.actor!;
    const existing = await membership(ctx.db, inv.spaceId, actor._id);
    if (existing !== null) return { spaceId: inv.spaceId, role: existing.role };
    await insertMember(ctx, inv.spaceId, actor, inv.role, inv.createdBy);
    await ctx.db.patch(inv._id, { uses: inv.uses + 1 });
    await audit(ctx, inv.spaceId, "member.joined", { handle: actor.handle, role: inv.role }, { actorId: actor._id });
    return { spaceId: inv.spaceId, role: inv.role };
  },
});

/** Make `<kind>:<handle>` a member with `role` (its actor is created if it never signed in:
 * the token `sub` will map to it); a member already there gets the role. Audited. */
async function putMember(
  ctx: GuardedMutationCtx,
  spaceId: Id<"spaces">,
  kind: Doc<"actors">["kind"],
  handle: string,
  role: Doc<"members">["role"],
  name: string | undefined,
): Promise<Id<"members">> {
  const subject = `${kind}:${handle}`;
  let actor = await actorBySubject(ctx.db, subject);
  if (actor === null) {
    const actorId = await ctx.db.insert("actors", { subject, kind, handle, name: name || handle });
    actor = (await ctx.db.get(actorId))!;
  }
  const existing = await membership(ctx.db, spaceId, actor._id);
  let memberId: Id<"members">;
  if (existing !== null) {
    await ctx.db.patch(existing._id, { role });
    memberId = existing._id;
  } else {
    memberId = await insertMember(ctx, spaceId, actor, role, ctx.caller.actorId);
  }
  await audit(
    ctx,
    spaceId,
    "member.added",
    { handle: actor.handle, kind: actor.kind, role },
    { actorId: ctx.caller.actorId },
  );
  return memberId;
}

export const addMember = mutation({
  args: { spaceId: v.id("spaces"), handle: v.string(), kind: ACTOR_KIND, role: ROLE, name: v.optional(v.string()) },
  policy: "owner",
  scope: "space",
  // Add a human or agent by handle (its actor is created if it never signed in: the token `sub`
  // `<kind>:<handle>` will map to it). Changes the role if already a member.
  handler: async (ctx, args) => putMember(ctx, args.spaceId, args.kind, args.handle, args.role, args.name),
});

const AGENT = v.object({ handle: v.string(), name: v.optional(v.string()) });

export const open = mutation({
  args: {
    name: v.string(),
    description: v.optional(v.string()),
    actorName: v.optional(v.string()),
    agents: v.optional(v.array(AGENT)),
    create: v.optional(v.boolean()),
  },
  policy: "authenticated",
  // Everything the app needs to open a space by name, in one transaction: the caller's actor
  // (display name `actorName` updated), the caller's space called `name` (created with the
  // caller as owner when there is none and `create` is not false), and, for an owner, the
  // `agents` added as editor members if missing. Returns `{spaceId, name, role, me, created}`,
  // or null when no such space exists and `create` is false.
  handler: async (ctx, args) => {
    const actor = ctx.caller.actor!;
    const name = pyStrip(args.name);
    if (args.actorName !== undefined) {
      const display = pyStrip(args.actorName);
      if (!display || cpLen(display) > 80) invalid("name must be 1-80 characters");
      if (display !== actor.name) await ctx.db.patch(actor._id, { name: display });
    }
    let found: [Id<"spaces">, Doc<"members">["role"]] | null = null;
    const mine = await ctx.db
      .query("members")
      .withIndex("by_actor", (q) => q.eq("actorId", actor._id))
      .collect();
    for (const m of mine) {
      const space = await ctx.db.get(m.spaceId);
      if (space !== null && space.name === name) {
        found = [space._id, m.role];
        break;
      }
    }
    const created = found === null;
    if (found === null) {
      if (args.create === false) return null;
      found = [await createSpace(ctx, name, args.description), "owner"];
    }
    const [spaceId, role] = found;
    if (role === "owner") {
      const members = await ctx.db
        .query("members")
        .withIndex("by_space", (q) => q.eq("spaceId", spaceId))
        .collect();
      const have = new Set(members.filter((m) => m.kind === "agent").map((m) => m.handle));
      for (const agent of args.agents ?? []) {
        if (!have.has(agent.handle)) await putMember(ctx, spaceId, "agent", agent.handle, "editor", agent.name);
      }
    }
    return { spaceId, name, role, me: await ctx.db.get(actor._id), created };
  },
});

export const setRole = mutation({
  args: { spaceId: v.id("spaces"), actorId: v.id("actors"), role: ROLE },
  policy: "owner",
  scope: "space",
  handler: async (ctx, args): Promise<null> => {
    const m = await membership(ctx.db, args.spaceId, args.actorId);
    if (m === null) fail("NOT_FOUND", "that actor is not a member of this space", { what: "member", id: args.actorId });
    if (m.role === "owner" && args.role !== "owner" && (await owners(ctx.db, args.spaceId)).length === 1) {
      fail("LAST_OWNER", "a space keeps at least one owner");
    }
    await ctx.db.patch(m._id, { role: args.role });
    await audit(
      ctx,
      args.spaceId,
      "member.role",
      { handle: m.handle, from: m.role, to: args.role },
      { actorId: ctx.caller.actorId },
    );
    return null;
  },
});

export const removeMember = mutation({
  args: { spaceId: v.id("spaces"), actorId: v.id("actors") },
  policy: "viewer",
  scope: "space",
  // Owners remove anyone; anyone may remove themselves (leave).
  handler: async (ctx, args): Promise<null> => {
    if (args.actorId !== ctx.caller.actorId && !ctx.caller.isAtLeast("owner")) {
      fail("FORBIDDEN", "only owners remove other members", { required: "owner", role: ctx.caller.role });
    }
    const m = await membership(ctx.db, args.spaceId, args.actorId);
    if (m === null) fail("NOT_FOUND", "that actor is not a member of this space", { what: "member", id: args.actorId });
    if (m.role === "owner" && (await owners(ctx.db, args.spaceId)).length === 1) {
      fail("LAST_OWNER", "a space keeps at least one owner");
    }
    await ctx.db.delete(m._id);
    await audit(ctx, args.spaceId, "member.removed", { handle: m.handle }, { actorId: ctx.caller.actorId });
    return null;
  },
});
