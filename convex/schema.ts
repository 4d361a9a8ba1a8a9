// Tables of the collaboration model (DESIGN 2.3): the twin of backend/model/schema.py.
//
// Slow-changing rows (artifacts, versions, members, actors) live apart from fast-changing ones
// (`locks` with their lease, `lockWaiters`, `drafts`, `presence`, `liveStreams`): Convex
// invalidates subscriptions by index key ranges, so a query that reads only `artifacts` is
// never re-run by a lease renewal, a streamed draft delta or a presence heartbeat.
// tests/typescript/test_parity.py compares every table, field validator and index with the Python
// schema.
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export const ROLE = v.union(v.literal("owner"), v.literal("editor"), v.literal("viewer"));
export const ACTOR_KIND = v.union(v.literal("human"), v.literal("agent"));
export const VERSION_SOURCE = v.union(v.literal("human"), v.literal("agent"), v.literal("merge"));
export const HOLD_END = v.union(
  v.literal("saved"),
  v.literal("released"),
  v.literal("expired"),
  v.literal("forceReleased"),
  v.literal("submitted"), // a pipeline stage's actor handed its output in for review
);
export const DRAFT_STATUS = v.union(
  v.literal("live"),
  v.literal("orphaned"),
  v.literal("saved"),
  v.literal("released"),
);
export const MESSAGE_STATE = v.union(v.literal("streaming"), v.literal("done"), v.literal("failed"));
export const STREAM_KIND = v.union(v.literal("message"), v.literal("draft"), v.literal("proposal"));
export const PROPOSAL_STATUS = v.union(
  v.literal("queued"),
  v.literal("streaming"),
  v.literal("done"),
  v.literal("failed"),
  v.literal("cancelled"),
);
export const PIPELINE_STATUS = v.union(
  v.literal("running"),
  v.literal("awaitingReview"),
  v.literal("done"),
  v.literal("cancelled"),
  v.literal("failed"),
);
export const STAGE_STATUS = v.union(
  v.literal("working"),
  v.literal("awaitingReview"),
  v.literal("approved"),
  v.literal("rejected"),
  v.literal("failed"),
  v.literal("cancelled"),
);
export const STAGE_OUTPUT = v.union(v.literal("content"), v.literal("notes"));
export const STAGE = v.object({
  name: v.string(),
  actor: v.string(),
  approver: v.string(),
  instructions: v.string(),
  output: STAGE_OUTPUT,
});
export const RUN_STATUS = v.union(
  v.literal("queued"),
  v.literal("claimed"),
  v.literal("streaming"),
  v.literal("done"),
  v.literal("failed"),
  v.literal("cancelled"),
);

export default defineSchema({
  // --- identities and spaces (slow) ---------------------------------------------------------
  actors: defineTable({
    subject: v.string(), // "human:<handle>" / "agent:<handle>" (the token's sub)
    kind: ACTOR_KIND,
    handle: v.string(),
    name: v.string(),
  })
    .index("by_subject", ["subject"])
    .index("by_handle", ["handle"]),
  spaces: defineTable({
    name: v.string(),
    createdBy: v.id("actors"),
    description: v.optional(v.string()),
    // What the space may spend on agent runs, in USD over its whole life (unset: no limit); set
    // by an owner (spaces:setBudget, or spaces:open from the owner's config) and checked where
    // runs are queued (messages:post, runs:enqueue).
    budgetUsd: v.optional(v.number()),
  }),
  members: defineTable({
    spaceId: v.id("spaces"),
    actorId: v.id("actors"),
    role: ROLE,
    kind: ACTOR_KIND,
    handle: v.string(), // denormalised: mentions resolve handles per space
    addedBy: v.optional(v.id("actors")),
  })
    .index("by_space", ["spaceId"])
    .index("by_actor", ["actorId"])
    .index("by_space_actor", ["spaceId", "actorId"])
    .index("by_space_handle", ["spaceId", "handle"]),
  // Invite codes are stored hashed (SHA-256 hex): the database never holds a live code, and a
  // lookup by hash leaks nothing about codes that are close to a guess. `hint` is the code's
  // first characters, so an owner can tell invites apart when revoking.
  invites: defineTable({
    spaceId: v.id("spaces"),
    codeHash: v.string(),
    hint: v.string(),
    role: ROLE,
    createdBy: v.id("actors"),
    uses: v.number(),
    maxUses: v.optional(v.number()),
    expiresAt: v.optional(v.number()),
    revoked: v.boolean(),
    revokedBy: v.optional(v.id("actors")),
  })
    .index("by_hash", ["codeHash"])
    .index("by_space", ["spaceId"]),
  // --- artifacts and versions (slow) ----------------------------------------------------------
  artifacts: defineTable({
    spaceId: v.id("spaces"),
    slug: v.string(), // unique per space; what `#slug` refers to in messages
    title: v.string(),
    kind: v.string(), // document, code, notes, research, creative, ...
    language: v.optional(v.string()),
    content: v.string(),
    version: v.number(),
    tags: v.array(v.string()),
    createdBy: v.id("actors"),
    updatedBy: v.id("actors"),
    updatedAt: v.number(),
  })
    .index("by_space", ["spaceId"])
    .index("by_space_slug", ["spaceId", "slug"]),
  versions: defineTable({
    artifactId: v.id("artifacts"),
    spaceId: v.id("spaces"),
    version: v.number(),
    content: v.string(),
    authorId: v.id("actors"),
    source: VERSION_SOURCE,
    message: v.optional(v.string()),
    parentVersion: v.optional(v.number()),
    restoredFrom: v.optional(v.number()),
    lockEpoch: v.optional(v.number()), // the fencing token the save carried
    // Where the content came from when it was not typed under the lock: a picked variation
    // ({kind: "variation", variationId, roundId, ...}), a composition ({kind: "compose", parts}),
    // an approved pipeline stage.
    provenance: v.optional(v.any()),
    at: v.number(),
    // An agent's revision: tokens and cost of the run that wrote it.
    usage: v.optional(v.any()),
  }).index("by_artifact_version", ["artifactId", "version"]),
  // --- locks (fast: lease renewals) ------------------------------------------------------------
  // One row per artifact. `epoch` is the fencing token of the current or last hold and only
  // grows; a free lock has no holderId.
  locks: defineTable({
    artifactId: v.id("artifacts"),
    spaceId: v.id("spaces"),
    epoch: v.number(),
    holderId: v.optional(v.id("actors")),
    holderKind: v.optional(ACTOR_KIND),
    holderHandle: v.optional(v.string()),
    since: v.optional(v.number()),
    expiresAt: v.optional(v.number()),
    ttlMs: v.optional(v.number()),
    expiryJobId: v.optional(v.string()),
    // A pipeline holds the artifact from its start until it is over (done or cancelled): only
    // the current stage's actor may take the lock meanwhile, and no save lands but the approval
    // of a stage (docs/PIPELINE.md).
    pipelineId: v.optional(v.id("pipelines")),
  })
    .index("by_artifact", ["artifactId"])
    .index("by_space", ["spaceId"]),
  // One row per grant (epoch): who held the lock, how it ended. Answers "why is my token
  // stale" for any old token.
  lockHolds: defineTable({
    artifactId: v.id("artifacts"),
    spaceId: v.id("spaces"),
    epoch: v.number(),
    holderId: v.id("actors"),
    holderKind: ACTOR_KIND,
    holderHandle: v.string(),
    grantedAt: v.number(),
    via: v.union(v.literal("acquire"), v.literal("queue")),
    endedAt: v.optional(v.number()),
    endReason: v.optional(HOLD_END),
    endedBy: v.optional(v.id("actors")),
    endedByHandle: v.optional(v.string()),
    forceReason: v.optional(v.string()),
  }).index("by_artifact_epoch", ["artifactId", "epoch"]),
  // FIFO wait queue: creation order is commit order is queue order.
  lockWaiters: defineTable({
    artifactId: v.id("artifacts"),
    spaceId: v.id("spaces"),
    actorId: v.id("actors"),
    actorKind: ACTOR_KIND,
    actorHandle: v.string(),
    ttlMs: v.number(),
    since: v.number(),
    idempotencyKey: v.optional(v.string()),
  })
    .index("by_artifact", ["artifactId"])
    .index("by_artifact_actor", ["artifactId", "actorId"])
    .index("by_space", ["spaceId"]),
  // Retries of acquire/save with the same key return the first result (per actor).
  idempotencyKeys: defineTable({
    actorId: v.id("actors"),
    key: v.string(),
    fn: v.string(),
    artifactId: v.id("artifacts"),
    result: v.any(),
    expiresAt: v.number(),
  }).index("by_actor_key", ["actorId", "key"]),
  // --- drafts (fast: streamed deltas) ------------------------------------------------------------
  // One draft per hold (artifact, epoch). Drafts of expired / force-released holds stay
  // "orphaned" until someone discards them: never merged silently.
  drafts: defineTable({
    artifactId: v.id("artifacts"),
    spaceId: v.id("spaces"),
    actorId: v.id("actors"),
    epoch: v.number(),
    baseVersion: v.number(),
    content: v.string(),
    seq: v.number(), // last applied delta sequence number (dedupes retries)
    status: DRAFT_STATUS,
    updatedAt: v.number(),
  })
    .index("by_artifact_epoch", ["artifactId", "epoch"])
    .index("by_artifact_status", ["artifactId", "status"]),
  // --- discussion -------------------------------------------------------------------------------
  messages: defineTable({
    spaceId: v.id("spaces"),
    threadId: v.optional(v.id("messages")), // root message of the thread
    artifactId: v.optional(v.id("artifacts")), // topic
    authorId: v.id("actors"),
    authorKind: ACTOR_KIND,
    authorHandle: v.string(),
    body: v.string(),
    mentions: v.array(v.id("actors")),
    mentionsAll: v.boolean(),
    refs: v.array(v.id("artifacts")),
    state: MESSAGE_STATE,
    error: v.optional(v.string()),
    runId: v.optional(v.id("runs")),
    decision: v.boolean(),
    openQuestion: v.boolean(),
    markedBy: v.optional(v.id("actors")),
    // An agent's reply: tokens and cost of the run that wrote it (set when it ends).
    usage: v.optional(v.any()),
  })
    .index("by_space", ["spaceId"])
    .index("by_thread", ["threadId"])
    .index("by_space_decision", ["spaceId", "decision"])
    .index("by_space_question", ["spaceId", "openQuestion"]),
  notifications: defineTable({
    actorId: v.id("actors"),
    spaceId: v.id("spaces"),
    kind: v.string(), // mention, lockGranted, lockLost, runFailed
    read: v.boolean(),
    messageId: v.optional(v.id("messages")),
    artifactId: v.optional(v.id("artifacts")),
    text: v.string(),
    data: v.optional(v.any()),
    at: v.number(),
  })
    .index("by_actor_read", ["actorId", "read"])
    .index("by_actor", ["actorId"]),
  // --- presence (fast, ephemeral) ---------------------------------------------------------------
  presence: defineTable({
    spaceId: v.id("spaces"),
    actorId: v.id("actors"),
    actorKind: ACTOR_KIND,
    actorHandle: v.string(),
    client: v.string(), // one row per terminal: a user may have several panes
    artifactId: v.optional(v.id("artifacts")),
    view: v.optional(v.string()),
    typing: v.boolean(),
    lastSeen: v.number(),
    expiresAt: v.number(),
    expiryJobId: v.optional(v.string()),
  })
    .index("by_space", ["spaceId"])
    .index("by_space_actor_client", ["spaceId", "actorId", "client"]),
  // --- live streams (fastest: ~30 ms UI cadence) ------------------------------------------------
  // One row per stream an agent is writing right now: the text not yet persisted (`text`, which
  // starts at offset `base` of the durable message body / draft content). Pushed every UI tick,
  // deleted when the stream ends. Apart from `messages` and `drafts` so that message lists and
  // documents are re-run only at the persistence cadence.
  liveStreams: defineTable({
    spaceId: v.id("spaces"),
    actorId: v.id("actors"),
    actorHandle: v.string(),
    kind: STREAM_KIND,
    messageId: v.optional(v.id("messages")),
    artifactId: v.optional(v.id("artifacts")),
    epoch: v.optional(v.number()), // the lock hold a draft stream writes under
    proposalId: v.optional(v.id("proposals")),
    runId: v.optional(v.id("runs")),
    base: v.number(), // durable length the tail follows
    text: v.string(), // the tail: streamed text after `base` not yet persisted
    seq: v.number(), // last applied push (dedupes retries)
    note: v.optional(v.string()), // what the writer does instead of writing ("waiting for the provider")
    key: v.string(), // write capability: pushes must carry it; never returned
    startedAt: v.number(),
    updatedAt: v.number(),
    expiryJobId: v.optional(v.string()),
  })
    .index("by_space", ["spaceId"])
    .index("by_message", ["messageId"])
    .index("by_artifact", ["artifactId"])
    .index("by_proposal", ["proposalId"])
    .index("by_run", ["runId"]),
  // --- proposals: candidate content, streamed but not saved (fast while streaming) ------------
  // Not tied to a lock epoch: several stream into one artifact at once (variations, a pipeline
  // stage's output). Content grows at the persistence cadence; the tail is a `liveStreams` row
  // of kind "proposal". Saved only through the lock (a pick, an approval).
  proposals: defineTable({
    spaceId: v.id("spaces"),
    artifactId: v.id("artifacts"),
    authorId: v.id("actors"),
    authorKind: ACTOR_KIND,
    authorHandle: v.string(),
    baseVersion: v.number(), // the artifact version it was made from
    content: v.string(),
    status: PROPOSAL_STATUS,
    error: v.optional(v.string()),
    runId: v.optional(v.id("runs")),
    temperature: v.optional(v.number()), // the run's own, when not the agent's
    usage: v.optional(v.any()),
    costUsd: v.optional(v.number()),
    provenance: v.any(), // {kind: "variation" | "compose" | "stage", ...}
    updatedAt: v.number(),
  })
    .index("by_artifact", ["artifactId"])
    .index("by_run", ["runId"]),
  // --- variations: rounds of N proposals side by side ------------------------------------------
  variationRounds: defineTable({
    spaceId: v.id("spaces"),
    artifactId: v.id("artifacts"),
    number: v.number(), // 1, 2, ... per artifact
    instruction: v.string(),
    note: v.optional(v.string()), // "N more" in this direction
    flow: v.optional(v.string()),
    flowInstructions: v.optional(v.string()),
    n: v.number(),
    agents: v.array(v.string()), // the handle of each variation, in order
    temperatures: v.array(v.union(v.number(), v.null())),
    parentRoundId: v.optional(v.id("variationRounds")),
    shortlist: v.array(v.id("variations")), // the parent's stars it started from
    createdBy: v.id("actors"),
    createdByHandle: v.string(),
    picked: v.optional(v.any()), // {variationId, index, version, by}
  }).index("by_artifact", ["artifactId", "number"]),
  variations: defineTable({
    spaceId: v.id("spaces"),
    artifactId: v.id("artifacts"),
    roundId: v.id("variationRounds"),
    index: v.number(), // #1..#N in the round (compositions follow)
    proposalId: v.id("proposals"),
    composed: v.boolean(),
    starred: v.boolean(),
    starredBy: v.optional(v.id("actors")),
    picked: v.boolean(),
  })
    .index("by_round", ["roundId", "index"])
    .index("by_proposal", ["proposalId"]),
  // --- pipelines: stages in turn, each output reviewed before the next ----------------------
  pipelines: defineTable({
    spaceId: v.id("spaces"),
    artifactId: v.id("artifacts"),
    flow: v.optional(v.string()), // the flow it came from (a label: stages are given)
    title: v.string(),
    instructions: v.optional(v.string()), // the flow's, added to every stage's prompt
    stages: v.array(STAGE),
    current: v.number(), // index of the stage at work or in review
    status: PIPELINE_STATUS,
    reason: v.optional(v.string()), // why it failed or was cancelled
    maxAttempts: v.number(), // per stage, before the pipeline stops
    baseVersion: v.number(), // the artifact's version at the start
    startedBy: v.id("actors"),
    startedByHandle: v.string(),
    startedAt: v.number(),
    updatedAt: v.number(),
    finishedAt: v.optional(v.number()),
    endedByHandle: v.optional(v.string()),
  })
    .index("by_artifact", ["artifactId"])
    .index("by_space", ["spaceId"]),
  // One row per attempt of a stage: who worked on which input, the output (a proposal), who
  // reviewed it and why.
  stageRuns: defineTable({
    spaceId: v.id("spaces"),
    artifactId: v.id("artifacts"),
    pipelineId: v.id("pipelines"),
    stage: v.number(),
    stageName: v.string(),
    attempt: v.number(),
    actor: v.string(), // the stage's actor spec: agent handle, "human", "human:<handle>"
    actorId: v.optional(v.id("actors")), // who worked (known once someone takes it)
    actorHandle: v.optional(v.string()),
    actorKind: v.optional(ACTOR_KIND),
    inputVersion: v.number(),
    epoch: v.optional(v.number()), // the lock hold the actor wrote under
    proposalId: v.optional(v.id("proposals")), // the output
    runId: v.optional(v.id("runs")), // an agent actor's run
    reviewRunId: v.optional(v.id("runs")), // an agent approver's run
    status: STAGE_STATUS,
    reviewer: v.optional(v.any()), // {actorId?, handle, kind: human/agent/auto}
    reason: v.optional(v.string()), // the reviewer's reason (required to reject)
    error: v.optional(v.string()), // why it failed
    outputVersion: v.optional(v.number()), // the version an approved content output became
    startedAt: v.number(),
    submittedAt: v.optional(v.number()),
    decidedAt: v.optional(v.number()),
  }).index("by_pipeline", ["pipelineId", "stage", "attempt"]),
  // --- agent jobs -------------------------------------------------------------------------------
  runs: defineTable({
    spaceId: v.id("spaces"),
    agentId: v.id("actors"),
    kind: v.string(),
    input: v.any(),
    artifactId: v.optional(v.id("artifacts")),
    messageId: v.optional(v.id("messages")),
    status: RUN_STATUS,
    attempt: v.number(), // fences a worker whose claim lease expired
    maxAttempts: v.number(),
    createdBy: v.id("actors"),
    claimedBy: v.optional(v.id("actors")),
    leaseExpiresAt: v.optional(v.number()),
    expiryJobId: v.optional(v.string()),
    output: v.optional(v.any()),
    error: v.optional(v.string()),
    usage: v.optional(v.any()),
    costUsd: v.optional(v.number()),
    queuedAt: v.number(),
    startedAt: v.optional(v.number()),
    finishedAt: v.optional(v.number()),
  })
    .index("by_space_status", ["spaceId", "status"])
    .index("by_space", ["spaceId"]) // runs:page: creation order, whatever the status
    .index("by_agent_status", ["agentId", "status"]),
  // --- usage and cost of agent runs -----------------------------------------------------------
  // One row per (space, agent): running totals since the space began, updated when a run
  // reports its usage (runs:complete / runs:fail). Budgets and "all time" read these, so
  // neither scans every run ever made.
  usageTotals: defineTable({
    spaceId: v.id("spaces"),
    agentId: v.id("actors"),
    agentHandle: v.string(),
    runs: v.number(),
    promptTokens: v.number(),
    completionTokens: v.number(),
    costUsd: v.number(),
  }).index("by_space_agent", ["spaceId", "agentId"]),
  // One row per usage report, by time: "today" and "since the app was opened" are a range of
  // this index from a time the client passes (a query never reads the clock).
  usageEvents: defineTable({
    spaceId: v.id("spaces"),
    agentId: v.id("actors"),
    agentHandle: v.string(),
    runId: v.id("runs"),
    at: v.number(),
    promptTokens: v.number(),
    completionTokens: v.number(),
    costUsd: v.number(),
  }).index("by_space_at", ["spaceId", "at"]),
  // --- audit (append-only) ----------------------------------------------------------------------
  audit: defineTable({
    spaceId: v.id("spaces"),
    artifactId: v.optional(v.id("artifacts")),
    actorId: v.optional(v.id("actors")),
    type: v.string(),
    data: v.any(),
    at: v.number(),
  })
    .index("by_space", ["spaceId"])
    .index("by_artifact", ["artifactId"]),
});
