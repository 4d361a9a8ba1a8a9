"""The presence bar: who is here (humans and agents), who types, what each one views, what
each one holds. Fed by ``presence:list`` (its own table: heartbeats never re-run content
queries), ``spaces:members`` and ``locks:list``."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static


class PresenceBar(Static):
    def __init__(self, me: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.me = me
        self.members: list[dict[str, Any]] = []
        self.presence: list[dict[str, Any]] = []
        self.holding: dict[str, list[str]] = {}  # handle -> artifact titles
        self.titles: dict[str, str] = {}  # artifactId -> slug

    def set_members(self, members: list[dict[str, Any]]) -> None:
        self.members = members
        self._draw()

    def set_presence(self, rows: list[dict[str, Any]]) -> None:
        self.presence = rows
        self._draw()

    def set_locks(self, locks: list[dict[str, Any]], titles: dict[str, str]) -> None:
        self.titles = titles
        held: dict[str, list[str]] = {}
        for row in locks:
            holder = row.get("holder") or {}
            if holder.get("handle"):
                held.setdefault(str(holder["handle"]), []).append(titles.get(str(row["artifactId"]), "?"))
        self.holding = held
        self._draw()

    def _draw(self) -> None:
        here: dict[str, dict[str, Any]] = {}
        for row in self.presence:
            h = str(row.get("actorHandle", "?"))
            cur = here.setdefault(h, {"typing": False, "artifacts": set(), "kind": row.get("actorKind")})
            cur["typing"] = cur["typing"] or bool(row.get("typing"))
            if row.get("artifactId"):
                cur["artifacts"].add(self.titles.get(str(row["artifactId"]), "?"))
        text = Text(no_wrap=True, overflow="ellipsis")
        humans = [m for m in self.members if m.get("kind") != "agent"]
        agents = [m for m in self.members if m.get("kind") == "agent"]
        for m in humans:
            h = str(m.get("handle"))
            info = here.get(h)
            style = "bold green" if info else "dim"
            text.append(("● " if info else "○ ") + ("you" if h == self.me else f"@{h}"), style=style)
            if info and info["typing"]:
                text.append(" ✎typing", style="italic yellow")
            if info and info["artifacts"]:
                text.append(" ▸" + ",".join(f"#{a}" for a in sorted(info["artifacts"])), style="cyan")
            for held in self.holding.get(h, []):
                text.append(f" ■#{held}", style="yellow")
            text.append("  ")
        if agents:
            text.append("agents:", style="dim")
            for m in agents:
                h = str(m.get("handle"))
                active = h in here or h in self.holding
                text.append(f" @{h}", style="bold magenta" if active else "magenta")
                for held in self.holding.get(h, []):
                    text.append(f" ■#{held}", style="yellow")
        self.update(text)
