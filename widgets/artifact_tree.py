"""The artifact tree: every artifact of the space with its tags and lock badge, live.

Two live queries feed it: ``artifacts:list`` (titles, tags, versions; no content) and
``locks:list`` (held locks, and artifacts a pipeline holds, kept in a separate table so lease
renewals never re-run the list).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from collab.widgets.lock_badge import lock_badge, pipeline_badge


class ArtifactTree(OptionList):
    """Arrow keys move; the highlighted artifact is the one the document view shows."""


    class Highlighted(Message):
        def __init__(self, artifact_id: str | None) -> None:
            super().__init__()
            self.artifact_id = artifact_id

    def __init__(self, clock: Callable[[], float], me: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.me = me
        self.artifacts: list[dict[str, Any]] = []
        self.locks: dict[str, dict[str, Any]] = {}
        self._loaded = False

    def on_mount(self) -> None:
        self.border_title = "Artifacts"
        self._render_options()
        # "since 2m" badges age; a redraw every 30 s is enough and costs nothing at idle.
        self.set_interval(30, self._render_options)

    def set_artifacts(self, artifacts: list[dict[str, Any]]) -> None:
        self.artifacts = sorted(artifacts, key=lambda a: (str(a.get("title", "")).lower(), a.get("_id")))
        self._loaded = True
        self._render_options()

    def set_locks(self, locks: list[dict[str, Any]]) -> None:
        self.locks = {str(row["artifactId"]): row for row in locks}
        self._render_options()

    @property
    def selected_id(self) -> str | None:
        idx = self.highlighted
        if idx is None or idx >= self.option_count:
            return None
        return self.get_option_at_index(idx).id

    def _prompt(self, art: dict[str, Any]) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(str(art.get("title", "untitled")), style="bold")
        text.append(f" v{art.get('version', '?')}", style="dim")
        tags = art.get("tags") or []
        if tags:
            text.append("\n  " + " ".join(f"#{t}" for t in tags), style="cyan")
        lock = self.locks.get(str(art["_id"]))
        if lock and lock.get("pipeline"):
            text.append("\n  ")
            text.append_text(pipeline_badge(lock["pipeline"]))
        if lock and lock.get("holder"):
            text.append("\n  ")
            text.append_text(lock_badge(lock["holder"], int(lock.get("queueLength") or 0), self.clock(), self.me))
        return text

    def _render_options(self) -> None:
        keep = self.selected_id
        if not self._loaded:
            return
        if not self.artifacts:
            self.clear_options()
            self.add_option(Option(Text("No artifacts yet.\nPress n to create one.", style="dim"), disabled=True))
            return
        options = [Option(self._prompt(a), id=str(a["_id"])) for a in self.artifacts]
        self.clear_options()
        self.add_options(options)
        ids = [o.id for o in options]
        self.highlighted = ids.index(keep) if keep in ids else 0

    def select_id(self, artifact_id: str) -> None:
        for i in range(self.option_count):
            if self.get_option_at_index(i).id == artifact_id:
                self.highlighted = i
                return

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.post_message(self.Highlighted(event.option.id))
