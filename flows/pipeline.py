"""Pipeline stages run by agents (DESIGN 1.3, docs/PIPELINE.md): the ``stage`` run of an agent
actor and the ``review`` run of an agent approver, queued by the backend's transitions.

**A stage** (``run_stage``): the agent takes the artifact's lock through the same
:class:`~collab.backend_client.space.LockHold` as every edit (the pipeline lets only the
stage's actor have it), streams its output into the stage's proposal at both cadences (fenced
``proposals:append`` at the persistence cadence, the live tail at the UI cadence, one
``streams:push`` per tick for the whole worker) and hands it in with ``pipelines:submit``
(which ends the hold). Its prompt has the stage's instructions, the input version, the notes
of earlier stages, and on a later attempt every earlier reason and its previous output
(``flows.prompts.stage_messages``). A model error, a cancel or a lost lock stops it: the run
fails (the backend fails the stage, keeping the output so far) or is cancelled.

**A review** (``run_review``): the approver reads the stage's input and output and answers
with a structured verdict (JSON ``{"verdict": "approve" | "reject", "reason": "..."}``; a
plain ``APPROVE: ...`` / ``REJECT: ...`` line is accepted too), recorded by
``pipelines:approve`` / ``pipelines:reject`` as the agent itself. No verdict: the run fails,
the pipeline stops, ``pipelines:retry`` asks again.
"""

from __future__ import annotations

import json
import re
from typing import Any

from collab.backend_client.api import api
from collab.backend_client.space import FENCE_LOST, LockHold, error_code
from collab.flows.cadence import Batch, StreamBatcher
from collab.flows.context import RunContext, RunFailed
from collab.flows.edit import strip_fences
from collab.flows.errors import LLMError
from collab.flows.live import new_stream_key, pump
from collab.flows.prompts import review_messages, stage_messages

__all__ = ["parse_verdict", "run_review", "run_stage"]

_JSON = re.compile(r"\{.*?\}", re.DOTALL)
_LINE = re.compile(r"^\W*(approve|approved|accept|reject|rejected)\b\W*(.*)$", re.IGNORECASE)
_WORD = re.compile(r"\b(approve|approved|reject|rejected)\b", re.IGNORECASE)


def _verdict(word: str) -> str:
    return "approve" if word.lower().startswith(("appr", "acc")) else "reject"


def parse_verdict(text: str) -> tuple[str, str] | None:
    """``(verdict, reason)`` from a reviewer's answer: a JSON object (the asked form), else a
    line that starts with approve/reject, else the only one of the two words it uses. None
    when it says neither (or both, with no structure to tell them apart)."""
    for m in _JSON.finditer(text):
        try:
            data = json.loads(m.group())
        except ValueError:
            continue
        word = str(data.get("verdict") or data.get("decision") or "") if isinstance(data, dict) else ""
        if _WORD.fullmatch(word.strip()) or word.strip().lower() == "accept":
            return _verdict(word.strip()), str(data.get("reason") or "").strip()
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            return _verdict(m.group(1)), m.group(2).strip()
    words = {_verdict(w) for w in _WORD.findall(text)}
    if len(words) == 1:
        return words.pop(), text.strip()[:500]
    return None


async def _load(ctx: RunContext, status: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]] | None:
    """(pipeline, its attempts, this run's attempt), or None if the attempt moved on without
    this run (cancelled, decided, a stale run): there is nothing to do."""
    got = await ctx.client.query(api.pipelines.get, {"pipelineId": ctx.input["pipelineId"]})
    runs = list(got["runs"])
    sr = next((r for r in runs if r["_id"] == ctx.input["stageRunId"]), None)
    p = got["pipeline"]
    if sr is None or sr["status"] != status or p["status"] != status.replace("working", "running"):
        return None
    return p, runs, sr


async def _input(ctx: RunContext, p: dict[str, Any], sr: dict[str, Any]) -> tuple[dict[str, Any], str]:
    artifact = await ctx.client.query(api.artifacts.get, {"artifactId": p["artifactId"]})
    if artifact["version"] == sr["inputVersion"]:
        return artifact, str(artifact["content"])
    old = await ctx.client.query(api.artifacts.version, {"artifactId": p["artifactId"], "version": sr["inputVersion"]})
    return artifact, str(old["content"])


def _persona(ctx: RunContext) -> dict[str, str]:
    cfg = ctx.agent.config
    return {"handle": cfg.handle, "name": cfg.name, "persona": cfg.persona, "role": cfg.role}


async def run_stage(ctx: RunContext) -> dict[str, Any]:
    loaded = await _load(ctx, "working")
    if loaded is None:
        return {"skipped": "this stage attempt is no longer at work"}
    p, runs, sr = loaded
    artifact, input_content = await _input(ctx, p, sr)
    messages = stage_messages(**_persona(ctx), pipeline=p, runs=runs, stage_run=sr, artifact=artifact,
                              input_content=input_content)
    hold = ctx.hold(p["artifactId"])
    got = await hold.acquire(wait=False)
    if not isinstance(got, LockHold):
        raise RunFailed(f"@{ctx.agent.handle} could not take the lock of #{artifact['slug']} for stage "
                        f"{sr['stageName']}: @{getattr(got, 'handle', '?')} holds it")
    hold.on_lost.append(lambda _h: ctx.cancel.set())  # fenced out: stop writing at once
    try:
        text = await _write(ctx, hold, sr, messages)
    except BaseException:
        await hold.release(keep_draft=False)
        raise
    if ctx.cancel.is_set():
        await hold.release(keep_draft=False)
        if hold.lost_reason is not None:
            raise RunFailed(f"@{ctx.agent.handle} lost the lock of #{artifact['slug']} ({hold.lost_reason}) before "
                            "handing in its output; what it wrote is kept")
        return {"pipelineId": p["_id"], "stageRunId": sr["_id"], "cancelled": True}
    output = p["stages"][int(sr["stage"])]["output"]
    content = strip_fences(text) if output == "content" else text.strip()
    if not content.strip():
        await hold.release(keep_draft=False)
        raise RunFailed(f"@{ctx.agent.handle} wrote nothing for stage {sr['stageName']}")
    await hold.end_with(api.pipelines.submit, {"pipelineId": p["_id"], "stageRunId": sr["_id"],
                                               "token": hold.token, "content": content})
    hold.end()  # handing in ended the hold
    return {"pipelineId": p["_id"], "stageRunId": sr["_id"], "length": len(content)}


async def _write(ctx: RunContext, hold: LockHold, sr: dict[str, Any], messages: list[dict[str, str]]) -> str:
    """Stream the model into the stage's proposal under the hold; returns the whole text. A
    model error fails the run (the text so far is persisted first)."""
    client, proposal_id = ctx.client, sr["proposalId"]
    key = new_stream_key()
    opened = await client.mutation(api.proposals.open, {"proposalId": proposal_id, "key": key, "token": hold.token})
    live = ctx.pusher.register(str(opened["streamId"]), key, base=len(opened["content"]))

    async def persist(batch: Batch) -> None:
        await client.mutation(api.proposals.append, {"proposalId": proposal_id, "text": batch.text,
                                                      "token": hold.token})
        live.persisted(batch.offset + len(batch.text))

    try:
        return await pump(ctx.stream(messages), StreamBatcher(ctx.cadence, on_persist=persist), live)
    except LLMError as exc:
        raise RunFailed(str(exc), retryable=exc.retryable) from exc
    except Exception as exc:
        if error_code(exc) in FENCE_LOST:  # a fenced append refused: the hold is over
            hold.lost_reason = hold.lost_reason or "refused"
            ctx.cancel.set()
            return ""
        if ctx.cancel.is_set() and error_code(exc) in ("NOT_STREAMING", "STAGE_OVER"):
            return ""  # cancelled from the app: the backend closed the output with its text
        raise
    finally:
        ctx.pusher.unregister(live)


async def run_review(ctx: RunContext) -> dict[str, Any]:
    loaded = await _load(ctx, "awaitingReview")
    if loaded is None:
        return {"skipped": "this output is no longer awaiting review"}
    p, runs, sr = loaded
    artifact, input_content = await _input(ctx, p, sr)
    messages = review_messages(**_persona(ctx), pipeline=p, runs=runs, stage_run=sr, artifact=artifact,
                               input_content=input_content)
    parts: list[str] = []
    try:
        async for chunk in ctx.stream(messages):
            parts.append(chunk.text)
    except LLMError as exc:
        raise RunFailed(str(exc), retryable=exc.retryable) from exc
    if ctx.cancel.is_set():
        return {"cancelled": True}
    answer = "".join(parts)
    verdict = parse_verdict(answer)
    if verdict is None:
        raise RunFailed(f"@{ctx.agent.handle}'s review said neither approve nor reject: {answer.strip()[:200]!r}")
    decision, reason = verdict
    args = {"pipelineId": p["_id"], "stageRunId": sr["_id"]}
    if decision == "approve":
        await ctx.client.mutation(api.pipelines.approve, {**args, **({"reason": reason[:4000]} if reason else {})})
    else:
        await ctx.client.mutation(api.pipelines.reject, {**args, "reason": (reason or "rejected without a reason "
                                                                                       "(see the review)")[:4000]})
    return {"verdict": decision, "reason": reason, "answer": answer[:2000]}
