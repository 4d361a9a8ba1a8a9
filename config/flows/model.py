"""The models of a flow and of a pipeline stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..base import Section, check
from ..identity import check_handle

FlowView = Literal["discussion", "variations", "pipeline"]
StageOutput = Literal["content", "notes"]
MAX_FLOW_AGENTS = 5
MAX_STAGE_ATTEMPTS = 10
MAX_VARIATIONS = 10
# A stage actor or approver is an agent handle, "human" (any human member takes the turn), or
# "human:<handle>" (that person). An approver may also be "auto" (no review step).
ACTOR_HUMAN = "human"
APPROVER_AUTO = "auto"


def check_actor(value: str, *, approver: bool = False) -> str:
    if value == ACTOR_HUMAN or (approver and value == APPROVER_AUTO):
        return value
    if value.startswith(ACTOR_HUMAN + ":"):
        check_handle(value.split(":", 1)[1])
        return value
    try:
        return check_handle(value)
    except ValueError:
        extra = ', "auto"' if approver else ""
        raise ValueError(
            f'must be an agent handle, "human" or "human:<handle>"{extra} (got {value!r})'
        ) from None


def is_agent_actor(value: str) -> bool:
    return value not in (ACTOR_HUMAN, APPROVER_AUTO) and not value.startswith(ACTOR_HUMAN + ":")


class StageConfig(Section):
    name: str = Field(min_length=1, max_length=40, description="Stage name (draft, edit...).")
    actor: str = Field(description='Agent handle, "human", or "human:<handle>".')
    approver: str = Field(
        default=ACTOR_HUMAN,
        description='Who approves the output: "human", an agent handle, or "auto" (no review).',
    )
    instructions: str = Field(default="", description="What this stage must do.")
    output: StageOutput = Field(
        default="content",
        description='"content": the artifact\'s next version; "notes": a critique for the next stage.',
    )

    @field_validator("actor")
    @classmethod
    def _actor(cls, value: str) -> str:
        return check_actor(value)

    @field_validator("approver")
    @classmethod
    def _approver(cls, value: str) -> str:
        return check_actor(value, approver=True)


class FlowConfig(Section):
    title: str = Field(min_length=1, max_length=60, description="Name shown in the app.")
    description: str = Field(default="", description="One line shown in the flow picker.")
    view: FlowView = Field(description="discussion, variations or pipeline.")
    agents: list[str] = Field(
        default_factory=list,
        max_length=MAX_FLOW_AGENTS,
        description="Agent handles taking part (empty: every enabled agent).",
    )
    variations: int = Field(
        default=3, ge=1, le=MAX_VARIATIONS, description="Variations per round (variations view)."
    )
    temperatures: list[float] = Field(
        default_factory=list,
        description="One temperature per variation (one agent N times); empty: the agents' own.",
    )
    stages: list[StageConfig] = Field(
        default_factory=list, description="Pipeline stages in order (pipeline view)."
    )
    instructions: str = Field(default="", description="Added to every agent's prompt in the flow.")
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=MAX_STAGE_ATTEMPTS,
        description="Pipeline: attempts per stage before the pipeline stops (rejections count).",
    )
    hidden: bool = Field(default=False, description="true: not offered in the flow picker.")

    @field_validator("agents")
    @classmethod
    def _agents(cls, value: list[str]) -> list[str]:
        for h in value:
            check_handle(h)
        dup = {h for h in value if value.count(h) > 1}
        if dup:
            raise ValueError(f"lists {', '.join(sorted(dup))} more than once")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "FlowConfig":
        problems = []
        if self.view == "pipeline" and not self.stages:
            problems.append((("stages",), 'a "pipeline" flow needs at least one stage'))
        if self.view != "pipeline" and self.stages:
            msg = f'only a "pipeline" flow has stages (view is {self.view!r})'
            problems.append((("stages",), msg))
        if self.temperatures:
            if len(self.temperatures) != self.variations:
                problems.append(
                    (
                        ("temperatures",),
                        f"must list one temperature per variation ({self.variations}), "
                        f"got {len(self.temperatures)}",
                    )
                )
            for i, t in enumerate(self.temperatures):
                if not 0 <= t <= 2:
                    problems.append((("temperatures", i), f"must be between 0 and 2 (got {t:g})"))
        check(problems)
        return self

    def agent_handles(self) -> list[str]:
        """Handles the flow names itself, in stages included (configured order, no duplicates)."""
        found = list(self.agents)
        for s in self.stages:
            for who in (s.actor, s.approver):
                if is_agent_actor(who) and who not in found:
                    found.append(who)
        return found
