"""The lock badge: who holds an artifact (human or agent), since when, and how many wait; and
the pipeline badge: which pipeline holds it, at which stage, doing what."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from collab.widgets.timefmt import ago


def lock_badge(holder: dict[str, Any] | None, queue_length: int, now_s: float, me: str = "") -> Text:
    """``■ @alice 2m +1`` (agents in another colour and marked ``agent``); empty when free."""
    if not holder:
        return Text("")
    handle = str(holder.get("handle", "?"))
    kind = str(holder.get("kind", "human"))
    mine = handle == me
    style = "bold green" if mine else ("bold magenta" if kind == "agent" else "bold yellow")
    text = Text()
    text.append("■ ", style=style)
    text.append("you" if mine else f"@{handle}", style=style)
    if kind == "agent":
        text.append(" agent", style="magenta")
    text.append(f" {ago(holder.get('since'), now_s)}", style="dim")
    if queue_length:
        text.append(f" +{queue_length} waiting", style="dim")
    return text


PIPELINE_WORDS = {"running": "at work", "awaitingReview": "in review", "failed": "stopped"}


def pipeline_badge(pipeline: dict[str, Any] | None) -> Text:
    """``⚙ Writing: edit in review`` (yellow; red when it stopped); empty when none holds it."""
    if not pipeline:
        return Text("")
    status = str(pipeline.get("status", ""))
    style = "bold red" if status == "failed" else "bold cyan"
    text = Text()
    text.append("⚙ ", style=style)
    text.append(f"{pipeline.get('title', 'pipeline')}: {pipeline.get('stageName', '?')}", style=style)
    text.append(f" {PIPELINE_WORDS.get(status, status)}", style="dim")
    return text
