"""An agent revision of ``#artifact`` under the lock, exactly like a human edit (DESIGN 2.4),
through the same :class:`~collab.backend_client.space.LockHold` as the human editor:

acquire (queue behind the holder if needed, with idempotency keys derived from the run
attempt, so a retry never queues or saves twice) -> stream the new content as a fenced draft
(``drafts:append`` at the persistence cadence, which also renews the lease; the live tail at
the UI cadence) -> ``artifacts:save`` (source "agent", releases and hands the lock to the next
in the queue) -> a short note in the thread. The hold renews the lease while the model is
slow and counts as lost if its own clock says the lease is about to end unrenewed
(``locks.stop_margin_s``): the stream stops.

**The lock is taken when there is something to write.** A model's first token can take
seconds (a cold local model, a busy provider); a free lock is left free until then, so nobody
is locked out by an agent that is still thinking. If the lock is held when the run starts,
the agent queues first and reads the artifact once it is granted. If the lock was taken by
someone between the agent's read and its first token, the agent queues, and starts again on
the version it is granted (never revising a stale text).

On a model error, a cancel or a lost lock the hold is released with ``keepDraft`` (the
partial draft is kept, never merged), and the thread says why. If the worker dies, nothing
here runs: the lease expires (TTL + one sweep), the draft is kept as orphaned, and the run's
claim lease expires too (the run fails and can be retried with ``runs:retry``).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from collab.backend_client.api import api
from collab.backend_client.space import FENCE_LOST, LockHold, error_code
from collab.flows.cadence import Batch, StreamBatcher
from collab.flows.context import RunContext, RunFailed
from collab.flows.discussion import finish_message, open_reply
from collab.flows.errors import LLMError
from collab.flows.live import new_stream_key, prepend, pump, until_text
from collab.flows.llm import TokenChunk
from collab.flows.prompts import revise_messages

__all__ = ["run_revise", "strip_fences"]

log = logging.getLogger(__name__)
_FENCED = re.compile(r"^\s*```[^\n]*\n(.*)\n```\s*$", re.DOTALL)


def strip_fences(text: str) -> str:
    """Models like to wrap a whole document in a code fence: the artifact is what is inside."""
    m = _FENCED.match(text)
    return (m.group(1) if m else text).strip("\n")


class _Restart(Exception):
    """The lock went to someone else before our first token: start again when granted."""


async def _take(ctx: RunContext, hold: LockHold) -> bool:
    """The lock, waiting in the queue if needed. False: cancelled while waiting."""
    got = await hold.acquire(wait=True)
    if isinstance(got, LockHold):
        return True
    return await hold.wait_granted(ctx.cancel)


async def run_revise(ctx: RunContext) -> dict[str, Any]:
    client, run = ctx.client, ctx.run
    artifact_id = run.get("artifactId") or ctx.input.get("artifactId")
    if not artifact_id:
        raise RunFailed("a revise run needs an artifact")
    thread_id = ctx.input.get("threadId")
    request = None
    if run.get("messageId"):
        thread = await client.query(api.messages.list, {"spaceId": ctx.space_id,
                                                        "threadId": thread_id or run["messageId"]})
        request = next((m for m in thread if m["_id"] == run["messageId"]), None)
    cfg = ctx.agent.config
    hold = ctx.hold(artifact_id)
    artifact = await client.query(api.artifacts.get, {"artifactId": artifact_id})
    if (artifact.get("lock") or {}).get("held"):  # someone is editing: queue, read what we are granted
        if not await _take(ctx, hold):
            return {"artifactId": artifact_id, "cancelled": True}
        artifact = await client.query(api.artifacts.get, {"artifactId": artifact_id})
    while True:
        messages = revise_messages(handle=cfg.handle, name=cfg.name, persona=cfg.persona, role=cfg.role,
                                   artifact=artifact, request=request, instruction=ctx.input.get("instruction"))
        stream = ctx.stream(messages)
        try:
            first = [] if hold.held else await until_text(stream)
        except LLMError as exc:  # failed before writing anything: nothing to release
            await _note(ctx, thread_id, f"Could not revise #{artifact['slug']}: {exc}", failed=str(exc))
            raise RunFailed(str(exc)) from exc
        if hold.held or ctx.cancel.is_set() or not any(c.text for c in first):
            break
        got = await hold.acquire(wait=True)
        if isinstance(got, LockHold):
            fresh = await client.query(api.artifacts.get, {"artifactId": artifact_id})
            if fresh["version"] == artifact["version"]:
                break  # what the model reads is what we now hold
            artifact = fresh  # saved between our read and our grant: start again on it
        elif not await hold.wait_granted(ctx.cancel):
            await _close(stream)
            return {"artifactId": artifact_id, "cancelled": True}
        else:
            artifact = await client.query(api.artifacts.get, {"artifactId": artifact_id})
        await _close(stream)
    if not hold.held:  # cancelled, or the model wrote nothing, before the lock was needed
        await _close(stream)
        if ctx.cancel.is_set():
            return {"artifactId": artifact_id, "cancelled": True}
        failure = f"@{cfg.handle} produced an empty revision of #{artifact['slug']}; nothing saved"
        await _note(ctx, thread_id, f"Could not revise #{artifact['slug']}: {failure}", failed=failure)
        raise RunFailed(failure)
    return await _write(ctx, hold, artifact, request, thread_id, prepend(first, stream))


async def _close(stream: AsyncIterator[TokenChunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def _write(ctx: RunContext, hold: LockHold, artifact: dict[str, Any], request: dict[str, Any] | None,
                 thread_id: str | None, chunks: AsyncIterator[TokenChunk]) -> dict[str, Any]:
    """Stream the revision into the hold's draft, then save it (or release, keeping the draft)."""
    client, cfg, artifact_id = ctx.client, ctx.agent.config, hold.artifact_id
    hold.on_lost.append(lambda _h: ctx.cancel.set())  # stop writing: the next holder's turn
    key = new_stream_key()
    stream_id = await client.mutation(api.streams.open, {"spaceId": ctx.space_id, "kind": "draft",
                                                          "artifactId": artifact_id, "token": hold.token, "key": key,
                                                          "runId": ctx.run_id})
    live = ctx.pusher.register(str(stream_id), key)

    async def persist(batch: Batch) -> None:
        res = await client.mutation(api.drafts.append, {"artifactId": artifact_id, "token": hold.token,
                                                         "text": batch.text, "seq": batch.seq + 1})
        hold.extend(res["expiresAt"])
        live.persisted(batch.offset + len(batch.text))

    failure: str | None = None
    text = ""
    batcher = StreamBatcher(ctx.cadence, on_persist=persist)
    try:
        text = await pump(chunks, batcher, live)
    except LLMError as exc:
        failure = str(exc)
    except Exception as exc:  # a fenced write refused: the lock is gone
        if error_code(exc) not in FENCE_LOST:
            raise
        hold.lost_reason = hold.lost_reason or "refused"
    finally:
        ctx.pusher.unregister(live)
    slug = artifact["slug"]
    lost = hold.lost_reason is not None
    if lost:
        hold.end()
        failure = f"@{cfg.handle} lost the lock on #{slug} before saving; its draft is kept"
    elif ctx.cancel.is_set() and failure is None:
        await hold.release(keep_draft=True)
        return {"artifactId": artifact_id, "cancelled": True}
    content = strip_fences(text)
    if failure is None and not content.strip():
        failure = f"@{cfg.handle} produced an empty revision of #{slug}; nothing saved"
    if failure is not None:
        await hold.release(keep_draft=True)  # nothing to release if the hold was lost
        await _note(ctx, thread_id, f"Could not revise #{slug}: {failure}", failed=failure)
        raise RunFailed(failure)
    what = (request["body"] if request else ctx.input.get("instruction") or "revision")[:120]
    saved = await hold.save(content, f"@{cfg.handle}: {what}")
    await _note(ctx, thread_id, f"Revised #{slug}: version {saved['version']} is saved.")
    return {"artifactId": artifact_id, "version": saved["version"]}


async def _note(ctx: RunContext, thread_id: str | None, body: str, failed: str | None = None) -> None:
    """A line in the thread saying what the revision did (agents' posts never start runs)."""
    message_id, live = await open_reply(ctx, thread_id)
    ctx.pusher.unregister(live)  # the note is written whole: nothing streams
    await finish_message(ctx, message_id, "failed" if failed else "done", body, failed)
