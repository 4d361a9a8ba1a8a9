// Artifacts (documents, code, notes...) and their immutable versions: twin of
// backend/model/artifacts.py.
//
// Content changes only through `save` / `restore` (and `variations:pick`), which carry the
// fencing token of a live lock hold: fence check, new version, release, grant to the queue head
// and audit happen in one transaction (DESIGN 2.4, `_versions.ts`).
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, type DatabaseReader } from "./_generated/server";
import { mutation, query } from "./_auth";
import { fail, invalid } from "./_errors";
import * as live from "./_live";
import { rowLimit } from "./_limits";
import * as lk from "./_lockcore";
import { finishRun } from "./runs";
import { audit, checkSlug, cpLen, pyRepr, pyStrip, slugify } from "./_util";
import { checkContent, commitVersion } from "./_versions";

// A deleted artifact's versions, lock holds, drafts, proposals and variation rounds go in
// batches, each its own transaction, so deleting an artifact with a long history stays within a
// transaction's limits.
const PURGE_BATCH = 16;

async function uniqueSlug(db: DatabaseReader, spaceId: Id<"spaces">, wanted: string): Promise<string> {
  let slug = wanted;
  let n = 2;
  for (;;) {
    const s = slug;
    const taken = await db
      .query("artifacts")
      .withIndex("by_space_slug", (q) => q.eq("spaceId", spaceId).eq("slug", s))
      .first();
    if (taken === null) return slug;
    slug = `${wanted}-${n}`;
    n += 1;
  }
}

function withoutContent<T extends { content: string }>(doc: T): Omit<T, "content"> {
  const { content: _content, ...rest } = doc;
  return rest;
}

export const create = mutation({
  args: {
    spaceId: v.id("spaces"),
    title: v.string(),
    kind: v.string(),
    content: v.string(),
    language: v.optional(v.string()),
    tags: v.optional(v.array(v.string())),
    slug: v.optional(v.string()),
    message: v.optional(v.string()),
  },
  policy: "editor",
  scope: "space",
  // A new artifact at version 1 (with its free lock). Returns the artifactId.
  handler: async (ctx, args) => {
    const title = pyStrip(args.title);
    if (!title || cpLen(title) > 200) invalid("title must be 1-200 characters");
    checkContent(args.content);
    const actor = ctx.caller.actor!;
    const now = Date.now();
    const slug = await uniqueSlug(ctx.db, args.spaceId, args.slug !== undefined ? checkSlug(args.slug) : slugify(title));
    const artifactId = await ctx.db.insert("artifacts", {
      spaceId: args.spaceId,
      slug,
      title,
      kind: args.kind,
      content: args.content,
      version: 1,
      tags: args.tags ?? [],
      createdBy: actor._id,
      updatedBy: actor._id,
      updatedAt: now,
      ...(args.language !== undefined ? { language: args.language } : {}),
    });
    await ctx.db.insert("versions", {
      artifactId,
      spaceId: args.spaceId,
      version: 1,
      content: args.content,
      authorId: actor._id,
      source: actor.kind,
      at: now,
      ...(args.message !== undefined ? { message: args.message } : {}),
    });
    await ctx.db.insert("locks", { artifactId, spaceId: args.spaceId, epoch: 0 });
    await audit(ctx, args.spaceId, "artifact.created", { title, slug, kind: args.kind }, { artifactId, actorId: actor._id });
    return artifactId;
  },
});

export const get = query({
  args: { artifactId: v.id("artifacts") },
  policy: "viewer",
  scope: "artifact",
  // The artifact with its lock state (holder, human or agent, since, expiresAt, queue); never
  // the token.
  handler: async (ctx, args) => ({
    ...ctx.caller.artifact(),
    lock: await lk.lockState(ctx.db, await lk.lockOf(ctx.db, args.artifactId)),
  }),
});

export const list = query({
  args: { spaceId: v.id("spaces"), kind: v.optional(v.string()), tag: v.optional(v.string()) },
  policy: "viewer",
  scope: "space",
  // Artifacts of a space without their content (tree view); lock badges: `locks:list`.
  handler: async (ctx, args) => {
    let q = ctx.db.query("artifacts").withIndex("by_space", (r) => r.eq("spaceId", args.spaceId));
    if (args.kind !== undefined) {
      const kind = args.kind;
      q = q.filter((f) => f.eq(f.field("kind"), kind));
    }
    const out = [];
    for (const a of await q.collect()) {
      if (args.tag !== undefined && !a.tags.includes(args.tag)) continue;
      out.push(withoutContent(a));
    }
    return out;
  },
});

export const history = query({
  args: { artifactId: v.id("artifacts"), limit: v.optional(v.number()), includeContent: v.optional(v.boolean()) },
  policy: "viewer",
  scope: "artifact",
  // Versions, newest first (content only with `includeContent`): the newest `limit` (default
  // and at most 1000; older ones: `artifacts:historyPage`).
  handler: async (ctx, args) => {
    const q = ctx.db
      .query("versions")
      .withIndex("by_artifact_version", (r) => r.eq("artifactId", args.artifactId))
      .order("desc");
    const rows = await q.take(rowLimit(args.limit, 1000));
    if (args.includeContent) return rows;
    return rows.map(withoutContent);
  },
});

export const historyPage = query({
  args: {
    artifactId: v.id("artifacts"),
    numItems: v.number(),
    cursor: v.union(v.string(), v.null()),
    includeContent: v.optional(v.boolean()),
  },
  policy: "viewer",
  scope: "artifact",
  // Every version, newest first, in pages (`{page, isDone, continueCursor}`; content only with
  // `includeContent`). `numItems` at most 1000.
  handler: async (ctx, args) => {
    const result = await ctx.db
      .query("versions")
      .withIndex("by_artifact_version", (r) => r.eq("artifactId", args.artifactId))
      .order("desc")
      .paginate({ numItems: rowLimit(args.numItems, 0, "numItems"), cursor: args.cursor });
    const page = args.includeContent ? result.page : result.page.map(withoutContent);
    return { page, isDone: result.isDone, continueCursor: result.continueCursor };
  },
});

async function versionRow(db: DatabaseReader, artifactId: Id<"artifacts">, version: number): Promise<Doc<"versions">> {
  const row = await db
    .query("versions")
    .withIndex("by_artifact_version", (r) => r.eq("artifactId", artifactId).eq("version", version))
    .unique();
  if (row === null) fail("NOT_FOUND", `version ${version} does not exist`, { what: "version", id: String(version) });
  return row;
}

export const version = query({
  args: { artifactId: v.id("artifacts"), version: v.number() },
  policy: "viewer",
  scope: "artifact",
  // One version with its content (for diffs).
  handler: async (ctx, args) => versionRow(ctx.db, args.artifactId, args.version),
});

export const save = mutation({
  args: {
    artifactId: v.id("artifacts"),
    token: v.number(),
    content: v.string(),
    message: v.optional(v.string()),
    idempotencyKey: v.optional(v.string()),
    source: v.optional(v.literal("merge")),
  },
  policy: "editor",
  scope: "artifact",
  // Save under the lock: new version, then the lock is released and granted to the queue head.
  // Returns `{version, versionId, grantedTo}`.
  handler: async (ctx, args) =>
    commitVersion(ctx, ctx.caller.artifact(), args, "artifacts:save", args.content, args.source ?? ctx.caller.kind),
});

export const restore = mutation({
  args: {
    artifactId: v.id("artifacts"),
    token: v.number(),
    version: v.number(),
    message: v.optional(v.string()),
    idempotencyKey: v.optional(v.string()),
  },
  policy: "editor",
  scope: "artifact",
  // Make an old version the next one (a new version; history is never rewritten).
  handler: async (ctx, args) => {
    const old = await versionRow(ctx.db, args.artifactId, args.version);
    const msg = { ...args, message: args.message || `restore version ${args.version}` };
    return commitVersion(ctx, ctx.caller.artifact(), msg, "artifacts:restore", old.content, ctx.caller.kind, {
      restoredFrom: args.version,
    });
  },
});

export const update = mutation({
  args: {
    artifactId: v.id("artifacts"),
    title: v.optional(v.string()),
    tags: v.optional(v.array(v.string())),
    language: v.optional(v.string()),
    kind: v.optional(v.string()),
  },
  policy: "editor",
  scope: "artifact",
  // Metadata only (title, tags, language, kind): no lock, content is untouched.
  handler: async (ctx, args): Promise<null> => {
    const fields: { title?: string; tags?: string[]; language?: string; kind?: string } = {};
    if (args.title !== undefined) fields.title = args.title;
    if (args.tags !== undefined) fields.tags = args.tags;
    if (args.language !== undefined) fields.language = args.language;
    if (args.kind !== undefined) fields.kind = args.kind;
    if (fields.title !== undefined && !pyStrip(fields.title)) invalid("title must not be empty");
    if (Object.keys(fields).length > 0) {
      await ctx.db.patch(args.artifactId, fields);
      await audit(ctx, ctx.caller.spaceDoc()._id, "artifact.updated", fields, {
        artifactId: args.artifactId,
        actorId: ctx.caller.actorId,
      });
    }
    return null;
  },
});

// `delete` is a reserved word in TypeScript: declared as `remove`, exported as `delete`, so the
// udfPath is `artifacts:delete` on both backends.
const remove = mutation({
  args: { artifactId: v.id("artifacts") },
  policy: "editor",
  scope: "artifact",
  // Delete the artifact. Refused with `LOCKED` while someone else holds its lock (a lease that
  // already ended does not count); the caller's own hold ends with it. Its waiters leave the
  // queue, its unfinished runs are cancelled, its live tails end, and an `artifact.deleted`
  // audit row keeps its title, slug and last version. Its versions, lock holds, drafts,
  // proposals and variation rounds are purged after the commit (`artifacts:purge`, in
  // batches); nothing lists them once the artifact is gone. Returns `{deleted: true, title,
  // slug, version}`.
  handler: async (ctx, args) => {
    const art = ctx.caller.artifact();
    let lock = await lk.expireIfDue(ctx, await lk.lockOf(ctx.db, args.artifactId));
    const holder = lk.holderInfo(lock);
    if (holder !== null && holder.actorId !== ctx.caller.actorId) {
      fail("LOCKED", `@${holder.handle} is editing ${pyRepr(art.title)}: it can be deleted once the lock is free`, {
        holder,
        queueLength: (await lk.waiters(ctx.db, args.artifactId)).length,
      });
    }
    if (holder !== null) lock = await lk.endHold(ctx, lock, "released", { by: ctx.caller.actor });
    for (const waiter of await lk.waiters(ctx.db, args.artifactId)) {
      await ctx.db.delete(waiter._id);
      await lk.updateRemembered(ctx, waiter.actorId, waiter.idempotencyKey, { status: "cancelled" });
    }
    if (lock.expiryJobId) await ctx.scheduler.cancel(lock.expiryJobId as Id<"_scheduled_functions">);
    await ctx.db.delete(lock._id);
    const reason = `the artifact was deleted by @${ctx.caller.handle}`;
    for (const status of ["queued", "claimed", "streaming"] as const) {
      // first: a cancelled run closes its streams keeping their text (replies, proposals)
      const runs = await ctx.db
        .query("runs")
        .withIndex("by_space_status", (q) => q.eq("spaceId", art.spaceId).eq("status", status))
        .filter((q) => q.eq(q.field("artifactId"), args.artifactId))
        .collect();
      for (const run of runs) await finishRun(ctx, run, "cancelled", { error: reason });
    }
    const rows = await ctx.db
      .query("liveStreams")
      .withIndex("by_artifact", (q) => q.eq("artifactId", args.artifactId))
      .collect();
    for (const row of rows) await live.closeRow(ctx, row, reason, "cancelled");
    await ctx.db.delete(art._id);
    const facts = { title: art.title, slug: art.slug, version: art.version };
    await audit(ctx, art.spaceId, "artifact.deleted", facts, { artifactId: art._id, actorId: ctx.caller.actorId });
    await ctx.scheduler.runAfter(0, internal.artifacts.purge, { artifactId: art._id });
    return { deleted: true, ...facts };
  },
});
export { remove as delete };

export const purge = internalMutation({
  args: { artifactId: v.id("artifacts") },
  // One batch of a deleted artifact's rows: variation rounds (with their variations),
  // proposals, versions, lock holds, drafts. Schedules the next batch while any may remain.
  // Returns how many rows it deleted.
  handler: async (ctx, args): Promise<number> => {
    const aid = args.artifactId;
    if ((await ctx.db.get(aid)) !== null) return 0; // not deleted (never scheduled so)
    let left = PURGE_BATCH;
    const rounds = await ctx.db
      .query("variationRounds")
      .withIndex("by_artifact", (q) => q.eq("artifactId", aid))
      .take(left);
    for (const rnd of rounds) {
      const rows = await ctx.db
        .query("variations")
        .withIndex("by_round", (q) => q.eq("roundId", rnd._id))
        .take(left);
      for (const row of rows) {
        await ctx.db.delete(row._id);
        left -= 1;
      }
      if (left === 0) break;
      await ctx.db.delete(rnd._id);
      left -= 1;
      if (left === 0) break;
    }
    if (left > 0) {
      for (const row of await ctx.db.query("proposals").withIndex("by_artifact", (q) => q.eq("artifactId", aid)).take(left)) {
        await ctx.db.delete(row._id);
        left -= 1;
      }
    }
    if (left > 0) {
      const versions = await ctx.db
        .query("versions")
        .withIndex("by_artifact_version", (q) => q.eq("artifactId", aid))
        .take(left);
      for (const row of versions) {
        await ctx.db.delete(row._id);
        left -= 1;
      }
    }
    if (left > 0) {
      for (const row of await ctx.db.query("lockHolds").withIndex("by_artifact_epoch", (q) => q.eq("artifactId", aid)).take(left)) {
        await ctx.db.delete(row._id);
        left -= 1;
      }
    }
    if (left > 0) {
      for (const row of await ctx.db.query("drafts").withIndex("by_artifact_epoch", (q) => q.eq("artifactId", aid)).take(left)) {
        await ctx.db.delete(row._id);
        left -= 1;
      }
    }
    if (left === 0) await ctx.scheduler.runAfter(0, internal.artifacts.purge, { artifactId: aid });
    return PURGE_BATCH - left;
  },
});
