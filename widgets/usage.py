"""What the agents cost, as text: the status line in the top bar (the space's totals today,
since the app was opened, all time, and the budget) and the formatting shared with the members
screen and the message log. It binds ``usage:summary`` through the members facade; the query
re-runs only when a run reports its usage, never on a streamed token."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from collab.backend_client.space import SpaceSession
from collab.backend_client.space.members import money, tokens

__all__ = ["UsageLine", "money", "run_cost", "tokens"]
from collab.widgets.live import LiveBinding




def run_cost(usage: Any) -> str:
    """The tokens and cost of one run, for the message or version it produced."""
    if not isinstance(usage, dict):
        return ""
    total = float(usage.get("promptTokens", 0)) + float(usage.get("completionTokens", 0))
    approx = "~" if usage.get("estimated") else ""
    return f"{approx}{tokens(total)} {money(float(usage.get('costUsd', 0)))}"


class UsageLine(Static):
    """``Σ today $0.01 · session $0.004 · all $1.20/$5`` (the budget after the slash)."""

    def __init__(self, session: SpaceSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.summary: dict[str, Any] = {}
        self._live = LiveBinding(self, self._on_usage, lambda err: None)

    def on_mount(self) -> None:
        self.display = False  # shown once there is something to say (a cost, a budget)
        self._live.bind(self.session.members.watch_usage())

    def on_unmount(self) -> None:
        self._live.close()

    def _on_usage(self, value: Any) -> None:
        self.summary = value or {}
        self.display = bool(self.text(10_000).cell_len)
        self.refresh(layout=True)

    def text(self, width: int) -> Text:
        s = self.summary
        if not s:
            return Text("")
        windows = s.get("windows") or []
        cost = [float((w.get("total") or {}).get("costUsd", 0)) for w in windows] + \
            [float(((s.get("allTime") or {}).get("total") or {}).get("costUsd", 0))]
        budget = s.get("budgetUsd")
        if budget is None and not any(cost):
            return Text("")  # nothing spent yet, no budget: nothing to say
        over = budget is not None and cost[-1] >= budget
        all_time = money(cost[-1]) + (f"/{money(budget)}" if budget is not None else "")
        full = Text.assemble(("Σ ", "dim"), "today ", money(cost[0]) if len(cost) > 2 else "-",
                             (" · ", "dim"), "session ", money(cost[1]) if len(cost) > 2 else "-",
                             (" · ", "dim"), "all ", (all_time, "bold red" if over else ""))
        if full.cell_len <= width:
            return full
        return Text.assemble(("Σ ", "dim"), (all_time, "bold red" if over else ""))

    def get_content_width(self, container: Any, viewport: Any) -> int:
        return min(self.text(10_000).cell_len, max(0, container.width // 2))

    def render(self) -> Text:
        return self.text(self.size.width or 40)
