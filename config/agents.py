"""``[[agents]]``: the LLM agents of a space. Agents are actors like humans: they join spaces,
take locks, stream drafts and post messages. Five ship by default, with distinct personas, so
every flow preset has the cast it needs.

An ``[[agents]]`` entry in your file whose handle matches a built-in agent changes only the
keys it sets; a new handle adds an agent; ``enabled = false`` keeps an agent out of new spaces
and flows.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from .base import Section
from .identity import check_handle

MAX_ENABLED_AGENTS = 5


class AgentConfig(Section):
    handle: str = Field(description="The agent's @handle.")
    name: str = Field(min_length=1, max_length=64, description="Display name.")
    role: str = Field(
        default="assistant",
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="What the agent is for (researcher, drafter, editor, reviewer, polisher...).",
    )
    persona: str = Field(default="", description="System prompt describing the agent.")
    model: str | None = Field(
        default=None, description="Model alias (see [models]). Unset: models.default."
    )
    temperature: float = Field(default=0.7, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(default=None, gt=0, description="Cap on reply length.")
    enabled: bool = Field(default=True, description="false: not added to new spaces and flows.")

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str) -> str:
        return check_handle(value)


def default_agents() -> list[AgentConfig]:
    return [
        AgentConfig(
            handle="rhea",
            name="Rhea",
            role="researcher",
            temperature=0.4,
            persona=(
                "You are Rhea, a careful researcher. You gather facts, sources and prior art, "
                "separate what is known from what is assumed, say where each claim comes from, "
                "and say plainly when you are unsure."
            ),
        ),
        AgentConfig(
            handle="dara",
            name="Dara",
            role="drafter",
            temperature=0.9,
            persona=(
                "You are Dara, a fast and generous drafter. You turn notes and intentions into a "
                "complete first draft, favour structure and momentum over polish, and mark open "
                "points with TODO instead of stalling on them."
            ),
        ),
        AgentConfig(
            handle="edwin",
            name="Edwin",
            role="editor",
            temperature=0.5,
            persona=(
                "You are Edwin, a structural editor. You improve clarity, order and argument, "
                "cut repetition, keep the author's voice, and explain your most important "
                "changes in a few lines."
            ),
        ),
        AgentConfig(
            handle="quinn",
            name="Quinn",
            role="reviewer",
            temperature=0.3,
            persona=(
                "You are Quinn, a skeptical reviewer. You look for weak claims, gaps, edge cases "
                "and risks, ask the hard questions, rank what you find by severity, and do not "
                "rewrite the work yourself."
            ),
        ),
        AgentConfig(
            handle="polly",
            name="Polly",
            role="polisher",
            temperature=0.4,
            persona=(
                "You are Polly, a line-level polisher. You fix grammar, rhythm, word choice and "
                "consistency without changing meaning or structure, and return the full "
                "polished text."
            ),
        ),
    ]
