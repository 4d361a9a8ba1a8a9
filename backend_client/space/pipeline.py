"""The pipeline facade (DESIGN 1.3, docs/PIPELINE.md): what the pipeline screen needs (the
artifact's pipelines, one pipeline with every attempt, the live tail of the stage output, the
stage track as data, the input of an attempt for its diff), who may do what (the wire's role
rule), and the transitions: start from a flow of the config, approve, reject with a reason,
cancel, retry, and a human actor's turn (take the lock, hand the output in). No Textual."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collab.backend_client.api import api
from collab.backend_client.live_query import LiveQuery
from collab.backend_client.space.errors import LockConflict, Queued
from collab.backend_client.space.locks import LockHold
from collab.config import Config, FlowConfig
from collab.wire.roles import describe, matches
from collab.wire.text import merge, parse_refs

if TYPE_CHECKING:
    from collab.backend_client.space.session import SpaceSession

__all__ = ["MARKS", "PipelineView", "StageView", "pipeline_flows", "stage_output", "stages_of", "start_args",
           "track", "track_line"]

# The stage track: done, at work or in review, not yet, stopped.
MARKS = {"done": "✓", "current": "●", "waiting": "○", "failed": "✗", "cancelled": "■"}
STATUS_WORDS = {"working": "at work", "awaitingReview": "awaiting review", "approved": "approved",
                "rejected": "rejected", "failed": "failed", "cancelled": "cancelled"}


def pipeline_flows(config: Config) -> dict[str, FlowConfig]:
    """The flows offered to start a pipeline: visible, with the pipeline view."""
    return {n: f for n, f in config.visible_flows().items() if f.view == "pipeline"}


def stages_of(flow: FlowConfig) -> list[dict[str, Any]]:
    return [{"name": s.name, "actor": s.actor, "approver": s.approver, "instructions": s.instructions,
             "output": s.output} for s in flow.stages]


def start_args(config: Config, flow_name: str, artifact_id: str) -> dict[str, Any]:
    """``pipelines:start`` arguments for a flow of the config (the backend never reads the
    config). ValueError with the flows there are for an unknown or non-pipeline flow."""
    flows = config.flows
    if flow_name not in flows:
        known = ", ".join(pipeline_flows(config)) or "none"
        raise ValueError(f"No flow named {flow_name!r}. Pipeline flows: {known}")
    flow = flows[flow_name]
    if flow.view != "pipeline":
        known = ", ".join(pipeline_flows(config)) or "none"
        raise ValueError(f"{flow_name!r} is a {flow.view} flow, not a pipeline. Pipeline flows: {known}")
    args: dict[str, Any] = {"artifactId": artifact_id, "flow": flow_name, "title": flow.title,
                            "stages": stages_of(flow), "maxAttempts": flow.max_attempts}
    if flow.instructions:
        args["instructions"] = flow.instructions
    return args


@dataclass(frozen=True)
class StageView:
    """One stage on the track: its place, who works and reviews, and how far it got."""

    index: int
    name: str
    actor: str  # @handle of who works on it (or the role before anyone took it)
    approver: str
    output: str
    state: str  # done / current / waiting / failed / cancelled
    attempt: int  # 0: not started
    status: str  # the latest attempt's status (working, awaitingReview, ...) or ""

    @property
    def mark(self) -> str:
        return MARKS[self.state]

    @property
    def words(self) -> str:
        return STATUS_WORDS.get(self.status, self.status)


def track(pipeline: dict[str, Any], runs: list[dict[str, Any]]) -> list[StageView]:
    """The stage track of a pipeline (``pipelines:get``)."""
    out = []
    current, status = int(pipeline["current"]), pipeline["status"]
    for i, stage in enumerate(pipeline["stages"]):
        mine = [r for r in runs if int(r["stage"]) == i]
        last = mine[-1] if mine else None
        if i < current or (i == current and status == "done"):
            state = "done"
        elif i > current:
            state = "waiting"
        elif status == "failed":
            state = "failed"
        elif status == "cancelled":
            state = "cancelled"
        else:
            state = "current"
        who = f"@{last['actorHandle']}" if last and last.get("actorHandle") else describe(stage["actor"])
        out.append(StageView(i, stage["name"], who, describe(stage["approver"]), stage["output"], state,
                             int(last["attempt"]) if last else 0, str(last["status"]) if last else ""))
    return out


def track_line(stages: list[StageView]) -> str:
    """``draft ✓ -> edit ● -> polish ○``."""
    return " -> ".join(f"{s.name} {s.mark}" for s in stages)


def stage_output(run: dict[str, Any], tails: list[dict[str, Any]] | None) -> str:
    """An attempt's output as it grows: the durable output (persistence cadence) joined with
    its proposal's live tail (UI cadence), the wire's merge rule."""
    row = next((r for r in tails or [] if r.get("proposalId") == run.get("proposalId")), None)
    durable = str(run.get("output") or "")
    return merge(durable, row) if run.get("status") == "working" and row is not None else durable


class PipelineView:
    def __init__(self, session: SpaceSession) -> None:
        self.session = session
        self.client = session.client
        self._inputs: dict[tuple[str, int], str] = {}

    # ------------------------------------------------------------------ live queries

    def watch_for_artifact(self, artifact_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.pipelines.forArtifact, {"artifactId": artifact_id})

    def watch(self, pipeline_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.pipelines.get, {"pipelineId": pipeline_id})

    def watch_tails(self, artifact_id: str) -> LiveQuery[Any]:
        """The live tails (~30 ms) of the outputs streaming into the artifact."""
        return self.client.watch(api.proposals.live, {"artifactId": artifact_id})

    # ------------------------------------------------------------------ who may

    def may_review(self, pipeline: dict[str, Any], run: dict[str, Any] | None) -> bool:
        if run is None or run.get("status") != "awaitingReview" or pipeline.get("status") != "awaitingReview":
            return False
        spec = pipeline["stages"][int(run["stage"])]["approver"]
        return matches(spec, str(self.session.me.get("kind", "human")), self.session.handle)

    def may_work(self, pipeline: dict[str, Any], run: dict[str, Any] | None) -> bool:
        if run is None or run.get("status") != "working" or pipeline.get("status") != "running":
            return False
        spec = pipeline["stages"][int(run["stage"])]["actor"]
        return matches(spec, str(self.session.me.get("kind", "human")), self.session.handle)

    def may_end(self, pipeline: dict[str, Any]) -> bool:
        """Cancel and retry: owners and whoever started it."""
        return self.session.role == "owner" or pipeline.get("startedBy") == self.session.actor_id

    # ------------------------------------------------------------------ reads

    async def input_of(self, artifact_id: str, version: int) -> str:
        """The content an attempt started from (versions never change: cached)."""
        key = (artifact_id, int(version))
        if key not in self._inputs:
            row = await self.client.query(api.artifacts.version, {"artifactId": artifact_id, "version": version})
            self._inputs[key] = str(row["content"])
        return self._inputs[key]

    async def find_artifact(self, slug: str) -> dict[str, Any] | None:
        rows = await self.client.query(api.artifacts.list, {"spaceId": self.session.space_id})
        return next((a for a in rows if a.get("slug") == slug.lower()), None)

    # ------------------------------------------------------------------ transitions

    async def start(self, artifact_id: str, flow_name: str) -> str:
        """Start the flow ``flow_name``'s pipeline on the artifact. ValueError for a flow that
        is not a pipeline; the backend's LOCKED when someone (or another pipeline) holds it."""
        args = start_args(self.session.config, flow_name, artifact_id)
        return str((await self.client.mutation(api.pipelines.start, args))["pipelineId"])

    async def start_command(self, text: str, default_artifact: str | None) -> tuple[str, dict[str, Any]]:
        """``/pipeline writing #plan`` (the composer): the flow, then the ``#artifact`` (default:
        the one on screen). Returns (pipelineId, artifact). ValueError for what is missing."""
        words = text.split()
        flow = next((w for w in words if not w.startswith("#")), None)
        if flow is None:
            raise ValueError(f"/pipeline needs a flow: {', '.join(pipeline_flows(self.session.config))}")
        refs = parse_refs(text)
        if refs:
            artifact = await self.find_artifact(refs[0])
            if artifact is None:
                raise ValueError(f"No artifact #{refs[0]} in this space")
        elif default_artifact:
            artifact = {"_id": default_artifact}
        else:
            raise ValueError(f"Which artifact? e.g. /pipeline {flow} #test-plan")
        return await self.start(str(artifact["_id"]), flow), artifact

    async def approve(self, pipeline_id: str, stage_run_id: str, reason: str | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"pipelineId": pipeline_id, "stageRunId": stage_run_id}
        if reason and reason.strip():
            args["reason"] = reason.strip()
        return dict(await self.client.mutation(api.pipelines.approve, args))

    async def reject(self, pipeline_id: str, stage_run_id: str, reason: str) -> dict[str, Any]:
        """ValueError for an empty reason (nothing is sent): the actor must learn why."""
        if not reason.strip():
            raise ValueError("Say why: the stage's actor gets your reason")
        return dict(await self.client.mutation(api.pipelines.reject, {"pipelineId": pipeline_id,
                                                                       "stageRunId": stage_run_id,
                                                                       "reason": reason.strip()}))

    async def cancel(self, pipeline_id: str, reason: str | None = None) -> None:
        args: dict[str, Any] = {"pipelineId": pipeline_id}
        if reason:
            args["reason"] = reason
        await self.client.mutation(api.pipelines.cancel, args)

    async def retry(self, pipeline_id: str) -> dict[str, Any]:
        return dict(await self.client.mutation(api.pipelines.retry, {"pipelineId": pipeline_id}))

    # ------------------------------------------------------------------ a human actor's turn

    async def work(self, artifact_id: str) -> LockHold | LockConflict | Queued:
        """Take the artifact's lock for this user's stage (the edit cycle's hold of this
        terminal); a refusal says who has it or which pipeline holds it."""
        return await self.session.artifacts.acquire(artifact_id, wait=False)

    async def submit(self, pipeline_id: str, stage_run_id: str, content: str) -> dict[str, Any]:
        """Hand the stage output in under this terminal's hold (which ends it)."""
        hold = self.session.artifacts.hold
        if hold is None or hold.token is None:
            raise RuntimeError("take the lock for your stage first")
        result = await hold.end_with(api.pipelines.submit, {"pipelineId": pipeline_id, "stageRunId": stage_run_id,
                                                             "token": hold.token, "content": content})
        hold.end()
        self.session.artifacts.hold = None
        return dict(result)
