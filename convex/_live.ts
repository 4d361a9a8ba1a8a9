// Live-stream rows (`liveStreams`): helpers shared by `streams`, `messages`, `runs` and the lock
// core, which end a stream in the same transaction as the event that ends it (a finished
// message, a saved or lost lock hold, a failed or cancelled run), so no reader ever sees a
// durable text and a stale tail at the same timestamp. Twin of backend/model/_live.py.
//
// A row holds the *tail* of a stream: the text after offset `base` of the durable text (the
// message body or the draft content) that the writer has not persisted yet. What a pane shows
// is `merge(durable, row)`.
import type { Doc, Id } from "./_generated/dataModel";
import type { MutationCtx } from "./_generated/server";
import { cpLen, cpSlice } from "./_util";

export type PublicRow = Omit<Doc<"liveStreams">, "key" | "expiryJobId">;

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

/** Delete a live row. A message stream that ends without `messages:finish` (run failed,
 * cancelled or lost, stream abandoned) keeps its text: the tail is folded into the body and
 * the message is marked failed with `error`. */
export async function closeRow(ctx: MutationCtx, row: Doc<"liveStreams">, error: string | null = null): Promise<void> {
  if (row.kind === "message" && error !== null && row.messageId !== undefined) {
    const msg = await ctx.db.get(row.messageId);
    if (msg !== null && msg.state === "streaming") {
      await ctx.db.patch(msg._id, { state: "failed", error, body: merge(msg.body, row) });
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

/** A run ended without its worker finishing its streams (failed, cancelled, lease lost). */
export async function endRun(ctx: MutationCtx, runId: Id<"runs">, error: string): Promise<void> {
  const rows = await ctx.db
    .query("liveStreams")
    .withIndex("by_run", (q) => q.eq("runId", runId))
    .collect();
  for (const row of rows) await closeRow(ctx, row, error);
}
