"""A discussion reply: an agent answers the message that mentioned it, streaming into the thread.

``messages:post`` queued one run per mentioned agent (docs/API.md); the worker runs this for
each, concurrently, so replies stream interleaved. Steps: read the thread and the referenced
artifacts -> open a streaming reply (everyone sees "@quinn is writing") -> stream the model:
every token to the live tail (UI cadence, shared pusher), batches to ``messages:append``
(persistence cadence) -> ``messages:finish``. A model failure (no key, rate limit, timeout,
provider error) finishes the reply as ``failed`` with the error's sentence as its text, so the
thread says what went wrong; nothing else is affected. A rate limit before the first token is
waited out first (``RunContext.stream``), the reply reading "waiting for the provider".
"""

from __future__ import annotations

import logging
from typing import Any

from collab.backend_client import ConvexError
from collab.backend_client.api import api
from collab.backend_client.space import error_code
from collab.flows.cadence import Batch, StreamBatcher
from collab.flows.context import RunContext, RunFailed
from collab.flows.errors import LLMError
from collab.flows.live import LiveStream, new_stream_key, pump
from collab.flows.prompts import discussion_messages

__all__ = ["finish_message", "load_context", "open_reply", "run_discussion", "stream_reply"]

log = logging.getLogger(__name__)


async def load_context(ctx: RunContext) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(asking message, thread, referenced artifacts, thread id) of the run."""
    client, run = ctx.client, ctx.run
    thread_id = ctx.input.get("threadId") or run.get("messageId")
    thread: list[dict[str, Any]] = []
    if thread_id:
        thread = await client.query(api.messages.list, {"spaceId": ctx.space_id, "threadId": thread_id})
    asking = next((m for m in thread if m["_id"] == run.get("messageId")), None)
    if asking is None:  # a run queued by hand: its input carries the prompt
        asking = {"_id": "", "authorHandle": "someone", "body": str(ctx.input.get("prompt") or ctx.input.get("body")
                                                                      or "Please share your view."),
                  "refs": [], "state": "done"}
    ref_ids = list(asking.get("refs", []))
    if run.get("artifactId") and run["artifactId"] not in ref_ids:
        ref_ids.append(run["artifactId"])
    if thread and thread[0].get("artifactId") and thread[0]["artifactId"] not in ref_ids:
        ref_ids.append(thread[0]["artifactId"])
    artifacts = []
    for a in ref_ids[:5]:
        try:
            artifacts.append(await client.query(api.artifacts.get, {"artifactId": a}))
        except ConvexError as exc:  # deleted since it was mentioned: the thread is still worth answering
            if error_code(exc) != "NOT_FOUND":
                raise
    return asking, thread, artifacts, thread_id


async def open_reply(ctx: RunContext, thread_id: str | None) -> tuple[str, LiveStream]:
    """Open the agent's streaming reply and its live stream in one mutation (everyone sees
    "@quinn is writing" at once); returns the message id and the stream, registered with the
    worker's pusher (unregister it when the reply ends)."""
    key = new_stream_key()
    args: dict[str, Any] = {"spaceId": ctx.space_id, "key": key, "runId": ctx.run_id}
    if thread_id:
        args["threadId"] = thread_id
    opened = await ctx.client.mutation(api.messages.openReply, args)
    return str(opened["messageId"]), ctx.pusher.register(str(opened["streamId"]), key)


async def finish_message(ctx: RunContext, message_id: str, state: str, body: str, error: str | None = None) -> None:
    """End the reply; a reply the backend already closed (run cancelled or lost) is left alone."""
    args: dict[str, Any] = {"messageId": message_id, "state": state, "body": body}
    if error is not None:
        args["error"] = error
    try:
        await ctx.client.mutation(api.messages.finish, args)
    except Exception as exc:
        if error_code(exc) != "NOT_STREAMING":
            raise


async def stream_reply(ctx: RunContext, message_id: str, live: LiveStream, messages: list[dict[str, str]],
                       sink: list[str] | None = None) -> str:
    """Stream the model into ``message_id`` at both cadences (``live`` is its UI lane); returns
    the whole text. Raises ``LLMError`` (after persisting what came before it; ``sink`` then
    holds that text)."""
    client = ctx.client

    async def persist(batch: Batch) -> None:
        try:
            await client.mutation(api.messages.append, {"messageId": message_id, "text": batch.text})
        except Exception as exc:
            # cancelled from the UI: the backend already closed the reply with its text
            if ctx.cancel.is_set() and error_code(exc) == "NOT_STREAMING":
                return
            raise
        live.persisted(batch.offset + len(batch.text))

    batcher = StreamBatcher(ctx.cadence, on_persist=persist)
    try:
        return await pump(ctx.stream(messages), batcher, live)
    finally:
        ctx.pusher.unregister(live)
        if sink is not None:
            sink.append(batcher.text)


async def run_discussion(ctx: RunContext) -> dict[str, Any]:
    asking, thread, artifacts, thread_id = await load_context(ctx)
    cfg = ctx.agent.config
    messages = discussion_messages(handle=cfg.handle, name=cfg.name, persona=cfg.persona, role=cfg.role,
                                   thread=thread, asking=asking, artifacts=artifacts)
    message_id, live = await open_reply(ctx, thread_id)
    ctx.on_wait = live.show_note  # "waiting for the provider" on this reply while it waits
    sink: list[str] = []
    try:
        text = await stream_reply(ctx, message_id, live, messages, sink)
    except LLMError as exc:
        sentence = str(exc)
        partial = "".join(sink)
        await finish_message(ctx, message_id, "failed", f"{partial}\n\n[{sentence}]" if partial else sentence,
                             sentence)
        raise RunFailed(sentence, retryable=exc.retryable) from exc
    if ctx.cancel.is_set():
        await finish_message(ctx, message_id, "failed", text, ctx.stop_reason or "cancelled")
        return {"messageId": message_id, "cancelled": True}
    await finish_message(ctx, message_id, "done", text)
    return {"messageId": message_id}
