"""The variations flows (DESIGN 1.2): one run writes one variation of a round, or one
composition, into its proposal.

``variations:start`` / ``more`` / ``compose`` queued one run per variation (docs/VARIATIONS.md);
the worker runs them concurrently, each its own litellm stream at the round's temperature for
it (the run's own, not the agent's), so N columns grow side by side. Steps: read the round and
the artifact as it was when the round started -> ``proposals:open`` (the variation shows
``streaming``) -> stream the model at both cadences (``proposals:append`` at the persistence
cadence, the live tail through the shared pusher at the UI cadence) -> ``proposals:finish``
with the content, usage and cost. A model failure (no key, rate limit, timeout) finishes only
this variation as ``failed`` with the error's sentence; the others go on. A cancel (one or all,
from the app) stops the stream within a second; the backend has already closed the proposal
with the text it had.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from collab.backend_client.api import api
from collab.backend_client.space import error_code
from collab.flows.cadence import Batch, StreamBatcher
from collab.flows.context import RunContext, RunFailed
from collab.flows.edit import strip_fences
from collab.flows.errors import LLMError
from collab.flows.live import new_stream_key, prepend, pump, until_text
from collab.flows.prompts import compose_messages, variation_messages

__all__ = ["run_compose", "run_variation"]

log = logging.getLogger(__name__)


async def _base_text(ctx: RunContext, artifact: dict[str, Any], version: float) -> str:
    """The artifact's content at the version the round started from (it may have moved on)."""
    if artifact["version"] == version:
        return str(artifact["content"])
    row = await ctx.client.query(api.artifacts.version, {"artifactId": artifact["_id"], "version": version})
    return str(row["content"])


async def _write(ctx: RunContext, proposal_id: str, messages: Sequence[dict[str, str]],
                 temperature: float | None) -> dict[str, Any]:
    """Stream the model into the proposal at both cadences, then finish it (or fail it with the
    provider's sentence, keeping what came before). The proposal opens (``streaming``) at the
    model's first token: until then it shows ``queued``, which is what it is while the model
    starts or serves other runs first (the local model runs one generation at a time)."""
    client = ctx.client
    stream = ctx.stream(messages, temperature=temperature)
    try:
        first = await until_text(stream)
    except LLMError as exc:  # failed before writing anything
        await _finish(ctx, proposal_id, "failed", "", str(exc))
        raise RunFailed(str(exc), retryable=exc.retryable) from exc
    if ctx.cancel.is_set():
        return {"proposalId": proposal_id, "cancelled": True}
    key = new_stream_key()
    try:
        opened = await client.mutation(api.proposals.open, {"proposalId": proposal_id, "key": key})
    except Exception as exc:  # cancelled before it started: nothing to write
        if error_code(exc) == "NOT_STREAMING":
            return {"proposalId": proposal_id, "cancelled": True}
        raise
    live = ctx.pusher.register(str(opened["streamId"]), key, base=len(opened["content"]))

    async def persist(batch: Batch) -> None:
        try:
            await client.mutation(api.proposals.append, {"proposalId": proposal_id, "text": batch.text})
        except Exception as exc:
            if ctx.cancel.is_set() and error_code(exc) == "NOT_STREAMING":
                return  # cancelled from the app: the backend closed it with its text
            raise
        live.persisted(len(opened["content"]) + batch.offset + len(batch.text))

    batcher = StreamBatcher(ctx.cadence, on_persist=persist)
    try:
        text = await pump(prepend(first, stream), batcher, live)
    except LLMError as exc:
        sentence = str(exc)
        await _finish(ctx, proposal_id, "failed", batcher.text, sentence)
        raise RunFailed(sentence, retryable=exc.retryable) from exc
    finally:
        ctx.pusher.unregister(live)
    if ctx.cancel.is_set():
        return {"proposalId": proposal_id, "cancelled": True}
    content = strip_fences(text)
    if not content.strip():
        failure = f"@{ctx.agent.handle} wrote nothing"
        await _finish(ctx, proposal_id, "failed", text, failure)
        raise RunFailed(failure)
    await _finish(ctx, proposal_id, "done", content)
    return {"proposalId": proposal_id, "chars": len(content)}


async def _finish(ctx: RunContext, proposal_id: str, status: str, content: str, error: str | None = None) -> None:
    args: dict[str, Any] = {"proposalId": proposal_id, "status": status, "content": content, **ctx.usage_fields()}
    if error is not None:
        args["error"] = error[:2000]
    try:
        await ctx.client.mutation(api.proposals.finish, args)
    except Exception as exc:
        if error_code(exc) != "NOT_STREAMING":  # closed by a cancel meanwhile: its text is kept
            raise


async def run_variation(ctx: RunContext) -> dict[str, Any]:
    inp, client, cfg = ctx.input, ctx.client, ctx.agent.config
    got = await client.query(api.variations.round, {"roundId": inp["roundId"]})
    rnd = got["round"]
    mine = next(v for v in got["variations"] if v["proposalId"] == inp["proposalId"])
    artifact = await client.query(api.artifacts.get, {"artifactId": rnd["artifactId"]})
    base = await _base_text(ctx, artifact, mine["baseVersion"])
    shortlist: list[tuple[int, str]] = []
    if rnd.get("parentRoundId") and rnd["shortlist"]:
        parent = await client.query(api.variations.round, {"roundId": rnd["parentRoundId"]})
        wanted = set(rnd["shortlist"])
        shortlist = [(int(v["index"]), str(v["content"])) for v in parent["variations"] if v["variationId"] in wanted]
    messages = variation_messages(handle=cfg.handle, name=cfg.name, persona=cfg.persona, role=cfg.role,
                                  artifact={**artifact, "version": mine["baseVersion"]}, base=base,
                                  instruction=rnd["instruction"], index=int(inp["index"]), n=int(rnd["n"]),
                                  flow_instructions=rnd.get("flowInstructions"), shortlist=shortlist,
                                  note=rnd.get("note"))
    return await _write(ctx, inp["proposalId"], messages, inp.get("temperature"))


async def run_compose(ctx: RunContext) -> dict[str, Any]:
    inp, cfg = ctx.input, ctx.agent.config
    got = await ctx.client.query(api.variations.round, {"roundId": inp["roundId"]})
    artifact = await ctx.client.query(api.artifacts.get, {"artifactId": got["round"]["artifactId"]})
    messages = compose_messages(handle=cfg.handle, name=cfg.name, persona=cfg.persona, role=cfg.role,
                                artifact=artifact, parts=inp["parts"], instruction=inp["instruction"])
    return await _write(ctx, inp["proposalId"], messages, None)
