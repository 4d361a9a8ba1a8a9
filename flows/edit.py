"""An agent revision of ``#artifact`` under the lock, exactly like a human edit (DESIGN 2.4):

acquire (queue behind the holder if needed, with an idempotency key so a retry never queues
twice) -> stream the new content as a fenced draft (``drafts:append`` at the persistence
cadence, which also renews the lease; the live tail at the UI cadence) -> ``artifacts:save``
(source "agent", releases and hands the lock to the next in the queue) -> a short note in the
thread. A renewal task keeps the lease while the model is slow, and stops the stream if its
own clock says the lease is about to end unrenewed (``locks.stop_margin_s``).

On a model error, a cancel or a lost lock the hold is released with ``keepDraft`` (the
partial draft is kept, never merged), and the thread says why. If the worker dies, nothing
here runs: the lease expires (TTL + one sweep), the draft is kept as orphaned, and the run's
claim lease expires too (the run fails and can be retried with ``runs:retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from collab.backend_client.api import api
from collab.flows.cadence import Batch, StreamBatcher
from collab.flows.context import RunContext, RunFailed, error_code
from collab.flows.discussion import finish_message, post_streaming
from collab.flows.errors import LLMError
from collab.flows.live import new_stream_key, pump
from collab.flows.prompts import revise_messages

__all__ = ["run_revise", "strip_fences"]

log = logging.getLogger(__name__)
_FENCED = re.compile(r"^\s*```[^\n]*\n(.*)\n```\s*$", re.DOTALL)


def strip_fences(text: str) -> str:
    """Models like to wrap a whole document in a code fence: the artifact is what is inside."""
    m = _FENCED.match(text)
    return (m.group(1) if m else text).strip("\n")


class LeaseLost(Exception):
    pass


async def acquire(ctx: RunContext, artifact_id: str) -> dict[str, Any] | None:
    """The grant (``{token, expiresAt, ...}``), waiting in the FIFO queue if the lock is held;
    None if the run was cancelled while waiting (the queue is left)."""
    client, me = ctx.client, ctx.agent.actor_id
    args = {"artifactId": artifact_id, "ttlMs": ctx.locks.lease_ttl_s * 1000, "idempotencyKey": ctx.key("acquire")}
    res = await client.mutation(api.locks.acquire, args)
    if res["status"] == "granted":
        return dict(res)
    # Queued: wait until the queue hands us the lock (its row shows us as holder), then the
    # same key returns the token.
    queue = client.watch(api.locks.queue, {"artifactId": artifact_id})
    try:
        async def granted() -> None:
            async for state in queue.updates():
                if (state.get("holder") or {}).get("actorId") == me:
                    return
        waiter = asyncio.ensure_future(granted())
        stop = asyncio.ensure_future(ctx.cancel.wait())
        try:
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stop.cancel()
        if ctx.cancel.is_set():
            with contextlib.suppress(Exception):
                await client.mutation(api.locks.leave, {"artifactId": artifact_id})
            return None
    finally:
        queue.close()
    res = await client.mutation(api.locks.acquire, args)
    if res["status"] != "granted":
        raise RunFailed(f"@{ctx.agent.handle} could not get the lock (status {res['status']})")
    return dict(res)


async def keep_lease(ctx: RunContext, artifact_id: str, token: float, expires_at: list[float],
                     lost: asyncio.Event) -> None:
    """Renew every ``renew_every_s``; if the lease is about to end unrenewed (by our own
    monotonic clock), stop writing: set ``lost`` and cancel the stream."""
    loop = asyncio.get_running_loop()
    ttl = ctx.locks.lease_ttl_s
    local_deadline = loop.time() + ttl
    while True:
        wait = min(ctx.locks.renew_every_s, max(0.0, local_deadline - ctx.locks.stop_margin_s - loop.time()))
        await asyncio.sleep(wait)
        if loop.time() >= local_deadline - ctx.locks.stop_margin_s:
            lost.set()
            ctx.cancel.set()
            return
        sent = loop.time()
        try:
            res = await ctx.client.mutation(api.locks.renew, {"artifactId": artifact_id, "token": token,
                                                                "ttlMs": ttl * 1000})
            expires_at[0] = res["expiresAt"]
            local_deadline = sent + ttl  # measured from when we asked: never optimistic
        except Exception as exc:
            if error_code(exc) in ("STALE_TOKEN", "NOT_HOLDER", "INVALID_TOKEN"):
                lost.set()
                ctx.cancel.set()
                return
            log.warning("lock renewal failed, retrying", exc_info=True)


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
    grant = await acquire(ctx, artifact_id)
    if grant is None:
        return {"artifactId": artifact_id, "cancelled": True}
    token = grant["token"]
    expires_at = [float(grant["expiresAt"])]
    lost = asyncio.Event()
    renewer = asyncio.ensure_future(keep_lease(ctx, artifact_id, token, expires_at, lost))
    artifact = await client.query(api.artifacts.get, {"artifactId": artifact_id})
    cfg = ctx.agent.config
    messages = revise_messages(handle=cfg.handle, name=cfg.name, persona=cfg.persona, role=cfg.role,
                               artifact=artifact, request=request, instruction=ctx.input.get("instruction"))
    key = new_stream_key()
    stream_id = await client.mutation(api.streams.open, {"spaceId": ctx.space_id, "kind": "draft",
                                                          "artifactId": artifact_id, "token": token, "key": key,
                                                          "runId": ctx.run_id})
    live = ctx.pusher.register(str(stream_id), key)

    async def persist(batch: Batch) -> None:
        res = await client.mutation(api.drafts.append, {"artifactId": artifact_id, "token": token,
                                                         "text": batch.text, "seq": batch.seq + 1})
        expires_at[0] = res["expiresAt"]
        live.persisted(batch.offset + len(batch.text))

    failure: str | None = None
    text = ""
    batcher = StreamBatcher(ctx.cadence, on_persist=persist)
    try:
        text = await pump(ctx.stream(messages), batcher, live)
    except LLMError as exc:
        failure = str(exc)
    except Exception as exc:  # a fenced write refused: the lock is gone
        if error_code(exc) not in ("STALE_TOKEN", "NOT_HOLDER", "INVALID_TOKEN"):
            raise
        lost.set()
    finally:
        ctx.pusher.unregister(live)
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await renewer
    slug = artifact["slug"]
    if lost.is_set():
        failure = f"@{cfg.handle} lost the lock on #{slug} before saving; its draft is kept"
    elif ctx.cancel.is_set() and failure is None:
        await _release(ctx, artifact_id, token)
        return {"artifactId": artifact_id, "cancelled": True}
    content = strip_fences(text)
    if failure is None and not content.strip():
        failure = f"@{cfg.handle} produced an empty revision of #{slug}; nothing saved"
    if failure is not None:
        if not lost.is_set():
            await _release(ctx, artifact_id, token)
        await _note(ctx, thread_id, f"Could not revise #{slug}: {failure}", failed=failure)
        raise RunFailed(failure)
    what = (request["body"] if request else ctx.input.get("instruction") or "revision")[:120]
    saved = await client.mutation(api.artifacts.save, {"artifactId": artifact_id, "token": token, "content": content,
                                                        "message": f"@{cfg.handle}: {what}",
                                                        "idempotencyKey": ctx.key("save")})
    await _note(ctx, thread_id, f"Revised #{slug}: version {saved['version']} is saved.")
    return {"artifactId": artifact_id, "version": saved["version"]}


async def _release(ctx: RunContext, artifact_id: str, token: float) -> None:
    """Free the lock, keeping the partial draft (``drafts:list`` shows it)."""
    try:
        await ctx.client.mutation(api.locks.release, {"artifactId": artifact_id, "token": token, "keepDraft": True})
    except Exception as exc:
        if error_code(exc) not in ("STALE_TOKEN", "NOT_HOLDER"):
            raise


async def _note(ctx: RunContext, thread_id: str | None, body: str, failed: str | None = None) -> None:
    """A line in the thread saying what the revision did (agents' posts never start runs)."""
    message_id = await post_streaming(ctx, thread_id)
    await finish_message(ctx, message_id, "failed" if failed else "done", body, failed)
