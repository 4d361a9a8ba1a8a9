"""History: every version with author and source (human / agent / merge), the content of the
selected one, the diff between any two (mark two with space, d diffs; d alone diffs the
selected version against the one before it), and restore (a new version with old content).

The newest versions are a live query; older ones are paged in (``artifacts:historyPage``) when
the cursor reaches the last one shown, so a long history is reachable to v1."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from collab.backend_client import ConvexError
from collab.backend_client.space import LockConflict, SpaceSession, error_text
from collab.screens.diff import diff_text
from collab.widgets.keys import binding
from collab.widgets.live import LiveBinding
from collab.widgets.timefmt import ago


class HistoryScreen(Screen[None]):
    BINDINGS = [
        binding("history.mark", "mark", description="Mark"),
        binding("history.diff", "diff", description="Diff"),
        binding("history.restore", "restore", description="Restore"),
        binding("app.back", "back", description="Back"),
    ]

    def __init__(self, session: SpaceSession, artifact: dict[str, Any], names: dict[str, str]) -> None:
        super().__init__()
        self.session = session
        self.artifact = artifact
        self.names = names
        self.versions: list[dict[str, Any]] = []
        self.marked: list[int] = []
        self._live_versions: list[dict[str, Any]] = []
        self._older: dict[int, dict[str, Any]] = {}  # paged in below the live ones, by version
        self._cursor: str | None = None  # the next page's
        self._paged = False  # a page was asked for: _cursor None then means v1 is in
        self._live = LiveBinding(self, self._on_history)

    def compose(self) -> ComposeResult:
        yield Static(Text(f" History of {self.artifact.get('title')}  (space: mark two, d: diff, r: restore)",
                          style="bold"), id="history-title")
        with Horizontal():
            yield OptionList(id="versions")
            with VerticalScroll(id="version-view"):
                yield Static(id="version-body")
        yield Footer()

    def on_mount(self) -> None:
        self._live.bind(self.session.artifacts.watch_history(str(self.artifact["_id"])))
        self.query_one(OptionList).focus()

    def on_unmount(self) -> None:
        self._live.close()

    def _label(self, v: dict[str, Any]) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("* " if v["version"] in self.marked else "  ", style="bold yellow")
        t.append(f"v{v['version']}", style="bold cyan")
        author = self.names.get(str(v.get("authorId")), "?")
        t.append(f" @{author}")
        src = v.get("source", "human")
        t.append(f" {src}", style="magenta" if src == "agent" else "dim")
        t.append(f" {ago(v.get('at'), self.session.clock())}", style="dim")
        if v.get("restoredFrom"):
            t.append(f" ↺v{v['restoredFrom']}", style="yellow")
        if v.get("message"):
            t.append(f"\n   {v['message']}", style="italic")
        return t

    def _on_history(self, versions: list[dict[str, Any]] | None) -> None:
        self._live_versions = list(versions or [])
        if self._paged:  # a version leaving the live window stays listed below it
            self._older.update((int(v["version"]), v) for v in self._live_versions)
        self._show()

    def _show(self) -> None:
        live = self._live_versions
        oldest = min((int(v["version"]) for v in live), default=None)
        below = sorted((n for n in self._older if oldest is None or n < oldest), reverse=True)
        self.versions = live + [self._older[n] for n in below]
        ol = self.query_one(OptionList)
        keep = ol.highlighted
        ol.clear_options()
        ol.add_options([Option(self._label(v), id=str(v["version"])) for v in self.versions])
        if self.versions:
            ol.highlighted = min(keep or 0, len(self.versions) - 1)

    @property
    def selected(self) -> dict[str, Any] | None:
        idx = self.query_one(OptionList).highlighted
        return self.versions[idx] if idx is not None and idx < len(self.versions) else None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        v = self.selected
        if v is not None:
            self.query_one("#version-body", Static).update(Text(str(v.get("content") or "")))
        if self.versions and event.option_index == len(self.versions) - 1 and int(self.versions[-1]["version"]) > 1:
            self._page_in()

    @work(exclusive=True, group="history-page")
    async def _page_in(self) -> None:
        """The versions below the last one shown (v1 has nothing below it)."""
        have = {int(v["version"]) for v in self.versions}
        while not (self._paged and self._cursor is None):
            try:
                page, self._cursor = await self.session.artifacts.history_page(str(self.artifact["_id"]),
                                                                               self._cursor)
            except ConvexError as exc:
                self.notify(f"Older versions could not be read: {error_text(exc)}", severity="error")
                return
            self._paged = True
            fresh = [v for v in page if int(v["version"]) not in have]
            self._older.update((int(v["version"]), v) for v in page)
            if fresh:  # (the first page repeats the live ones: go on to the next)
                break
        self._show()

    def action_mark(self) -> None:
        v = self.selected
        if v is None:
            return
        n = int(v["version"])
        if n in self.marked:
            self.marked.remove(n)
        else:
            self.marked = (self.marked + [n])[-2:]
        self._show()

    def action_diff(self) -> None:
        by = {int(v["version"]): v for v in self.versions}
        if len(self.marked) == 2:
            a, b = sorted(self.marked)
        else:
            v = self.selected
            if v is None:
                return
            b = int(v["version"])
            older = [n for n in by if n < b]
            if not older:
                self.notify("v1 has nothing before it; mark two versions with space.")
                return
            a = max(older)
        body = diff_text(str(by[a].get("content") or ""), str(by[b].get("content") or ""), f"v{a}", f"v{b}")
        self.query_one("#version-body", Static).update(body)

    @work(exclusive=True, group="restore")
    async def action_restore(self) -> None:
        v = self.selected
        if v is None:
            return
        try:
            result = await self.session.artifacts.restore(str(self.artifact["_id"]), int(v["version"]))
        except ConvexError as exc:
            self.notify(f"Restore rejected: {error_text(exc)}", severity="error")
            return
        conflict = result.get("conflict")
        if isinstance(conflict, LockConflict):
            self.notify(f"Cannot restore: @{conflict.handle} ({conflict.kind}) is editing it.", severity="error")
            return
        self.notify(f"Restored v{v['version']} as v{result.get('version')}.")

    def action_back(self) -> None:
        self.dismiss(None)


