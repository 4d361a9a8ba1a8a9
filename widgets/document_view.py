"""The document view: the selected artifact, live (``artifacts:get``), with its version,
author and lock. Markdown is rendered; code is highlighted (``rich.syntax`` through Pygments,
imported only when a code artifact is shown)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from collab.widgets.keys import artifact_bindings
from collab.widgets.lock_badge import lock_badge
from collab.widgets.timefmt import ago

MARKDOWN_KINDS = {"markdown", "md", "doc", "document", "note", "notes", "text"}
LANG_BY_KIND = {"python": "python", "code": "python", "json": "json", "toml": "toml"}


def body_renderable(art: dict[str, Any]) -> RenderableType:
    content = str(art.get("content") or "")
    kind = str(art.get("kind", "markdown")).lower()
    language = art.get("language") or (None if kind in MARKDOWN_KINDS else LANG_BY_KIND.get(kind, kind))
    if not content.strip():
        return Text("(empty: press e to write)", style="dim italic")
    if language:
        from rich.syntax import Syntax

        return Syntax(content, str(language), theme="ansi_dark", word_wrap=True, background_color="default")
    from rich.markdown import Markdown

    return Markdown(content)


class DocumentView(VerticalScroll, can_focus=True):
    """Header (title, version, author, lock) above the rendered body."""

    BINDINGS = artifact_bindings()


    def __init__(self, clock: Callable[[], float], me: str = "", names: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.me = me
        self.names = names if names is not None else {}  # actorId -> handle (from members)
        self.artifact: dict[str, Any] | None = None
        self.stale = False

    def compose(self) -> ComposeResult:
        yield Static(id="doc-header")
        yield Static(Text("Select an artifact.", style="dim"), id="doc-body")

    def on_mount(self) -> None:
        self.border_title = "Document"

    def show(self, art: dict[str, Any] | None) -> None:
        changed_body = (art or {}).get("content") != (self.artifact or {}).get("content") or \
            (art or {}).get("_id") != (self.artifact or {}).get("_id")
        self.artifact = art
        self.refresh_header()
        if changed_body:
            body = self.query_one("#doc-body", Static)
            body.update(body_renderable(art) if art else Text("Select an artifact.", style="dim"))

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
        if lock.get("held") and lock.get("holder"):
            text.append("\n")
            text.append_text(lock_badge(lock["holder"], int(lock.get("queueLength") or 0), now, self.me))
        if self.stale:
            text.append("  (stale: offline)", style="bold red")
        header.update(text)
