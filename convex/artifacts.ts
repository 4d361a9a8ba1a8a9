// Artifacts (documents, code, notes...) and their immutable versions: twin of
// backend/model/artifacts.py.
//
// Content changes only through `save` / `restore` (and `variations:pick`), which carry the
// fencing token of a live lock hold: fence check, new version, release, grant to the queue head
// and audit happen in one transaction (DESIGN 2.4, `_versions.ts`).
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader } from "./_generated/server";
import { mutation, query } from "./_auth";
import { fail, invalid } from "./_errors";
import * as lk from "./_lockcore";
import { audit, checkSlug, cpLen, pyStrip, slugify } from "./_util";
import { checkContent, commitVersion } from "./_versions";

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
  // Versions, newest first (content only with `includeContent`).
  handler: async (ctx, args) => {
    const q = ctx.db
      .query("versions")
      .withIndex("by_artifact_version", (r) => r.eq("artifactId", args.artifactId))
      .order("desc");
    const rows = args.limit !== undefined ? await q.take(Math.max(0, Math.trunc(args.limit))) : await q.collect();
    if (args.includeContent) return rows;
    return rows.map(withoutContent);
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
