// Variations (DESIGN 1.2): N versions of an artifact streamed side by side, starred onto a
// shortlist, one picked as the next version, or parts of several composed; then N more. Twin of
// backend/model/variations.py.
//
// A **round** belongs to an artifact: an instruction, N variations (each a proposal written by
// one agent's run, at the round's temperature for it), the parent round and the shortlist it
// started from. Rounds are kept. `variations:start` queues the N runs in its transaction;
// `variations:more` starts the next round from the parent's stars and a note. Stars are the
// space's shared shortlist. `variations:pick` makes a finished variation the next version
// through the lock (the caller holds it: the fenced save of `artifacts:save`, with the
// variation and round recorded on the version). `variations:compose` merges line ranges of
// several variations into a new one whose provenance lists every part: a plain concatenation
// when there is no instruction and the parts do not overlap, otherwise an agent's run.
import { v, type Value } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { DatabaseReader } from "./_generated/server";
import { membership, mutation, query, type GuardedMutationCtx } from "./_auth";
import { fail, invalid } from "./_errors";
import { audit, cpLen, getIn, pyG, pyStrip } from "./_util";
import { commitVersion } from "./_versions";
import { finishRun, insertRun } from "./runs";

const MAX_N = 10; // never more variations in a round
const DEFAULT_MAX_N = 5; // unless the flow allows more (its `maxN`, at most MAX_N)
const MAX_INSTRUCTION = 4_000;
const MAX_PARTS = 20;
const RANGE = v.object({ start: v.number(), end: v.number() });
const PART = v.object({ variationId: v.id("variations"), range: RANGE });
const UNFINISHED = ["queued", "streaming"];
const TERMINAL = ["done", "failed", "cancelled"];

type Author = { actorId: Id<"actors">; kind: "human" | "agent"; handle: string };
type Temperature = number | null;

// ---------------------------------------------------------------------------- helpers

/** Agent members (editors) by handle, in the order asked; all of them by default. */
async function agentsOf(db: DatabaseReader, spaceId: Id<"spaces">, handles: string[] | undefined): Promise<Doc<"members">[]> {
  const all = await db
    .query("members")
    .withIndex("by_space", (q) => q.eq("spaceId", spaceId))
    .collect();
  const members = all.filter((m) => m.kind === "agent" && m.role !== "viewer");
  if (handles === undefined || handles.length === 0) {
    if (members.length === 0) invalid("no agent in this space can write variations: add an agent member first");
    return members;
  }
  const byHandle = new Map(members.map((m) => [m.handle, m] as const));
  const unknown = handles.filter((h) => !byHandle.has(h));
  if (unknown.length > 0) {
    invalid(`not an agent (editor) of this space: ${unknown.map((h) => "@" + h).join(", ")}`, { handles: unknown });
  }
  return handles.map((h) => byHandle.get(h)!);
}

function checkN(n: number, maxN: number | undefined): number {
  const limit = maxN !== undefined ? Math.min(Math.trunc(maxN), MAX_N) : DEFAULT_MAX_N;
  if (maxN !== undefined && !(1 <= maxN && maxN <= MAX_N)) invalid(`maxN must be between 1 and ${MAX_N}`, { maxN });
  if (n !== Math.trunc(n) || !(1 <= n && n <= limit)) {
    invalid(`N must be a whole number from 1 to ${limit}`, { n, max: limit });
  }
  return n;
}

type Round = Doc<"variationRounds">;

/** A proposal and its variation row in the round: [variationId, proposalId]. */
async function newVariation(
  ctx: GuardedMutationCtx,
  rnd: Round,
  index: number,
  author: Author,
  opts: {
    composed: boolean;
    content?: string;
    status?: "queued" | "done";
    temperature?: Temperature;
    provenance?: Record<string, Value>;
  },
): Promise<[Id<"variations">, Id<"proposals">]> {
  const artifact = (await ctx.db.get(rnd.artifactId))!;
  const proposalId = await ctx.db.insert("proposals", {
    spaceId: rnd.spaceId,
    artifactId: rnd.artifactId,
    authorId: author.actorId,
    authorKind: author.kind,
    authorHandle: author.handle,
    baseVersion: artifact.version,
    content: opts.content ?? "",
    status: opts.status ?? "queued",
    provenance: opts.provenance ?? { kind: "variation", roundId: rnd._id, index },
    updatedAt: Date.now(),
    ...(opts.temperature != null ? { temperature: opts.temperature } : {}),
  });
  const variationId = await ctx.db.insert("variations", {
    spaceId: rnd.spaceId,
    artifactId: rnd.artifactId,
    roundId: rnd._id,
    index,
    proposalId,
    composed: opts.composed,
    starred: false,
    picked: false,
  });
  return [variationId, proposalId];
}

/** A variation written by `agent`'s run (queued in this transaction). */
async function queue(
  ctx: GuardedMutationCtx,
  rnd: Round,
  index: number,
  agent: Author,
  kind: "variation" | "compose",
  temperature: Temperature,
  input: Record<string, Value>,
  provenance?: Record<string, Value>,
): Promise<Id<"variations">> {
  const [variationId, proposalId] = await newVariation(ctx, rnd, index, agent, {
    composed: kind === "compose",
    temperature,
    ...(provenance !== undefined ? { provenance } : {}),
  });
  const runInput: Record<string, Value> = { roundId: rnd._id, variationId, proposalId, index, ...input };
  if (temperature !== null) runInput.temperature = temperature;
  const runId = await insertRun(ctx, rnd.spaceId, agent.actorId, kind, runInput, {
    artifactId: rnd.artifactId,
    maxAttempts: 1,
  });
  await ctx.db.patch(proposalId, { runId });
  return variationId;
}

type RoundExtra = {
  flow?: string;
  flowInstructions?: string;
  note?: string;
  parentRoundId?: Id<"variationRounds">;
  shortlist?: Id<"variations">[];
};

async function newRound(
  ctx: GuardedMutationCtx,
  artifact: Doc<"artifacts">,
  instruction: string,
  n: number,
  agents: Author[],
  temperatures: Temperature[],
  extra: RoundExtra,
) {
  const last = await ctx.db
    .query("variationRounds")
    .withIndex("by_artifact", (q) => q.eq("artifactId", artifact._id))
    .order("desc")
    .first();
  const number = last !== null ? last.number + 1 : 1;
  const roundId = await ctx.db.insert("variationRounds", {
    spaceId: artifact.spaceId,
    artifactId: artifact._id,
    number,
    instruction,
    n,
    agents: Array.from({ length: n }, (_, i) => agents[i % agents.length]!.handle),
    temperatures,
    shortlist: [],
    createdBy: ctx.caller.actorId,
    createdByHandle: ctx.caller.handle,
    ...extra,
  });
  const rnd = (await ctx.db.get(roundId))!;
  const variationIds: Id<"variations">[] = [];
  for (let i = 0; i < n; i++) {
    variationIds.push(await queue(ctx, rnd, i + 1, agents[i % agents.length]!, "variation", temperatures[i] ?? null, {}));
  }
  await audit(
    ctx,
    artifact.spaceId,
    "variations.round",
    { roundId, number, n, parentRoundId: extra.parentRoundId ?? null },
    { artifactId: artifact._id, actorId: ctx.caller.actorId },
  );
  return { roundId, number, variationIds };
}

function checkTemperatures(temps: number[] | undefined, n: number): Temperature[] {
  if (temps === undefined || temps.length === 0) return new Array<Temperature>(n).fill(null);
  if (temps.length !== n) invalid(`give one temperature per variation (${n}), or none`, { temperatures: temps.length });
  for (const t of temps) {
    if (!(0 <= t && t <= 2)) invalid(`temperatures are between 0 and 2 (got ${pyG(t)})`);
  }
  return [...temps];
}

function checkInstruction(raw: string): string {
  const text = pyStrip(raw);
  if (!text) invalid("say what the variations should do (an instruction)");
  if (cpLen(text) > MAX_INSTRUCTION) invalid(`the instruction is longer than ${MAX_INSTRUCTION} characters`);
  return text;
}

async function rowsOf(db: DatabaseReader, roundId: Id<"variationRounds">): Promise<Doc<"variations">[]> {
  return await db
    .query("variations")
    .withIndex("by_round", (q) => q.eq("roundId", roundId))
    .collect();
}

// ---------------------------------------------------------------------------- rounds

export const start = mutation({
  args: {
    artifactId: v.id("artifacts"),
    instruction: v.string(),
    n: v.number(),
    agents: v.optional(v.array(v.string())),
    temperatures: v.optional(v.array(v.number())),
    flow: v.optional(v.string()),
    flowInstructions: v.optional(v.string()),
    maxN: v.optional(v.number()),
  },
  policy: "editor",
  scope: "artifact",
  // A new round of `n` variations of the artifact, their runs queued in this transaction.
  // `agents` (handles) write them in turn (one agent N times with `temperatures`: one per
  // variation, the run's own rather than the agent's); default every agent of the space. A
  // `flow` passes its name, instructions and `maxN` (default 5, at most 10). Returns
  // `{roundId, number, variationIds}`.
  handler: async (ctx, args) => {
    const artifact = ctx.caller.artifact();
    const n = checkN(args.n, args.maxN);
    const agents = await agentsOf(ctx.db, artifact.spaceId, args.agents);
    const extra: RoundExtra = {};
    if (args.flow) extra.flow = args.flow;
    if (args.flowInstructions) extra.flowInstructions = args.flowInstructions;
    const instruction = checkInstruction(args.instruction);
    return await newRound(ctx, artifact, instruction, n, agents, checkTemperatures(args.temperatures, n), extra);
  },
});

export const more = mutation({
  args: {
    roundId: v.id("variationRounds"),
    n: v.optional(v.number()),
    note: v.optional(v.string()),
    maxN: v.optional(v.number()),
  },
  policy: "editor",
  scope: "round",
  // The next round, in the direction of the shortlist: the parent's starred variations (and
  // `note`, what to change) go into every prompt; same instruction, agents and temperatures
  // (cycled to `n`, default the parent's N). Returns `{roundId, number, variationIds}`.
  handler: async (ctx, args) => {
    const parent = ctx.caller.round();
    const n = checkN(args.n ?? parent.n, args.maxN ?? Math.max(parent.n, DEFAULT_MAX_N));
    const shortlist = (await rowsOf(ctx.db, parent._id)).filter((r) => r.starred).map((r) => r._id);
    const note = pyStrip(args.note || "");
    if (shortlist.length === 0 && !note) invalid("star the variations to build on, or say in a note what to change");
    const agents = await agentsOf(ctx.db, parent.spaceId, [...new Set(parent.agents)]);
    const byHandle = new Map(agents.map((a) => [a.handle, a] as const));
    const ordered = parent.agents.filter((h) => byHandle.has(h)).map((h) => byHandle.get(h)!);
    const order = ordered.length > 0 ? ordered : agents;
    const temps =
      parent.temperatures.length > 0
        ? Array.from({ length: n }, (_, i) => parent.temperatures[i % parent.temperatures.length]!)
        : new Array<Temperature>(n).fill(null);
    const extra: RoundExtra = { parentRoundId: parent._id, shortlist };
    if (parent.flow) extra.flow = parent.flow;
    if (parent.flowInstructions) extra.flowInstructions = parent.flowInstructions;
    if (note) extra.note = note;
    return await newRound(ctx, (await ctx.db.get(parent.artifactId))!, parent.instruction, n, order, temps, extra);
  },
});

export const cancel = mutation({
  args: { roundId: v.id("variationRounds"), variationId: v.optional(v.id("variations")) },
  policy: "editor",
  scope: "round",
  // Stop one variation of the round, or all that are still queued or streaming; their workers
  // stop within a second and each keeps the text it had. Returns `{cancelled}`.
  handler: async (ctx, args) => {
    const rnd = ctx.caller.round();
    const reason = `cancelled by @${ctx.caller.handle}`;
    let rows = await rowsOf(ctx.db, rnd._id);
    if (args.variationId !== undefined) {
      rows = rows.filter((r) => r._id === args.variationId);
      if (rows.length === 0) {
        fail("NOT_FOUND", "that variation is not in this round", { what: "variation", id: args.variationId });
      }
    }
    let count = 0;
    for (const row of rows) {
      const prop = await ctx.db.get(row.proposalId);
      if (prop === null || !UNFINISHED.includes(prop.status)) continue;
      const run = prop.runId ? await ctx.db.get(prop.runId) : null;
      if (run !== null && !TERMINAL.includes(run.status)) {
        await finishRun(ctx, run, "cancelled", { error: reason }); // closes the proposal with its text
      } else {
        await ctx.db.patch(prop._id, { status: "cancelled", error: reason, updatedAt: Date.now() });
      }
      count += 1;
    }
    return { cancelled: count };
  },
});

// ---------------------------------------------------------------------------- shortlist and pick

async function setStar(ctx: GuardedMutationCtx, starred: boolean): Promise<null> {
  const row = ctx.caller.variation();
  await ctx.db.patch(row._id, starred ? { starred, starredBy: ctx.caller.actorId } : { starred });
  return null;
}

export const star = mutation({
  args: { variationId: v.id("variations") },
  policy: "editor",
  scope: "variation",
  // Put the variation on the round's shortlist (shared by everyone in the space).
  handler: async (ctx) => setStar(ctx, true),
});

export const unstar = mutation({
  args: { variationId: v.id("variations") },
  policy: "editor",
  scope: "variation",
  handler: async (ctx) => setStar(ctx, false),
});

export const pick = mutation({
  args: {
    variationId: v.id("variations"),
    token: v.number(),
    message: v.optional(v.string()),
    idempotencyKey: v.optional(v.string()),
  },
  policy: "editor",
  scope: "variation",
  // Make a finished variation the artifact's next version, under the caller's lock (`token`):
  // the fenced save of `artifacts:save` (source `agent`, or `merge` for a composition), which
  // releases the lock and hands it to the queue. The version records the variation and the
  // round. Returns `{version, versionId, grantedTo}`.
  handler: async (ctx, args) => {
    const row = ctx.caller.variation();
    const prop = (await ctx.db.get(row.proposalId))!;
    if (prop.status !== "done") {
      fail("NOT_READY", `variation #${pyG(row.index)} is ${prop.status}: only a finished variation can be picked`, {
        status: prop.status,
      });
    }
    const rnd = (await ctx.db.get(row.roundId))!;
    const artifact = (await ctx.db.get(row.artifactId))!;
    const provenance = {
      kind: "variation",
      variationId: row._id,
      roundId: rnd._id,
      round: rnd.number,
      index: row.index,
      author: prop.authorHandle,
      baseVersion: prop.baseVersion,
    };
    const message =
      args.message || `picked variation #${pyG(row.index)} of round ${pyG(rnd.number)} (@${prop.authorHandle})`;
    const result = (await commitVersion(
      ctx,
      artifact,
      { ...args, message },
      "variations:pick",
      prop.content,
      row.composed ? "merge" : "agent",
      { provenance },
    )) as { version: number; versionId: Id<"versions">; grantedTo: Value };
    await ctx.db.patch(row._id, { picked: true });
    await ctx.db.patch(rnd._id, {
      picked: { variationId: row._id, index: row.index, version: result.version, by: ctx.caller.handle },
    });
    return result;
  },
});

// ---------------------------------------------------------------------------- compose

type Taken = {
  variationId: Id<"variations">;
  index: number;
  roundId: Id<"variationRounds">;
  range: { start: number; end: number };
  text: string;
};

export const compose = mutation({
  args: {
    roundId: v.id("variationRounds"),
    parts: v.array(PART),
    instruction: v.optional(v.string()),
    agent: v.optional(v.string()),
  },
  policy: "editor",
  scope: "round",
  // A new variation in the round made of parts of others: `parts` are `{variationId, range:
  // {start, end}}` (lines `start` to `end`, 0-based, end excluded) of finished variations of
  // this artifact, in the order to use them. With no instruction and no two parts overlapping
  // it is their concatenation, at once; otherwise `agent` (default the round's first) merges
  // them following the instruction, streaming like any variation. Its provenance lists every
  // part. Returns `{variationId, proposalId, composed: "concatenated" | "agent"}`.
  handler: async (ctx, args) => {
    const rnd = ctx.caller.round();
    const parts = args.parts;
    if (!(1 <= parts.length && parts.length <= MAX_PARTS)) {
      invalid(`compose takes 1 to ${MAX_PARTS} parts`, { parts: parts.length });
    }
    const taken: Taken[] = [];
    for (const [i, part] of parts.entries()) {
      const row = await getIn(ctx.db, "variations", part.variationId);
      if (row === null || row.artifactId !== rnd.artifactId) {
        fail("NOT_FOUND", "a part's variation is not a variation of this artifact", {
          what: "variation",
          id: part.variationId,
        });
      }
      const prop = (await ctx.db.get(row.proposalId))!;
      if (prop.status !== "done") {
        fail("NOT_READY", `variation #${pyG(row.index)} is ${prop.status}: compose finished ones`, {
          status: prop.status,
        });
      }
      const lines = prop.content.split("\n");
      const { start, end } = part.range;
      if (start !== Math.trunc(start) || end !== Math.trunc(end) || !(0 <= start && start < end && end <= lines.length)) {
        invalid(
          `part ${i + 1}: lines ${pyG(start)}-${pyG(end)} are outside variation #${pyG(row.index)} ` +
            `(it has ${lines.length} lines)`,
          { part: i, lines: lines.length },
        );
      }
      taken.push({
        variationId: row._id,
        index: row.index,
        roundId: row.roundId,
        range: { start, end },
        text: lines.slice(start, end).join("\n"),
      });
    }
    const instruction = pyStrip(args.instruction || "");
    const overlap = taken.some((a, i) =>
      taken
        .slice(i + 1)
        .some(
          (b) => a.variationId === b.variationId && a.range.start < b.range.end && b.range.start < a.range.end,
        ),
    );
    const index = Math.max(0, ...(await rowsOf(ctx.db, rnd._id)).map((r) => r.index)) + 1;
    const provenance: Record<string, Value> = {
      kind: "compose",
      roundId: rnd._id,
      index,
      parts: taken.map((p) => ({ variationId: p.variationId, index: p.index, roundId: p.roundId, range: p.range })),
    };
    if (instruction) provenance.instruction = instruction;
    let variationId: Id<"variations">;
    let proposalId: Id<"proposals">;
    let how: "concatenated" | "agent";
    if (!instruction && !overlap) {
      const me = (await membership(ctx.db, rnd.spaceId, ctx.caller.actorId))!;
      const author = { actorId: ctx.caller.actorId, kind: ctx.caller.kind, handle: me.handle };
      [variationId, proposalId] = await newVariation(ctx, rnd, index, author, {
        composed: true,
        status: "done",
        content: taken.map((p) => p.text).join("\n"),
        provenance,
      });
      how = "concatenated";
    } else {
      const handle = args.agent || rnd.agents[0]!;
      const agent = (await agentsOf(ctx.db, rnd.spaceId, [handle]))[0]!;
      variationId = await queue(
        ctx,
        rnd,
        index,
        agent,
        "compose",
        null,
        { parts: taken, instruction: instruction || "Merge these parts into one coherent text." },
        provenance,
      );
      proposalId = (await ctx.db.get(variationId))!.proposalId;
      how = "agent";
    }
    await audit(
      ctx,
      rnd.spaceId,
      "variations.composed",
      { roundId: rnd._id, variationId, parts: taken.length, how },
      { artifactId: rnd.artifactId, actorId: ctx.caller.actorId },
    );
    return { variationId, proposalId, composed: how };
  },
});

// ---------------------------------------------------------------------------- queries

async function summary(db: DatabaseReader, rnd: Round) {
  const counts: Record<string, number> = {};
  let stars = 0;
  for (const row of await rowsOf(db, rnd._id)) {
    const prop = await db.get(row.proposalId);
    if (prop !== null) counts[prop.status] = (counts[prop.status] ?? 0) + 1;
    stars += row.starred ? 1 : 0;
  }
  return { ...rnd, counts, stars };
}

export const forArtifact = query({
  args: { artifactId: v.id("artifacts"), limit: v.optional(v.number()) },
  policy: "viewer",
  scope: "artifact",
  // The artifact's rounds, newest first (at most `limit`, default 50), each with its variations
  // counted by status and its number of stars (no content).
  handler: async (ctx, args) => {
    const limit = Math.trunc(Math.min(Math.max(args.limit ?? 50, 1), 200));
    const rounds = await ctx.db
      .query("variationRounds")
      .withIndex("by_artifact", (q) => q.eq("artifactId", args.artifactId))
      .order("desc")
      .take(limit);
    const out = [];
    for (const r of rounds) out.push(await summary(ctx.db, r));
    return out;
  },
});

export const round = query({
  args: { roundId: v.id("variationRounds") },
  policy: "viewer",
  scope: "round",
  // One round with its variations in order: each `{variationId, index, proposalId, composed,
  // starred, picked, author, authorKind, temperature, status, content, error, usage, costUsd,
  // baseVersion, provenance}` (content at the persistence cadence: add the live tails of
  // `proposals:live`).
  handler: async (ctx) => {
    const rnd = ctx.caller.round();
    const variations = [];
    for (const row of await rowsOf(ctx.db, rnd._id)) {
      const prop = await ctx.db.get(row.proposalId);
      variations.push({
        variationId: row._id,
        index: row.index,
        proposalId: row.proposalId,
        composed: row.composed,
        starred: row.starred,
        picked: row.picked,
        // Python's `prop.get(...)`: an absent field is null
        author: prop?.authorHandle ?? null,
        authorKind: prop?.authorKind ?? null,
        temperature: prop?.temperature ?? null,
        status: prop?.status ?? null,
        content: prop?.content ?? "",
        error: prop?.error ?? null,
        usage: prop?.usage ?? null,
        costUsd: prop?.costUsd ?? null,
        baseVersion: prop?.baseVersion ?? null,
        provenance: prop?.provenance ?? null,
      });
    }
    return { round: rnd, variations };
  },
});
