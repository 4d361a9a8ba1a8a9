// Discussion messages: mentions (`@handle`, `@all`), artifact refs (`#slug`), threads, streamed
// agent replies, decisions and open questions. Twin of backend/model/messages.py.
//
// Parsing rule (also in docs/API.md): `@handle` = `@` not preceded by a word character, then
// `[A-Za-z0-9][A-Za-z0-9_.-]*` minus trailing `. - _ /`; it counts when a member of the space
// has that handle (`@all` = every member but the author). `#slug` = `#` not preceded by a word
// character, then `[A-Za-z0-9][A-Za-z0-9_./-]*` minus trailing punctuation, lowercased; it
// counts when an artifact of the space has that slug. Anything else stays plain text.
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader, MutationCtx } from "./_generated/server";
import { mutation, query, type GuardedMutationCtx } from "./_auth";
import { fail, invalid } from "./_errors";
import { rowLimit } from "./_limits";
import * as live from "./_live";
import * as usage from "./_usage";
import { cpLen, cpSlice, getIn, notify, parseMentions, parseRefs, pyStrip } from "./_util";
import { insertRun } from "./runs";

export const MAX_BODY = 200_000;
const MAX_AGENT_RUNS = 5; // agents one message sets to work (DESIGN: up to 5 agents)
const TASK = v.union(v.literal("reply"), v.literal("revise"));
const DEFAULT_LIMIT = 100;

type Parsed = { mentions: Id<"actors">[]; mentionsAll: boolean; refs: Id<"artifacts">[] };

async function resolveBody(db: DatabaseReader, spaceId: Id<"spaces">, body: string): Promise<Parsed> {
  const mentions: Id<"actors">[] = [];
  let mentionsAll = false;
  for (const handle of parseMentions(body)) {
    if (handle.toLowerCase() === "all") {
      mentionsAll = true;
      continue;
    }
    const members = await db
      .query("members")
      .withIndex("by_space_handle", (q) => q.eq("spaceId", spaceId).eq("handle", handle))
      .collect();
    for (const m of members) if (!mentions.includes(m.actorId)) mentions.push(m.actorId);
  }
  const refs: Id<"artifacts">[] = [];
  for (const slug of parseRefs(body)) {
    const a = await db
      .query("artifacts")
      .withIndex("by_space_slug", (q) => q.eq("spaceId", spaceId).eq("slug", slug))
      .first();
    if (a !== null && !refs.includes(a._id)) refs.push(a._id);
  }
  return { mentions, mentionsAll, refs };
}

type MessageFields = Pick<Doc<"messages">, "_id" | "spaceId" | "authorId" | "authorHandle" | "body" | "mentions" | "mentionsAll">;

async function notifyMentions(ctx: MutationCtx, msg: MessageFields): Promise<void> {
  const targets = msg.mentions.filter((a) => a !== msg.authorId);
  if (msg.mentionsAll) {
    const members = await ctx.db
      .query("members")
      .withIndex("by_space", (q) => q.eq("spaceId", msg.spaceId))
      .collect();
    for (const m of members) {
      if (m.actorId !== msg.authorId && !targets.includes(m.actorId)) targets.push(m.actorId);
    }
  }
  const preview = cpSlice(msg.body, 0, 140);
  for (const actorId of targets) {
    await notify(ctx, actorId, msg.spaceId, "mention", `@${msg.authorHandle}: ${preview}`, { messageId: msg._id });
  }
}

/** One run per agent the message addresses (mentioned, or every agent for `@all`). */
async function queueRuns(
  ctx: GuardedMutationCtx,
  msg: MessageFields & { threadId?: Id<"messages"> },
  task: "reply" | "revise",
  target: Id<"artifacts"> | undefined,
): Promise<Id<"runs">[]> {
  const members = await ctx.db
    .query("members")
    .withIndex("by_space", (q) => q.eq("spaceId", msg.spaceId))
    .collect();
  const agents = members.filter((m) => m.kind === "agent" && m.role !== "viewer" && m.actorId !== msg.authorId);
  const order = new Map(msg.mentions.map((a, i) => [a, i] as const));
  const chosen = agents
    .filter((m) => msg.mentionsAll || order.has(m.actorId))
    .sort((a, b) => (order.get(a.actorId) ?? order.size) - (order.get(b.actorId) ?? order.size))
    .slice(0, MAX_AGENT_RUNS);
  // asking agents costs money: refused (and nothing posted) past the budget
  if (chosen.length > 0) await usage.checkBudget(ctx.db, ctx.caller.spaceDoc());
  const thread = msg.threadId ?? msg._id;
  const runs: Id<"runs">[] = [];
  for (const m of chosen) {
    const [kind, artifact] = task === "revise" ? (["revise", target] as const) : (["discussion", undefined] as const);
    runs.push(
      await insertRun(
        ctx,
        msg.spaceId,
        m.actorId,
        kind,
        { task, threadId: thread, body: msg.body },
        { artifactId: artifact, messageId: msg._id, maxAttempts: 1 },
      ),
    );
  }
  return runs;
}

type Linked = { threadId?: Id<"messages">; artifactId?: Id<"artifacts">; runId?: Id<"runs"> };

/** `threadId` / `artifactId` / `runId` arguments must name documents of this space. */
async function checkedRefs(db: DatabaseReader, args: Linked, spaceId: Id<"spaces">): Promise<void> {
  const linked = [
    ["threadId", "messages"],
    ["artifactId", "artifacts"],
    ["runId", "runs"],
  ] as const;
  for (const [key, table] of linked) {
    const id = args[key];
    if (id !== undefined) {
      const doc = await getIn(db, table, id);
      if (doc === null || doc.spaceId !== spaceId) {
        fail("NOT_FOUND", `${table.slice(0, -1)} ${id} is not in this space`, { what: table.slice(0, -1), id });
      }
    }
  }
}

type NewMessage = Omit<Doc<"messages">, "_id" | "_creationTime">;

/** A new message of the caller in `spaceId`, mentions and refs parsed. */
async function newRow(
  ctx: GuardedMutationCtx,
  spaceId: Id<"spaces">,
  args: Linked,
  body: string,
  state: "streaming" | "done",
): Promise<NewMessage> {
  const caller = ctx.caller;
  const { mentions, mentionsAll, refs } = await resolveBody(ctx.db, spaceId, body);
  const row: NewMessage = {
    spaceId,
    authorId: caller.actorId,
    authorKind: caller.kind,
    authorHandle: caller.handle,
    body,
    mentions,
    mentionsAll,
    refs,
    state,
    decision: false,
    openQuestion: false,
  };
  if (args.threadId !== undefined) {
    const thread = (await ctx.db.get(args.threadId))!;
    row.threadId = thread.threadId ?? thread._id; // replies to replies join the root
  }
  if (args.artifactId !== undefined) row.artifactId = args.artifactId;
  if (args.runId !== undefined) row.runId = args.runId;
  return row;
}

export const post = mutation({
  args: {
    spaceId: v.id("spaces"),
    body: v.string(),
    threadId: v.optional(v.id("messages")),
    artifactId: v.optional(v.id("artifacts")),
    streaming: v.optional(v.boolean()),
    runId: v.optional(v.id("runs")),
    task: v.optional(TASK),
  },
  policy: "editor",
  scope: "space",
  // Post a message (`streaming: true` opens an agent reply to fill with `messages:append`;
  // `messages:openReply` does that and opens its live stream in one step). Mentions and refs
  // are parsed from the body. A human's message that mentions agents (`@handle`, `@all`)
  // queues one run per mentioned agent (at most 5), in this transaction: `task: "reply"`
  // (default) answers in the thread, `task: "revise"` revises the first `#artifact` (or the
  // message's topic artifact). Returns the messageId.
  handler: async (ctx, args) => {
    const caller = ctx.caller;
    const spaceId = args.spaceId;
    if (cpLen(args.body) > MAX_BODY) invalid(`message body is longer than ${MAX_BODY} characters`);
    if (!args.streaming && !pyStrip(args.body)) invalid("message body is empty");
    await checkedRefs(ctx.db, args, spaceId);
    const row = await newRow(ctx, spaceId, args, args.body, args.streaming ? "streaming" : "done");
    const task = args.task ?? "reply";
    const target = row.refs.length > 0 ? row.refs[0] : args.artifactId;
    if (task === "revise" && target === undefined) {
      invalid("a revise request needs an #artifact reference (or a topic artifact)");
    }
    const msgId = await ctx.db.insert("messages", row);
    if (row.state === "done") {
      await notifyMentions(ctx, { ...row, _id: msgId });
      // agents mentioning agents never start runs: no reply loops
      if (caller.kind === "human") await queueRuns(ctx, { ...row, _id: msgId }, task, target);
    }
    return msgId;
  },
});

export const openReply = mutation({
  args: {
    spaceId: v.id("spaces"),
    key: v.string(),
    threadId: v.optional(v.id("messages")),
    artifactId: v.optional(v.id("artifacts")),
    runId: v.optional(v.id("runs")),
  },
  policy: "editor",
  scope: "space",
  // Open an (agent's) streaming reply and its live stream in one transaction: readers see the
  // empty reply and its tail row appear together, and a failure leaves neither. `key` is the
  // stream's write capability for `streams:push`. Fill it with `messages:append` (the
  // persistence cadence) and end it with `messages:finish`. Returns `{messageId, streamId}`.
  handler: async (ctx, args) => {
    const caller = ctx.caller;
    const spaceId = args.spaceId;
    const now = Date.now();
    if (cpLen(args.key) < live.MIN_KEY) invalid(`key must be at least ${live.MIN_KEY} characters`);
    await checkedRefs(ctx.db, args, spaceId);
    const messageId = await ctx.db.insert("messages", await newRow(ctx, spaceId, args, "", "streaming"));
    const stream: live.NewRow = {
      spaceId,
      actorId: caller.actorId,
      actorHandle: caller.handle,
      kind: "message",
      messageId,
      base: 0,
      text: "",
      seq: 0,
      key: args.key,
      startedAt: now,
      updatedAt: now,
    };
    if (args.runId !== undefined) stream.runId = args.runId;
    return { messageId, streamId: await live.openRow(ctx, stream) };
  },
});

function ownStreaming(ctx: GuardedMutationCtx): Doc<"messages"> {
  const msg = ctx.caller.message();
  if (msg.authorId !== ctx.caller.actorId) fail("NOT_AUTHOR", "only the author streams into this message");
  if (msg.state !== "streaming") {
    fail("NOT_STREAMING", `this message is ${msg.state}, not streaming`, { state: msg.state });
  }
  return msg;
}

export const append = mutation({
  args: { messageId: v.id("messages"), text: v.string() },
  policy: "editor",
  scope: "message",
  // Append streamed text (at the persistence cadence, never per token).
  handler: async (ctx, args): Promise<null> => {
    const msg = ownStreaming(ctx);
    if (cpLen(msg.body) + cpLen(args.text) > MAX_BODY) invalid(`message body is longer than ${MAX_BODY} characters`);
    await ctx.db.patch(msg._id, { body: msg.body + args.text });
    return null;
  },
});

export const finish = mutation({
  args: {
    messageId: v.id("messages"),
    state: v.union(v.literal("done"), v.literal("failed")),
    body: v.optional(v.string()),
    error: v.optional(v.string()),
  },
  policy: "editor",
  scope: "message",
  // End a streamed message (optionally with its final body); mentions and refs of the final
  // text are parsed and notified now.
  handler: async (ctx, args): Promise<null> => {
    const msg = ownStreaming(ctx);
    const body = args.body ?? msg.body;
    const { mentions, mentionsAll, refs } = await resolveBody(ctx.db, msg.spaceId, body);
    const fields = {
      state: args.state,
      body,
      mentions,
      mentionsAll,
      refs,
      ...(args.error !== undefined ? { error: args.error } : {}),
    };
    await ctx.db.patch(msg._id, fields);
    await live.endMessage(ctx, msg._id); // final body and the end of the live tail: one commit
    if (args.state === "done") await notifyMentions(ctx, { ...msg, ...fields });
    return null;
  },
});

export const list = query({
  args: { spaceId: v.id("spaces"), threadId: v.optional(v.id("messages")), limit: v.optional(v.number()) },
  policy: "viewer",
  scope: "space",
  // The latest `limit` (default 100) messages of the space, or of a thread (its root first),
  // oldest first; `limit` at most 1000. Older messages: `messages:page` with `before` = the
  // `_creationTime` of the oldest one here.
  handler: async (ctx, args) => {
    const limit = rowLimit(args.limit, DEFAULT_LIMIT);
    if (args.threadId !== undefined) {
      const threadId = args.threadId;
      const root = await getIn(ctx.db, "messages", threadId);
      if (root === null || root.spaceId !== args.spaceId) {
        fail("NOT_FOUND", "no such thread in this space", { what: "message", id: threadId });
      }
      const replies = await ctx.db
        .query("messages")
        .withIndex("by_thread", (q) => q.eq("threadId", threadId))
        .order("desc")
        .take(limit);
      return [root, ...replies.reverse()];
    }
    const rows = await ctx.db
      .query("messages")
      .withIndex("by_space", (q) => q.eq("spaceId", args.spaceId))
      .order("desc")
      .take(limit);
    return rows.reverse();
  },
});

export const page = query({
  args: {
    spaceId: v.id("spaces"),
    numItems: v.number(),
    cursor: v.union(v.string(), v.null()),
    order: v.optional(v.union(v.literal("desc"), v.literal("asc"))),
    before: v.optional(v.number()),
  },
  policy: "viewer",
  scope: "space",
  // Pages for a virtualised log: `{page, isDone, continueCursor}`, newest first (`order:
  // "desc"`, the default) or oldest first (`"asc"`: where `Home` starts). `before` (a
  // `_creationTime`) keeps only older messages: the pages above `messages:list`. Pages are
  // keyed by creation time, so new messages never shift them; `numItems` at most 1000.
  handler: async (ctx, args) => {
    const numItems = rowLimit(args.numItems, 0, "numItems");
    const before = args.before;
    const result = await ctx.db
      .query("messages")
      .withIndex("by_space", (q) =>
        before !== undefined ? q.eq("spaceId", args.spaceId).lt("_creationTime", before) : q.eq("spaceId", args.spaceId))
      .order(args.order ?? "desc")
      .paginate({ numItems, cursor: args.cursor });
    // The three fields the embedded backend returns (a deployment adds its split hints).
    return { page: result.page, isDone: result.isDone, continueCursor: result.continueCursor };
  },
});

export const markDecision = mutation({
  args: { messageId: v.id("messages"), decision: v.boolean() },
  policy: "editor",
  scope: "message",
  handler: async (ctx, args): Promise<null> => {
    await ctx.db.patch(args.messageId, { decision: args.decision, markedBy: ctx.caller.actorId });
    return null;
  },
});

export const markQuestion = mutation({
  args: { messageId: v.id("messages"), open: v.boolean() },
  policy: "editor",
  scope: "message",
  // Mark (`open: true`) or resolve an open question.
  handler: async (ctx, args): Promise<null> => {
    await ctx.db.patch(args.messageId, { openQuestion: args.open, markedBy: ctx.caller.actorId });
    return null;
  },
});

export const outline = query({
  args: { spaceId: v.id("spaces") },
  policy: "viewer",
  scope: "space",
  // What is listed beside the thread: `{decisions, openQuestions}`, oldest first.
  handler: async (ctx, args) => {
    const decisions = await ctx.db
      .query("messages")
      .withIndex("by_space_decision", (q) => q.eq("spaceId", args.spaceId).eq("decision", true))
      .collect();
    const openQuestions = await ctx.db
      .query("messages")
      .withIndex("by_space_question", (q) => q.eq("spaceId", args.spaceId).eq("openQuestion", true))
      .collect();
    return { decisions, openQuestions };
  },
});
