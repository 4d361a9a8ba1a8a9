"""The presence bar: who is here (humans and agents), who types, what each one views, what
each one holds, and what every agent is doing (idle, queued, thinking, writing into which
artifact or reply at ~N tokens/s). It binds its own live queries: ``presence:list`` (its own
table: heartbeats never re-run content queries), ``spaces:members``, ``locks:list``,
``artifacts:list`` (for the slugs), ``runs:active`` and ``streams:forSpace`` (the discussion
pane watches the same tails: one subscription)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from collab.backend_client.space import SpaceSession
from collab.widgets.live import LiveBinding


class PresenceBar(Static):
    def __init__(self, session: SpaceSession | None = None, me: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.me = session.handle if session is not None else me
        self.members: list[dict[str, Any]] = []
        self.presence: list[dict[str, Any]] = []
        self.holding: dict[str, list[str]] = {}  # handle -> artifact titles
        self.titles: dict[str, str] = {}  # artifactId -> slug
        self._locks: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []  # unfinished runs: what each agent is doing
        self.streams: list[dict[str, Any]] = []  # live tails: where each agent writes, how fast
        self._bindings = [LiveBinding(self, lambda rows: self.set_members(rows or [])),
                          LiveBinding(self, lambda rows: self.set_presence(rows or [])),
                          LiveBinding(self, self._on_locks),
                          LiveBinding(self, self._on_artifacts),
                          LiveBinding(self, lambda rows: self.set_runs(rows or []), lambda err: None),
                          LiveBinding(self, lambda rows: self.set_streams(rows or []), lambda err: None)]

    def on_mount(self) -> None:
        s = self.session
        if s is None:
            return
        for b, live in zip(self._bindings, (s.watch_members(), s.watch_presence(), s.artifacts.watch_locks(),
                                            s.artifacts.watch_list(), s.members.watch_active_runs(),
                                            s.discussion.watch_streams())):
            b.bind(live)

    def on_unmount(self) -> None:
        for b in self._bindings:
            b.close()

    def _on_locks(self, locks: list[dict[str, Any]] | None) -> None:
        self._locks = list(locks or [])
        self.set_locks(self._locks, self.titles)

    def _on_artifacts(self, artifacts: list[dict[str, Any]] | None) -> None:
        titles = {str(a["_id"]): str(a.get("slug", a.get("title", "?"))) for a in artifacts or []}
        self.set_locks(self._locks, titles)

    def set_members(self, members: list[dict[str, Any]]) -> None:
        self.members = members
        self._draw()

    def set_runs(self, rows: list[dict[str, Any]]) -> None:
        self.runs = rows
        self._draw()

    def set_streams(self, rows: list[dict[str, Any]]) -> None:
        self.streams = rows
        self._draw()

    def agent_state(self, handle: str) -> tuple[str, str] | None:
        """(text, style) of what agent ``handle`` is doing: writing into #artifact or a reply at
        ~N tokens/s (estimated from the live tail: ~4 characters a token), thinking (its run
        was claimed, nothing streamed yet), queued; None when idle."""
        for row in self.streams:
            if row.get("actorHandle") != handle:
                continue
            where = (f"✎#{self.titles.get(str(row.get('artifactId')), '?')}" if row.get("kind") == "draft"
                     else "↳reply")
            secs = (float(row.get("updatedAt", 0)) - float(row.get("startedAt", 0))) / 1000
            chars = float(row.get("base", 0)) + len(str(row.get("text", "")))
            rate = f" ~{chars / 4 / secs:.0f}t/s" if secs >= 0.5 and chars else ""
            return where + rate, "green"
        status = [r["status"] for r in self.runs if r.get("agentHandle") == handle]
        if any(st in ("claimed", "streaming") for st in status):
            return "…thinking", "italic"
        if "queued" in status:
            return "⧗queued", "dim"
        return None

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
        self.refresh()  # render() lays the items out for the width the bar has right now

    def items(self) -> tuple[list[Text], list[Text]]:
        """(humans, agents): one Text per person, most relevant first (you, then who is here;
        agents at work before idle ones), so a narrow pane drops the least useful ones."""
        here: dict[str, dict[str, Any]] = {}
        for row in self.presence:
            h = str(row.get("actorHandle", "?"))
            cur = here.setdefault(h, {"typing": False, "artifacts": set(), "kind": row.get("actorKind")})
            cur["typing"] = cur["typing"] or bool(row.get("typing"))
            if row.get("artifactId"):
                label = self.titles.get(str(row["artifactId"]), "?")
                view = str(row.get("view") or "")
                if view.startswith("variations r"):  # which round they look at
                    label += "·" + view.split()[-1]
                cur["artifacts"].add(label)
        humans: list[tuple[int, Text]] = []
        for m in self.members:
            if m.get("kind") == "agent":
                continue
            h = str(m.get("handle"))
            info = here.get(h)
            item = Text()
            item.append(("● " if info else "○ ") + ("you" if h == self.me else f"@{h}"),
                        style="bold green" if info else "dim")
            if info and info["typing"]:
                item.append(" ✎typing", style="italic yellow")
            if info and info["artifacts"]:
                item.append(" ▸" + ",".join(f"#{a}" for a in sorted(info["artifacts"])), style="cyan")
            for held in self.holding.get(h, []):
                item.append(f" ■#{held}", style="yellow")
            humans.append((0 if h == self.me else 1 if info else 2, item))
        agents: list[tuple[int, Text]] = []
        for m in self.members:
            if m.get("kind") != "agent":
                continue
            h = str(m.get("handle"))
            state = self.agent_state(h)
            active = h in here or h in self.holding or state is not None
            item = Text(f"@{h}", style="bold magenta" if active else "magenta")
            if state is not None:
                item.append(" " + state[0], style=state[1])
            for held in self.holding.get(h, []):
                item.append(f" ■#{held}", style="yellow")
            agents.append((0 if active else 1, item))
        # Stable sorts: members keep their order within a rank, so the bar does not shuffle.
        return ([t for _, t in sorted(humans, key=lambda p: p[0])],
                [t for _, t in sorted(agents, key=lambda p: p[0])])

    def render(self) -> Text:
        return fit(*self.items(), self.size.width or 80)


def fit(humans: list[Text], agents: list[Text], width: int) -> Text:
    """Lay the items out in ``width`` cells; what does not fit becomes "+N" (N people left
    out) instead of a cut-off name. You (the first human) are always shown."""
    out = Text(no_wrap=True, overflow="ellipsis")
    total = len(humans) + len(agents)
    shown = 0
    for group, items in (("", humans), ("agents:", agents)):
        for i, item in enumerate(items):
            sep = (2 if out.cell_len else 0) if (group == "" or i == 0) else 1
            head = (Text(group, style="dim") if group and i == 0 else Text())
            piece = Text(" " * sep) + head + (Text(" ") if group and i == 0 else Text()) + item
            left = total - shown - 1
            room = width - out.cell_len - (len(f" +{left}") if left else 0)
            if piece.cell_len > room and shown > 0:
                out.append(f" +{total - shown}", style="bold")
                return out
            out.append_text(piece)
            shown += 1
    return out
