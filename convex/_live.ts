// Live-stream rows (`liveStreams`): helpers shared by `streams`, `messages`, `proposals`, `runs`
// and the lock core, which end a stream in the same transaction as the event that ends it (a
// finished message or proposal, a saved or lost lock hold, a failed or cancelled run), so no
// reader ever sees a durable text and a stale tail at the same timestamp. Twin of
// backend/model/_live.py.
//
// A row holds the *tail* of a stream: the text after offset `base` of the durable text (the
// message body, the draft or proposal content) that the writer has not persisted yet. What a
// pane shows is `merge(durable, row)` (the wire's rule, `collab.wire.text.merge`).
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import type { MutationCtx } from "./_generated/server";
import { cpLen, cpSlice } from "./_util";

// A stream nobody pushed to for this long is closed by the sweeper (its message marked failed).
export const STALE_MS = 60_000;
export const MIN_KEY = 16;

export type PublicRow = Omit<Doc<"liveStreams">, "key" | "expiryJobId">;
export type NewRow = Omit<Doc<"liveStreams">, "_id" | "_creationTime">;

export async function scheduleExpiry(ctx: MutationCtx, rowId: Id<"liveStreams">, at: number): Promise<string> {
  return await ctx.scheduler.runAt(at, internal.streams.expire, { streamId: rowId });
}

/** Insert a live row (checked by the caller) with its sweeper job: `streams:open`,
 * `messages:openReply` (which opens the reply and its stream in one transaction) and
 * `proposals:open`. */
export async function openRow(ctx: MutationCtx, row: NewRow): Promise<Id<"liveStreams">> {
  const rowId = await ctx.db.insert("liveStreams", row);
  await ctx.db.patch(rowId, { expiryJobId: await scheduleExpiry(ctx, rowId, row.startedAt + STALE_MS) });
  return rowId;
}

/** A row as readers get it: without the write key (a capability) and the sweeper's job. */
export function publicRow(row: Doc<"liveStreams"> | null): PublicRow | null {
  if (row === null) return null;
  const { key: _key, expiryJobId: _job, ...rest } = row;
  return rest;
}

/** The text to show: the durable text, then the part of the tail it does not have yet. The
 * writer announces a new `base` only after the durable write that reached it was acknowledged,
 * so in any consistent snapshot `len(durable) >= base`; otherwise the durable text alone. */
export function merge(durable: string, row: { base: number; text: string } | null): string {
  const length = cpLen(durable);
  if (row === null || length < row.base) return durable;
  return durable + cpSlice(row.text, length - Math.trunc(row.base));
}

async function remove(ctx: MutationCtx, row: Doc<"liveStreams">): Promise<void> {
  if (row.expiryJobId) await ctx.scheduler.cancel(row.expiryJobId as Id<"_scheduled_functions">);
  await ctx.db.delete(row._id);
}

/** Delete a live row. A message or proposal stream that ends without its finish (run failed,
 * cancelled or lost, stream abandoned) keeps its text: the tail is folded into the body /
 * content and it is marked `status` (failed or cancelled) with `error`. */
export async function closeRow(
  ctx: MutationCtx,
  row: Doc<"liveStreams">,
  error: string | null = null,
  status: "failed" | "cancelled" = "failed",
): Promise<void> {
  if (row.kind === "message" && error !== null && row.messageId !== undefined) {
    const msg = await ctx.db.get(row.messageId);
    if (msg !== null && msg.state === "streaming") {
      await ctx.db.patch(msg._id, { state: "failed", error, body: merge(msg.body, row) });
    }
  }
  if (row.kind === "proposal" && error !== null && row.proposalId !== undefined) {
    const prop = await ctx.db.get(row.proposalId);
    if (prop !== null && prop.status === "streaming") {
      await ctx.db.patch(prop._id, { status, error, content: merge(prop.content, row), updatedAt: Date.now() });
    }
  }
  await remove(ctx, row);
}

export async function endMessage(ctx: MutationCtx, messageId: Id<"messages">): Promise<void> {
  const rows = await ctx.db
    .query("liveStreams")
    .withIndex("by_message", (q) => q.eq("messageId", messageId))
    .collect();
  for (const row of rows) await remove(ctx, row);
}

/** The hold `epoch` ended: its draft stream's tail goes (the durable draft is kept or saved by
 * the lock core). */
export async function endDraft(ctx: MutationCtx, artifactId: Id<"artifacts">, epoch: number): Promise<void> {
  const rows = await ctx.db
    .query("liveStreams")
    .withIndex("by_artifact", (q) => q.eq("artifactId", artifactId))
    .collect();
  for (const row of rows) {
    if (row.kind === "draft" && row.epoch === epoch) await remove(ctx, row);
  }
}

export type RunOutcome = "failed" | "cancelled" | "requeued";

/** A run ended without its worker finishing its streams: `outcome` failed, cancelled, or
 * requeued (another attempt will write again). Its streams close with their text, and the
 * proposals it was writing (or had not started) say so: failed or cancelled with `error`, or
 * back to queued and empty for the next attempt. */
export async function endRun(
  ctx: MutationCtx,
  runId: Id<"runs">,
  error: string,
  outcome: RunOutcome = "failed",
): Promise<void> {
  const status = outcome === "cancelled" ? "cancelled" : "failed";
  const rows = await ctx.db
    .query("liveStreams")
    .withIndex("by_run", (q) => q.eq("runId", runId))
    .collect();
  for (const row of rows) await closeRow(ctx, row, error, status);
  const props = await ctx.db
    .query("proposals")
    .withIndex("by_run", (q) => q.eq("runId", runId))
    .collect();
  for (const prop of props) {
    if (outcome === "requeued" && ["streaming", "failed", "cancelled"].includes(prop.status)) {
      await ctx.db.patch(prop._id, { status: "queued", content: "", error: undefined, updatedAt: Date.now() });
    } else if (outcome !== "requeued" && ["queued", "streaming"].includes(prop.status)) {
      await ctx.db.patch(prop._id, { status, error, updatedAt: Date.now() });
    }
  }
}

export async function endProposal(ctx: MutationCtx, proposalId: Id<"proposals">): Promise<void> {
  const rows = await ctx.db
    .query("liveStreams")
    .withIndex("by_proposal", (q) => q.eq("proposalId", proposalId))
    .collect();
  for (const row of rows) await remove(ctx, row);
}
