"""The document view: the selected artifact, live (``artifacts:get``), with its version,
author and lock. Markdown is rendered; code is highlighted (``rich.syntax`` through Pygments,
imported only when a code artifact is shown).

While the lock holder (an agent revising it) streams a draft, the body shows the draft as it
grows instead: ``drafts:get`` (durable, ~250 ms) merged with ``streams:forArtifact`` (the
tail, ~30 ms), under a "writing" line with a cursor. When the hold ends (saved, released) the
draft goes away and the new version shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from collab.widgets.lock_badge import lock_badge, pipeline_badge
from collab.backend_client.space import draft_row_matches, merge
from collab.widgets.timefmt import ago

MARKDOWN_KINDS = {"markdown", "md", "doc", "document", "note", "notes", "text"}
LANG_BY_KIND = {"python": "python", "code": "python", "json": "json", "toml": "toml"}


def body_renderable(art: dict[str, Any], content: str | None = None) -> RenderableType:
    content = str(art.get("content") or "") if content is None else content
    kind = str(art.get("kind", "markdown")).lower()
    language = art.get("language") or (None if kind in MARKDOWN_KINDS else LANG_BY_KIND.get(kind, kind))
    if not content.strip():
        return Text("(empty: press e to write)", style="dim italic")
    if language:
        from rich.syntax import Syntax

        return Syntax(content, str(language), theme="ansi_dark", word_wrap=True, background_color="default")
    from rich.markdown import Markdown

    return Markdown(content)



DRAFT_TAIL_CHARS = 4000


def draft_tail(draft: str, limit: int = DRAFT_TAIL_CHARS) -> Text:
    """The end of a growing draft, at most ``limit`` characters from a line start, behind a
    note of how much comes before it (the whole text shows, rendered, once it is saved)."""
    if len(draft) <= limit:
        return Text(draft)
    cut = len(draft) - limit
    newline = draft.find("\n", cut)
    start = newline + 1 if 0 <= newline < cut + limit // 4 else cut
    text = Text(f"… {start:,} earlier characters\n", style="dim")
    text.append(draft[start:])
    return text

class DocumentView(VerticalScroll, can_focus=True):
    """Header (title, version, author, lock) above the rendered body."""


    def __init__(self, clock: Callable[[], float], me: str = "", names: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.me = me
        self.names = names if names is not None else {}  # actorId -> handle (from members)
        self.artifact: dict[str, Any] | None = None
        self.stale = False
        self.draft: dict[str, Any] | None = None  # drafts:get of the shown artifact
        self.draft_row: dict[str, Any] | None = None  # streams:forArtifact of the shown artifact
        self._shown: tuple[Any, ...] | None = None  # what the body renders now (skip equal renders)
        self.latest_round: dict[str, Any] | None = None  # variations:forArtifact's newest round

    def compose(self) -> ComposeResult:
        yield Static(id="doc-header")
        yield Static(Text("Select an artifact.", style="dim"), id="doc-body")

    def on_mount(self) -> None:
        self.border_title = "Document"

    def show(self, art: dict[str, Any] | None) -> None:
        self.artifact = art
        self.refresh_header()
        self._render_body()

    def set_draft(self, draft: dict[str, Any] | None) -> None:
        # Kept even if it names another artifact than the shown one: the three queries of a
        # newly selected artifact arrive in any order; rendering only uses a matching draft.
        self.draft = draft
        self.refresh_header()
        self._render_body()

    def set_draft_row(self, row: dict[str, Any] | None) -> None:
        had = self.draft_row is not None
        self.draft_row = row
        if had != (row is not None):
            self.refresh_header()
        self._render_body()

    @property
    def draft_text(self) -> str | None:
        """The draft as it grows (durable content + live tail), or None when nobody drafts.
        Before the first durable ``drafts:append`` there is no draft row yet, only the tail
        (base 0): it shows at once."""
        draft = self.draft if self._mine(self.draft) and (self.draft or {}).get("status", "live") == "live" else None
        row = self.draft_row if self._mine(self.draft_row) else None
        if draft is None:
            return merge("", row) if row is not None else None
        return merge(str(draft.get("content") or ""), row if draft_row_matches(draft, row) else None)

    def _mine(self, row: dict[str, Any] | None) -> bool:
        return row is not None and row.get("artifactId") == (self.artifact or {}).get("_id")

    def _drafting_holder(self) -> str | None:
        """The handle of the holder streaming a draft into the shown artifact, if any."""
        lock = (self.artifact or {}).get("lock") or {}
        holder = lock.get("holder") or {}
        if not (self._mine(self.draft) or self._mine(self.draft_row)) or not lock.get("held"):
            return None
        if holder.get("handle") == self.me:
            return None  # our own hold is shown by the editor, not here
        return str(holder.get("handle") or "?")

    def _render_body(self) -> None:
        art = self.artifact
        drafting = self._drafting_holder()
        draft = self.draft_text if drafting else None
        key = (None,) if art is None else (art.get("_id"), art.get("content"), draft)
        if key == self._shown:
            return
        self._shown = key
        body = self.query_one("#doc-body", Static)
        if art is None:
            body.update(Text("Select an artifact.", style="dim"))
        elif draft is not None:
            # Plain text, not Markdown: a half-written fence or table re-flowing every 30 ms
            # would make the page jump; the rendered version comes with the save.
            # Only the growing end: re-wrapping a long draft on every ~30 ms tick would make
            # frames cost as much as the whole draft.
            text = draft_tail(draft)
            text.append("▌", style="bold yellow")
            body.update(text)
        else:
            body.update(body_renderable(art))

    def refresh_header(self) -> None:
        art = self.artifact
        header = self.query_one("#doc-header", Static)
        if art is None:
            header.update("")
            return
        now = self.clock()
        text = Text(no_wrap=False)
        text.append(str(art.get("title", "")), style="bold")
        text.append(f"  v{art.get('version', '?')}", style="bold cyan")
        author = self.names.get(str(art.get("updatedBy")), "")
        if author:
            text.append(f" by @{author}", style="cyan")
        text.append(f" {ago(art.get('updatedAt'), now)} ago", style="dim")
        tags = art.get("tags") or []
        if tags:
            text.append("  " + " ".join(f"#{t}" for t in tags), style="cyan")
        lock = art.get("lock") or {}
        if lock.get("pipeline"):
            text.append("\n")
            text.append_text(pipeline_badge(lock["pipeline"]))
            text.append("  p opens it", style="dim")
        if lock.get("held") and lock.get("holder"):
            text.append("\n")
            text.append_text(lock_badge(lock["holder"], int(lock.get("queueLength") or 0), now, self.me))
        drafting = self._drafting_holder()
        if drafting:
            text.append("\n")
            base = (self.draft or {}).get("baseVersion") or art.get("version", "?")
            text.append(f"✎ @{drafting} is writing a draft (from v{base})…", style="italic yellow")
        rnd = self.latest_round
        if rnd is not None and rnd.get("artifactId") == art.get("_id"):
            counts = rnd.get("counts") or {}
            busy = counts.get("streaming", 0) + counts.get("queued", 0)
            text.append("\n")
            text.append(f"⧉ variations round {rnd['number']:g}: ", style="cyan")
            text.append(f"{busy} writing" if busy else f"{counts.get('done', 0)} done", style="cyan")
            if rnd.get("stars"):
                text.append(f" ★{rnd['stars']}", style="yellow")
            if rnd.get("picked"):
                text.append(f" ✔ #{rnd['picked']['index']:g} picked", style="green")
            text.append("  (v)", style="dim")
        if self.stale:
            text.append("  (stale: offline)", style="bold red")
        header.update(text)

    def set_rounds(self, rounds: list[dict[str, Any]] | None) -> None:
        self.latest_round = rounds[0] if rounds else None
        self.refresh_header()
