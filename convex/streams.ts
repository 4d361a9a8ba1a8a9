// Live streams: the UI cadence of agent output (DESIGN 2.5). Twin of backend/model/streams.py.
//
// An agent streaming a reply or a draft writes at two cadences:
// - persistence (~250 ms): `messages:append` / fenced `drafts:append`, the source of truth;
// - UI (~30 ms): `streams:push`, one mutation per tick for all the worker's active streams, into
//   `liveStreams` (one small row per stream: the tail not yet persisted).
// Readers subscribe to `streams:forSpace` / `forMessage` / `forArtifact` and show
// `merge(durable, row)` (see _live.ts). Because the rows live in their own table, a message list
// or a document is re-run at the persistence cadence only.
//
// Pushes carry a per-stream write `key` chosen by the opener (a capability), so one worker
// connection can push for several agents, each of which opened its own streams under its own
// identity. The key is never returned by a query.
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation } from "./_generated/server";
import { mutation, query } from "./_auth";
import { fail, invalid } from "./_errors";
import * as live from "./_live";
import * as lk from "./_lockcore";
import { cpLen, cpSlice, getIn } from "./_util";
import { MAX_BODY } from "./messages";
import { STREAM_KIND } from "./schema";

export const STALE_MS = live.STALE_MS;
const MIN_KEY = live.MIN_KEY;
const MAX_CHUNKS = 64;
const MAX_CHUNK_TEXT = 100_000;

const CHUNK = v.object({
  streamId: v.id("liveStreams"),
  key: v.string(),
  text: v.string(),
  seq: v.number(),
  base: v.optional(v.number()),
});


export const open = mutation({
  args: {
    spaceId: v.id("spaces"),
    kind: STREAM_KIND,
    key: v.string(),
    messageId: v.optional(v.id("messages")),
    artifactId: v.optional(v.id("artifacts")),
    token: v.optional(v.number()),
    runId: v.optional(v.id("runs")),
  },
  policy: "editor",
  scope: "space",
  // Open a live stream on the caller's streaming message (`kind: "message"`) or on the draft of
  // the caller's lock hold (`kind: "draft"`, with the fencing `token`). Opening the same target
  // again with the same key returns the same stream. Returns the streamId.
  handler: async (ctx, args) => {
    const caller = ctx.caller;
    const spaceId = args.spaceId;
    const now = Date.now();
    if (cpLen(args.key) < MIN_KEY) invalid(`key must be at least ${MIN_KEY} characters`);
    if (args.runId !== undefined) {
      const run = await getIn(ctx.db, "runs", args.runId);
      if (run === null || run.spaceId !== spaceId) {
        fail("NOT_FOUND", `run ${args.runId} is not in this space`, { what: "run", id: args.runId });
      }
    }
    let row: live.NewRow;
    let existing: Doc<"liveStreams"> | null;
    const common = {
      spaceId,
      actorId: caller.actorId,
      actorHandle: caller.handle,
      kind: args.kind,
      text: "",
      seq: 0,
      key: args.key,
      startedAt: now,
      updatedAt: now,
    };
    if (args.kind === "message") {
      if (args.messageId === undefined) invalid("a message stream needs messageId");
      const msg = await getIn(ctx.db, "messages", args.messageId);
      if (msg === null || msg.spaceId !== spaceId) {
        fail("NOT_FOUND", `message ${args.messageId} is not in this space`, { what: "message", id: args.messageId });
      }
      if (msg.authorId !== caller.actorId) fail("NOT_AUTHOR", "only the author streams into this message");
      if (msg.state !== "streaming") {
        fail("NOT_STREAMING", `this message is ${msg.state}, not streaming`, { state: msg.state });
      }
      existing = await ctx.db
        .query("liveStreams")
        .withIndex("by_message", (q) => q.eq("messageId", msg._id))
        .first();
      row = { ...common, messageId: msg._id, base: cpLen(msg.body) };
    } else {
      if (args.artifactId === undefined || args.token === undefined) invalid("a draft stream needs artifactId and token");
      const artifact = await getIn(ctx.db, "artifacts", args.artifactId);
      if (artifact === null || artifact.spaceId !== spaceId) {
        fail("NOT_FOUND", `artifact ${args.artifactId} is not in this space`, { what: "artifact", id: args.artifactId });
      }
      const lock = await lk.checkFence(ctx, caller.actorId, artifact._id, args.token);
      const draft = await ctx.db
        .query("drafts")
        .withIndex("by_artifact_epoch", (q) => q.eq("artifactId", artifact._id).eq("epoch", lock.epoch))
        .unique();
      const rows = await ctx.db
        .query("liveStreams")
        .withIndex("by_artifact", (q) => q.eq("artifactId", artifact._id))
        .collect();
      existing = rows.find((r) => r.kind === "draft" && r.epoch === lock.epoch) ?? null;
      row = { ...common, artifactId: artifact._id, epoch: lock.epoch, base: draft !== null ? cpLen(draft.content) : 0 };
    }
    if (existing !== null) {
      if (existing.key !== args.key) {
        fail("STREAM_OPEN", "another stream is already open on this target", { streamId: existing._id });
      }
      return existing._id;
    }
    if (args.runId !== undefined) row.runId = args.runId;
    return await live.openRow(ctx, row);
  },
});

type PushStatus = "ok" | "duplicate" | "closed" | "forbidden" | "tooLong";

export const push = mutation({
  args: { chunks: v.array(CHUNK) },
  policy: "authenticated",
  // Append new text to several streams in one commit (one call per UI tick for all of a
  // worker's streams). A chunk's `base` (the durable length its writer has had acknowledged)
  // drops the part of the tail that is now durable. Each chunk gets its own status, so one
  // closed stream never fails the others: `ok`, `duplicate` (`seq` at or below the last
  // applied), `closed` (no such stream any more), `forbidden` (wrong key), `tooLong`. Returns
  // `[{streamId, status, seq}]`.
  handler: async (ctx, args) => {
    const chunks = args.chunks;
    if (chunks.length > MAX_CHUNKS) invalid(`at most ${MAX_CHUNKS} chunks per push`);
    const now = Date.now();
    const out: { streamId: Id<"liveStreams">; status: PushStatus; seq: number | null }[] = [];
    for (const chunk of chunks) {
      const row = await getIn(ctx.db, "liveStreams", chunk.streamId);
      let status: PushStatus = "ok";
      if (row === null) status = "closed";
      else if (row.key !== chunk.key) status = "forbidden";
      else if (chunk.seq <= row.seq) status = "duplicate";
      else if (cpLen(chunk.text) > MAX_CHUNK_TEXT) status = "tooLong";
      if (row === null || status !== "ok") {
        out.push({ streamId: chunk.streamId, status, seq: row !== null ? row.seq : null });
        continue;
      }
      let tail = row.text + chunk.text;
      let base = row.base;
      const announced = chunk.base ?? base;
      if (announced > base) {
        tail = cpSlice(tail, Math.trunc(announced - base));
        base = announced;
      }
      if (cpLen(tail) > MAX_BODY) {
        out.push({ streamId: row._id, status: "tooLong", seq: row.seq });
        continue;
      }
      await ctx.db.patch(row._id, { text: tail, base, seq: chunk.seq, updatedAt: now });
      out.push({ streamId: row._id, status: "ok", seq: chunk.seq });
    }
    return out;
  },
});

export const close = mutation({
  args: { streamId: v.id("liveStreams"), key: v.string() },
  policy: "authenticated",
  // Delete a live row (a finished stream). `messages:finish`, a saved / released / lost lock
  // hold and a failed or cancelled run close their streams themselves. Returns whether a row
  // was deleted.
  handler: async (ctx, args): Promise<boolean> => {
    const row = await getIn(ctx.db, "liveStreams", args.streamId);
    if (row === null) return false;
    if (row.key !== args.key) fail("FORBIDDEN", "this stream's key does not match", { required: "key", role: null });
    await live.closeRow(ctx, row);
    return true;
  },
});

export const forSpace = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  // Every live stream of the space (discussion pane: tails of streaming replies; tree: drafts
  // being written), oldest first.
  handler: async (ctx, args) => {
    const rows = await ctx.db
      .query("liveStreams")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .collect();
    return rows.map((r) => live.publicRow(r)!);
  },
});

export const forMessage = query({
  args: { messageId: v.id("messages") },
  policy: "viewer",
  scope: "message",
  // The live tail of a streaming message, or null.
  handler: async (ctx, args) =>
    live.publicRow(
      await ctx.db
        .query("liveStreams")
        .withIndex("by_message", (q) => q.eq("messageId", args.messageId))
        .first(),
    ),
});

export const forArtifact = query({
  args: { artifactId: v.id("artifacts") },
  policy: "viewer",
  scope: "artifact",
  // The live tail of the draft being streamed into the artifact (by its current holder), or
  // null. Show it after `drafts:get`'s content with the merge rule.
  handler: async (ctx, args) => {
    const rows = await ctx.db
      .query("liveStreams")
      .withIndex("by_artifact", (q) => q.eq("artifactId", args.artifactId))
      .collect();
    const drafts = rows.filter((r) => r.kind === "draft");
    return live.publicRow(drafts.length > 0 ? drafts[drafts.length - 1]! : null);
  },
});

/** Sweeper: close a stream nobody pushed to for `STALE_MS` (its message is marked failed, with
 * the text it had); a live one is checked again later (one job per stream per `STALE_MS`, not
 * one per push). A stream whose run is still claimed by a live worker is not abandoned, only
 * waiting (a model serving other runs first): the run's own lease expiry closes it if its
 * worker goes away. */
export const expire = internalMutation({
  args: { streamId: v.id("liveStreams") },
  handler: async (ctx, args): Promise<boolean> => {
    const row = await ctx.db.get(args.streamId);
    if (row === null) return false;
    const now = Date.now();
    let due = row.updatedAt + STALE_MS;
    const run = row.runId ? await getIn(ctx.db, "runs", row.runId) : null;
    if (run !== null && (run.status === "claimed" || run.status === "streaming") && (run.leaseExpiresAt ?? 0) > now) {
      due = Math.max(due, now + STALE_MS);
    }
    if (due > now) {
      await ctx.db.patch(row._id, { expiryJobId: await live.scheduleExpiry(ctx, row._id, due) });
      return false;
    }
    // This job is the row's expiry job: close it without cancelling the running job.
    await live.closeRow(ctx, { ...row, expiryJobId: undefined }, "the stream stopped (its writer went away)");
    return true;
  },
});
