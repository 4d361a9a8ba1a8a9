"""``[budget]``: what agent runs may cost per space (USD, over the space's whole life).

The owner's config is the source of truth: when an owner opens a space, the app records that
space's budget on it (``spaces:open``), and the backend refuses to queue runs once the space has
spent it (``BUDGET_EXCEEDED``), whatever client asks. Unset: no limit."""

from __future__ import annotations

from pydantic import Field

from .base import Section


class BudgetConfig(Section):
    usd: float | None = Field(
        default=None, ge=0, le=1_000_000,
        description="Budget of every space you own, in USD over its life. Unset: no limit.",
    )
    spaces: dict[str, float] = Field(
        default_factory=dict,
        description="Per space name, overriding usd: spaces = { main = 5.0 }.",
    )

    def for_space(self, name: str) -> float | None:
        return self.spaces.get(name, self.usd)
