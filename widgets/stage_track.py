"""The stage track of a pipeline: ``draft ✓ -> edit ● -> polish ○`` on one line (it wraps in a
narrow pane), then one row per stage with who works on it, the attempt and its status, cut
to the width (never wrapped mid-name)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widgets import Static

from collab.backend_client.space import StageView

__all__ = ["StageTrack", "attempts_text", "track_text"]

RUN_MARK = {"approved": ("✓", "green"), "rejected": ("✗", "red"), "failed": ("✗", "red"),
            "cancelled": ("■", "red"), "working": ("●", "yellow"), "awaitingReview": ("●", "yellow")}
MARK_STYLE = {"done": "bold green", "current": "bold yellow", "waiting": "dim", "failed": "bold red",
              "cancelled": "bold red"}


def track_text(stages: list[StageView]) -> Text:
    text = Text()
    for i, s in enumerate(stages):
        if i:
            text.append(" -> ", style="dim")
        text.append(s.name, style="bold" if s.state == "current" else "")
        text.append(f" {s.mark}", style=MARK_STYLE[s.state])
    return text


def _row(s: StageView) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{s.mark} ", style=MARK_STYLE[s.state])
    text.append(s.name, style="bold")
    text.append(f"  {s.actor}", style="magenta" if s.actor.startswith("@") else "dim")
    if s.attempt:
        text.append(f"  #{s.attempt}", style="cyan")
        text.append(f"  {s.words}", style=MARK_STYLE.get(s.state, ""))
    if s.output == "notes":
        text.append("  notes", style="dim italic")
    if s.state in ("current", "waiting"):
        text.append(f"  review: {s.approver}", style="dim")
    return text


def attempts_text(runs: list[dict[str, Any]]) -> Text:
    """Every attempt, newest first: its decision, reviewer, reason, error, the version it became
    (a long reason wraps: it is what the next attempt answers)."""
    text = Text()
    for i, r in enumerate(reversed(runs)):
        mark, style = RUN_MARK.get(r["status"], ("·", ""))
        if i:
            text.append("\n")
        text.append(f"{mark} ", style=style)
        text.append(f"{r['stageName']} #{r['attempt']:g}", style="bold")
        reviewer = (r.get("reviewer") or {}).get("handle")
        if r["status"] in ("approved", "rejected"):
            text.append(f" {r['status']} by {'auto' if reviewer == 'auto' else '@' + str(reviewer)}")
            if r.get("outputVersion"):
                text.append(f" (v{r['outputVersion']:g})", style="cyan")
            if r.get("reason"):
                text.append(f": {r['reason']}", style="italic")
        elif r.get("error"):
            text.append(f" {r['status']}: {r['error']}", style="red")
        else:
            text.append(f" {'awaiting review' if r['status'] == 'awaitingReview' else 'at work'}", style="dim")
    if not runs:
        text.append("Attempts and their reasons appear here.", style="dim")
    return text


class StageTrack(Static):
    DEFAULT_CSS = "StageTrack { height: auto; padding: 0 1; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.stages: list[StageView] = []

    def set_stages(self, stages: list[StageView]) -> None:
        if stages != self.stages:
            self.stages = list(stages)
            self.update(self._render_track())

    def _render_track(self) -> RenderableType:
        if not self.stages:
            return Text("No pipeline on this artifact yet: s starts one.", style="dim italic")
        return Group(track_text(self.stages), *(_row(s) for s in self.stages))
