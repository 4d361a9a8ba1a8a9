// Spaces and their members (roles owner / editor / viewer; agents are members too). Twin of
// backend/model/spaces.py.
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, type DatabaseReader, type MutationCtx } from "./_generated/server";
import { actorBySubject, membership, mutation, query, type GuardedMutationCtx } from "./_auth";
import { fail, invalid } from "./_errors";
import { audit, cpLen, getIn, notify, pyG, pyStrip } from "./_util";
import { ACTOR_KIND, ROLE } from "./schema";

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

// Invite codes: 20 characters from an alphabet without look-alikes (0/o, 1/l/i), shown in four
// groups of five: ~98 bits, typed or pasted into a shell as they are (no leading "-").
const CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";
const CODE_LENGTH = 20;
const HINT_LENGTH = 5;
const MAX_INVITE_USES = 1000;
const MIN_EXPIRY_MS = 60_000;
const MAX_EXPIRY_MS = 90 * 24 * 3600 * 1000;
const HANDLE_RE = /^[a-z][a-z0-9_-]{0,31}$/;
const RESERVED_HANDLES = new Set(["all", "everyone", "here", "human", "humans", "me", "auto"]);
// Python's `str.isalnum()`: letters and numbers of any script.
const ALNUM = /[\p{L}\p{N}]/u;

/** What the user typed -> the code's characters (case, spaces and dashes do not matter). */
export function normalizeCode(code: string): string {
  let out = "";
  for (const ch of code.toLowerCase()) if (ALNUM.test(ch)) out += ch;
  return out;
}

/** SHA-256 (hex) of the normalized code: what `invites.codeHash` stores. */
export async function codeHash(code: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(normalizeCode(code)));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** From `crypto.getRandomValues` (Convex seeds it per mutation, the twin of the embedded
 * backend's `ctx.random_bytes`): one 32-bit number per letter, reduced without a noticeable
 * bias. */
function newCode(): string {
  const raw = new Uint8Array(4 * CODE_LENGTH);
  crypto.getRandomValues(raw);
  const view = new DataView(raw.buffer);
  let chars = "";
  for (let i = 0; i < CODE_LENGTH; i++) chars += CODE_ALPHABET[view.getUint32(4 * i, false) % CODE_ALPHABET.length];
  const groups = [];
  for (let i = 0; i < CODE_LENGTH; i += 5) groups.push(chars.slice(i, i + 5));
  return groups.join("-");
}

export function checkHandle(handle: string): void {
  if (!HANDLE_RE.test(handle)) {
    fail(
      "INVALID_HANDLE",
      `@${handle} is not a valid handle: 1-32 characters, a lowercase letter, then lowercase letters, digits, - or _`,
      { handle },
    );
  }
  if (RESERVED_HANDLES.has(handle)) {
    fail("INVALID_HANDLE", `@${handle} is reserved (it has a meaning in messages); choose another`, { handle });
  }
}

export const invite = mutation({
  args: {
    spaceId: v.id("spaces"),
    role: v.optional(ROLE),
    maxUses: v.optional(v.number()),
    expiresInMs: v.optional(v.number()),
  },
  policy: "owner",
  scope: "space",
  // An invite code for `spaces:join` (or the embedded backend's code exchange). Default role
  // editor; `maxUses` (1-1000; unset: any number); `expiresInMs` (1 minute - 90 days; unset:
  // never). Returns `{inviteId, code, role, maxUses, expiresAt}` (null when unset). Only the
  // code's hash is stored: the code is shown once, here.
  handler: async (ctx, args) => {
    const role = args.role ?? "editor";
    if (role === "owner") invalid("invites are for editors and viewers; make an owner with spaces:setRole");
    const maxUses = args.maxUses ?? null;
    if (maxUses !== null && (!Number.isInteger(maxUses) || !(1 <= maxUses && maxUses <= MAX_INVITE_USES))) {
      invalid(`maxUses must be a whole number from 1 to ${MAX_INVITE_USES}`);
    }
    const expiresIn = args.expiresInMs;
    if (expiresIn !== undefined && !(MIN_EXPIRY_MS <= expiresIn && expiresIn <= MAX_EXPIRY_MS)) {
      invalid("expiresInMs must be between 1 minute and 90 days");
    }
    const code = newCode();
    const expiresAt = expiresIn !== undefined ? Date.now() + expiresIn : null;
    const hint = code.slice(0, HINT_LENGTH);
    const inviteId = await ctx.db.insert("invites", {
      spaceId: args.spaceId,
      codeHash: await codeHash(code),
      hint,
      role,
      createdBy: ctx.caller.actorId,
      uses: 0,
      revoked: false,
      ...(maxUses !== null ? { maxUses } : {}),
      ...(expiresAt !== null ? { expiresAt } : {}),
    });
    await audit(
      ctx,
      args.spaceId,
      "space.invited",
      { role, hint, maxUses, expiresAt, byHandle: ctx.caller.handle },
      { actorId: ctx.caller.actorId },
    );
    return { inviteId, code, role, maxUses, expiresAt };
  },
});

/** The invite of `code` if it can be used now; otherwise one error per reason:
 * `INVITE_UNKNOWN`, `INVITE_REVOKED`, `INVITE_EXPIRED`, `INVITE_USED_UP`. */
async function usableInvite(ctx: MutationCtx, code: string): Promise<Doc<"invites">> {
  const hash = await codeHash(code);
  const inv = await ctx.db
    .query("invites")
    .withIndex("by_hash", (q) => q.eq("codeHash", hash))
    .unique();
  if (inv === null) {
    fail("INVITE_UNKNOWN", "no invite has this code: check that it was copied whole, or ask for a new one");
  }
  if (inv.revoked) {
    const by = inv.revokedBy !== undefined ? await ctx.db.get(inv.revokedBy) : null;
    const who = by !== null ? ` by @${by.handle}` : "";
    fail("INVITE_REVOKED", `this invite was revoked${who}: ask an owner of the space for a new one`);
  }
  if (inv.expiresAt !== undefined && Date.now() >= inv.expiresAt) {
    fail("INVITE_EXPIRED", "this invite has expired: ask an owner of the space for a new one", {
      expiresAt: inv.expiresAt,
    });
  }
  if (inv.maxUses !== undefined && inv.uses >= inv.maxUses) {
    const n = inv.maxUses;
    fail(
      "INVITE_USED_UP",
      `this invite was for ${pyG(n)} use${n !== 1 ? "s" : ""} and has been used up: ask an owner of the space for a new one`,
      { maxUses: n },
    );
  }
  return inv;
}

async function handleFreeIn(
  db: DatabaseReader,
  spaceId: Id<"spaces">,
  handle: string,
  actorId: Id<"actors"> | null,
): Promise<void> {
  const other = await db
    .query("members")
    .withIndex("by_space_handle", (q) => q.eq("spaceId", spaceId).eq("handle", handle))
    .first();
  if (other !== null && other.actorId !== actorId) {
    fail("HANDLE_TAKEN", `@${handle} is already a member of this space: choose another handle`, { handle });
  }
}

async function useInvite(ctx: MutationCtx, inv: Doc<"invites">, actor: Doc<"actors">) {
  const space = (await ctx.db.get(inv.spaceId))!;
  const existing = await membership(ctx.db, inv.spaceId, actor._id);
  if (existing !== null) {
    // joining again: nothing changes, never a downgrade
    return { spaceId: inv.spaceId, spaceName: space.name, role: existing.role, handle: actor.handle };
  }
  await handleFreeIn(ctx.db, inv.spaceId, actor.handle, actor._id);
  await insertMember(ctx, inv.spaceId, actor, inv.role, inv.createdBy);
  await ctx.db.patch(inv._id, { uses: inv.uses + 1 });
  await audit(
    ctx,
    inv.spaceId,
    "member.joined",
    { handle: actor.handle, role: inv.role, hint: inv.hint },
    { actorId: actor._id },
  );
  await notify(
    ctx,
    inv.createdBy,
    inv.spaceId,
    "memberJoined",
    `@${actor.handle} joined ${space.name} as ${inv.role} with your invite ${inv.hint}…`,
    { data: { actorId: actor._id } },
  );
  return { spaceId: inv.spaceId, spaceName: space.name, role: inv.role, handle: actor.handle };
}

export const join = mutation({
  args: { code: v.string() },
  policy: "authenticated",
  // Join the space of an invite code as the caller (a Convex deployment: the caller signed in
  // with the deployment's auth). Returns `{spaceId, spaceName, role, handle}`; joining again
  // keeps the existing role. `INVITE_UNKNOWN` / `INVITE_REVOKED` / `INVITE_EXPIRED` /
  // `INVITE_USED_UP`, `HANDLE_TAKEN` (another member of the space has the caller's handle).
  handler: async (ctx, args) => {
    const inv = await usableInvite(ctx, args.code);
    return await useInvite(ctx, inv, ctx.caller.actor!);
  },
});

/** The embedded backend's code exchange (`POST /api/invites/exchange`): a new human `handle`
 * joins the space of `code`; the server then mints that human's token. A handle that already
 * belongs to anyone on this backend is refused (`HANDLE_TAKEN`): a token for it would be that
 * person's. Returns `{spaceId, spaceName, role, handle}`. A Convex deployment has no such
 * endpoint; the function is here so both backends have the same functions. */
export const redeem = internalMutation({
  args: { code: v.string(), handle: v.string(), name: v.optional(v.string()) },
  handler: async (ctx, args) => {
    const handle = pyStrip(args.handle);
    checkHandle(handle);
    const inv = await usableInvite(ctx, args.code);
    const name = pyStrip(args.name || handle);
    if (!name || cpLen(name) > 80) invalid("name must be 1-80 characters");
    if ((await actorBySubject(ctx.db, `human:${handle}`)) !== null) {
      fail("HANDLE_TAKEN", `@${handle} is already someone's handle on this backend: choose another one`, { handle });
    }
    await handleFreeIn(ctx.db, inv.spaceId, handle, null);
    const actorId = await ctx.db.insert("actors", { subject: `human:${handle}`, kind: "human", handle, name });
    return await useInvite(ctx, inv, (await ctx.db.get(actorId))!);
  },
});

export const invites = query({
  args: { spaceId: v.id("spaces") },
  policy: "owner",
  scope: "space",
  // The space's invites, newest first: `[{inviteId, hint, role, uses, maxUses, expiresAt,
  // revoked, createdBy, createdByHandle, at}]` (`maxUses` / `expiresAt` null when unset;
  // whether one has expired is the client's to say: a query does not read the clock).
  handler: async (ctx, args) => {
    const out = [];
    const rows = await ctx.db
      .query("invites")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .collect();
    for (const inv of rows) {
      const by = await ctx.db.get(inv.createdBy);
      out.push({
        inviteId: inv._id,
        hint: inv.hint,
        role: inv.role,
        uses: inv.uses,
        maxUses: inv.maxUses ?? null,
        expiresAt: inv.expiresAt ?? null,
        revoked: inv.revoked,
        createdBy: inv.createdBy,
        createdByHandle: by !== null ? by.handle : "?",
        at: inv._creationTime,
      });
    }
    return out.sort((a, b) => b.at - a.at); // stable, as Python's sorted(reverse=True)
  },
});

export const revokeInvite = mutation({
  args: { spaceId: v.id("spaces"), inviteId: v.id("invites") },
  policy: "owner",
  scope: "space",
  // Revoke an invite: its code stops working at once (members who joined with it stay).
  handler: async (ctx, args): Promise<null> => {
    const inv = await getIn(ctx.db, "invites", args.inviteId);
    if (inv === null || inv.spaceId !== args.spaceId) {
      fail("NOT_FOUND", "no such invite in this space", { what: "invite", id: args.inviteId });
    }
    if (inv.revoked) return null;
    await ctx.db.patch(inv._id, { revoked: true, revokedBy: ctx.caller.actorId });
    await audit(
      ctx,
      args.spaceId,
      "invite.revoked",
      { hint: inv.hint, byHandle: ctx.caller.handle },
      { actorId: ctx.caller.actorId },
    );
    return null;
  },
});

export const setBudget = mutation({
  args: { spaceId: v.id("spaces"), budgetUsd: v.union(v.number(), v.null()) },
  policy: "owner",
  scope: "space",
  // What the space may spend on agent runs (USD, all time; null: no limit). Runs queued after
  // it is spent are refused with `BUDGET_EXCEEDED`.
  handler: async (ctx, args): Promise<null> => {
    await putBudget(ctx, args.spaceId, args.budgetUsd);
    return null;
  },
});

async function putBudget(ctx: GuardedMutationCtx, spaceId: Id<"spaces">, budget: number | null): Promise<void> {
  if (budget !== null && !(0 <= budget && budget <= 1_000_000)) {
    invalid("budgetUsd must be between 0 and 1000000 (or null: no limit)");
  }
  const space = (await ctx.db.get(spaceId))!;
  const before = space.budgetUsd ?? null;
  if (before === budget) return;
  await ctx.db.patch(spaceId, { budgetUsd: budget ?? undefined });
  await audit(
    ctx,
    spaceId,
    "space.budget",
    { from: before, to: budget, byHandle: ctx.caller.handle },
    { actorId: ctx.caller.actorId },
  );
}

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
    budgetUsd: v.optional(v.union(v.number(), v.null())),
  },
  policy: "authenticated",
  // Everything the app needs to open a space by name, in one transaction: the caller's actor
  // (display name `actorName` updated), the caller's space called `name` (created with the
  // caller as owner when there is none and `create` is not false), and, for an owner, the
  // `agents` added as editor members if missing and the space's budget set to `budgetUsd` when
  // given (null: no limit; the owner's config is the source of truth). Returns `{spaceId, name,
  // role, me, created}`, or null when no such space exists and `create` is false.
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
      if (args.budgetUsd !== undefined) await putBudget(ctx, spaceId, args.budgetUsd);
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
    if (m.role === args.role) return null;
    await ctx.db.patch(m._id, { role: args.role });
    await audit(
      ctx,
      args.spaceId,
      "member.role",
      { handle: m.handle, from: m.role, to: args.role, byHandle: ctx.caller.handle },
      { actorId: ctx.caller.actorId },
    );
    if (args.actorId !== ctx.caller.actorId) {
      await notify(
        ctx,
        args.actorId,
        args.spaceId,
        "roleChanged",
        `@${ctx.caller.handle} made you ${args.role} in ${ctx.caller.spaceDoc().name}` +
          (args.role === "viewer" ? " (you can read everything and write nothing)" : ""),
        { data: { from: m.role, to: args.role, byHandle: ctx.caller.handle } },
      );
    }
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
    await audit(
      ctx,
      args.spaceId,
      "member.removed",
      { handle: m.handle, byHandle: ctx.caller.handle },
      { actorId: ctx.caller.actorId },
    );
    if (args.actorId !== ctx.caller.actorId) {
      await notify(ctx, args.actorId, args.spaceId, "removed", `@${ctx.caller.handle} removed you from ${ctx.caller.spaceDoc().name}`, {
        data: { byHandle: ctx.caller.handle },
      });
    }
    return null;
  },
});
