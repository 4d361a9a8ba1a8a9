"""The artifacts pane: the tree (every artifact with its lock badge) and the document view of
the highlighted one (its draft growing while an agent writes), with the artifact keys and the
edit cycle (lock -> edit -> save -> unlock, or the queue).

It owns its live queries (``artifacts:list``, ``locks:list``, members for the names, and the
selected artifact's ``artifacts:get`` / ``drafts:get`` / ``streams:forArtifact``) through the
artifacts facade, and its keys: the bindings live here, so they work whether the tree or the
document has the focus."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message

from collab.backend_client import ConnectionState, ConnectionStatus, ConvexError
from collab.backend_client.space import LockConflict, LockHold, Queued, SpaceSession, error_text
from collab.backend_client.space.exporting import artifact_filename
from collab.screens.dialogs import LockConflictDialog, PipelineHoldsDialog, Prompt
from collab.screens.editor import EditorScreen
from collab.screens.history import HistoryScreen
from collab.screens.pipeline import open_pipeline, pipeline_commands
from collab.widgets.artifact_tree import ArtifactTree
from collab.widgets.document_view import DocumentView
from collab.widgets.keys import artifact_bindings
from collab.widgets.live import LiveBinding

Command = tuple[str, str, Callable[[], Any]]


class ArtifactsPane(Horizontal):
    BINDINGS = artifact_bindings()

    class Discuss(Message):
        """Start a message about the artifact (the screen hands it to the discussion)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, session: SpaceSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.view = session.artifacts
        self.names: dict[str, str] = {}  # actorId -> handle (members)
        self.artifacts: list[dict[str, Any]] = []
        self.locks: list[dict[str, Any]] = []
        self.unsaved: dict[str, str] = {}  # artifactId -> text typed while a refused lock was asked for
        self._list = LiveBinding(self, self._on_artifacts)
        self._locks = LiveBinding(self, self._on_locks)
        self._members = LiveBinding(self, self._on_members)
        self._doc = LiveBinding(self, self._on_document, lambda err: self.document.show(None))
        self._draft = LiveBinding(self, lambda d: self.document.set_draft(d), lambda err: None)
        self._draft_stream = LiveBinding(self, lambda r: self.document.set_draft_row(r), lambda err: None)
        self._unsub_state: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        clock, me = self.session.clock, self.session.handle
        yield ArtifactTree(clock, me, id="tree")
        yield DocumentView(clock, me, self.names, id="document")

    @property
    def tree(self) -> ArtifactTree:
        return self.query_one(ArtifactTree)

    @property
    def document(self) -> DocumentView:
        return self.query_one(DocumentView)

    @property
    def current(self) -> dict[str, Any] | None:
        """The artifact on screen (its live ``artifacts:get`` value)."""
        return self.document.artifact

    def on_mount(self) -> None:
        self._list.bind(self.view.watch_list())
        self._locks.bind(self.view.watch_locks())
        self._members.bind(self.session.watch_members())
        self._unsub_state = self.session.on_connection_change(lambda st: self.call_next(self._on_state, st))
        self._on_state(self.session.connection)

    def on_unmount(self) -> None:
        for b in (self._list, self._locks, self._members, self._doc, self._draft, self._draft_stream):
            b.close()
        if self._unsub_state:
            self._unsub_state()

    # ------------------------------------------------------------------ live data

    def _on_artifacts(self, artifacts: list[dict[str, Any]] | None) -> None:
        self.artifacts = list(artifacts or [])
        self.tree.set_artifacts(self.artifacts)

    def _on_locks(self, locks: list[dict[str, Any]] | None) -> None:
        self.locks = list(locks or [])
        self.tree.set_locks(self.locks)

    def _on_members(self, members: list[dict[str, Any]] | None) -> None:
        self.names.clear()
        self.names.update({str(m["actorId"]): str(m["handle"]) for m in members or []})
        self.document.refresh_header()

    def _on_document(self, art: dict[str, Any] | None) -> None:
        self.document.show(art)

    def _on_state(self, status: ConnectionStatus) -> None:
        doc = self.document
        doc.stale = status.state is not ConnectionState.LIVE and status.connection_count > 0
        doc.refresh_header()
        self.set_class(doc.stale, "-stale")

    @on(ArtifactTree.Highlighted)
    def _artifact_highlighted(self, event: ArtifactTree.Highlighted) -> None:
        if event.artifact_id is None:
            return
        doc = self.document
        if doc.artifact and doc.artifact.get("_id") == event.artifact_id and self._doc.live is not None:
            return
        self._doc.bind(self.view.watch(event.artifact_id))
        self._draft.bind(self.view.watch_draft(event.artifact_id))
        self._draft_stream.bind(self.view.watch_draft_stream(event.artifact_id))
        self.session.set_presence(artifact_id=event.artifact_id)

    def _need_artifact(self) -> dict[str, Any] | None:
        art = self.current
        if art is None:
            self.notify("Select an artifact first (n creates one).", severity="warning")
        return art

    # ------------------------------------------------------------------ the edit cycle

    def action_edit_artifact(self) -> None:
        """Synchronous on purpose (a priority binding runs it in the app's key loop): the editor
        is on screen and focused before the next key is read, and takes the lock itself."""
        art = self._need_artifact()
        if art is None or isinstance(self.app.screen, EditorScreen):
            return
        aid = str(art["_id"])
        editor = EditorScreen(self.session, art, text=self.unsaved.pop(aid, None))
        editor.open(self.app, lambda result: self._editor_closed(art, result))

    def _editor_closed(self, art: dict[str, Any], result: dict[str, Any] | None) -> None:
        self.tree.focus()
        if not result:
            return
        if result.get("text"):
            # Typed while a lock that was refused was being asked for: kept for the next `e`.
            self.unsaved[str(art["_id"])] = str(result["text"])
        if "conflict" in result:
            self._refused(art, result["conflict"], bool(result.get("text")))
        elif "error" in result:
            self.notify(str(result["error"]), severity="error")
        elif "version" in result:
            granted = result.get("grantedTo")
            extra = f"; the lock went to @{granted['handle']}" if granted else ""
            self.notify(f"Saved v{result.get('version')}{extra}.")

    @work(exclusive=True, group="edit")
    async def _refused(self, art: dict[str, Any], got: LockConflict | Queued, kept: bool) -> None:
        if kept:
            self.notify("What you typed is kept: it will be in the editor when you get the lock.", timeout=6)
        if isinstance(got, LockConflict) and got.pipeline is not None:
            # nobody waits behind a pipeline: say which stage is where and offer to open it
            if await self.app.push_screen_wait(PipelineHoldsDialog(got)):
                open_pipeline(self.app, self.session, art)
        elif isinstance(got, LockConflict):
            dialog = LockConflictDialog(str(art.get("title")), got, self.session.clock())
            if await self.app.push_screen_wait(dialog):
                await self._wait_for_lock(art)
        else:
            self.notify(f"You are #{got.position} in the queue.")

    async def _open_editor(self, art: dict[str, Any], hold: LockHold) -> None:
        """The queue handed us the lock already: open on the fresh content under that hold."""
        aid = str(art["_id"])
        fresh = await self.view.get(aid)
        EditorScreen(self.session, fresh, hold, text=self.unsaved.pop(aid, None)).open(
            self.app, lambda result: self._editor_closed(art, result))

    async def _wait_for_lock(self, art: dict[str, Any]) -> None:
        try:
            got = await self.view.acquire(str(art["_id"]), wait=True)
        except ConvexError as exc:
            self.notify(f"Cannot queue: {error_text(exc)}", severity="error")
            return
        if isinstance(got, LockHold):  # freed in the meantime
            await self._open_editor(art, got)
        elif isinstance(got, Queued):
            self.notify(f"Waiting for the lock on {art.get('title')}: #{got.position} in the queue. "
                        "You will be told when it is yours.", timeout=6)

    @work(exclusive=True, group="edit")
    async def action_wait_lock(self) -> None:
        art = self._need_artifact()
        if art is not None:
            await self._wait_for_lock(art)

    # ------------------------------------------------------------------ other artifact actions

    @work(group="new")
    async def action_new_artifact(self) -> None:
        title = await self.app.push_screen_wait(Prompt("Title of the new artifact:",
                                                       placeholder="e.g. Test plan, or main.py"))
        if not title:
            return
        try:
            aid = await self.view.create(title)
        except ConvexError as exc:
            self.notify(f"Cannot create: {error_text(exc)}", severity="error")
            return
        self.tree.select_id(aid)

    def action_history(self) -> None:
        art = self._need_artifact()
        if art is not None:
            self.app.push_screen(HistoryScreen(self.session, art, self.names))

    def action_copy_artifact(self) -> None:
        art = self._need_artifact()
        if art is not None:
            self.app.copy_to_clipboard(str(art.get("content") or ""))
            self.notify(f"Copied {art.get('title')} (OSC 52).")

    def action_export_artifact(self) -> None:
        art = self._need_artifact()
        if art is None:
            return
        path = Path.cwd() / artifact_filename(art)
        try:
            path.write_text(str(art.get("content") or ""), encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot export: {exc}", severity="error")
            return
        self.notify(f"Exported to {path}")

    @work(group="meta")
    async def action_tag_artifact(self) -> None:
        art = self._need_artifact()
        if art is None:
            return
        tags = await self.app.push_screen_wait(Prompt("Tags (space separated):", " ".join(art.get("tags") or [])))
        if tags is None:
            return
        await self._update(art, tags=[t.lstrip("#") for t in tags.split()])

    @work(group="meta")
    async def action_rename_artifact(self) -> None:
        art = self._need_artifact()
        if art is None:
            return
        title = await self.app.push_screen_wait(Prompt("New title:", str(art.get("title") or "")))
        if title:
            await self._update(art, title=title)

    async def _update(self, art: dict[str, Any], **fields: Any) -> None:
        try:
            await self.view.update(str(art["_id"]), **fields)
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")

    @work(group="meta")
    async def action_force_unlock(self) -> None:
        art = self._need_artifact()
        if art is None:
            return
        reason = await self.app.push_screen_wait(Prompt("Force the lock open. Reason (the holder is told):"))
        if not reason:
            return
        try:
            await self.view.force_release(str(art["_id"]), reason)
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")

    def action_pipeline(self) -> None:
        """The artifact's pipeline screen (a flow to start one is offered when it has none)."""
        art = self._need_artifact()
        if art is not None:
            open_pipeline(self.app, self.session, art)

    def action_discuss(self) -> None:
        art = self.current
        self.post_message(self.Discuss(f"#{art['slug']} " if art is not None and art.get("slug") else ""))

    # ------------------------------------------------------------------ palette

    def palette_commands(self) -> list[Command]:
        """What the palette offers for the artifact on screen."""
        cmds: list[Command] = [("New artifact", "Create an artifact in this space", self.action_new_artifact)]
        art = self.current
        if art is not None:
            t = art.get("title")
            cmds += [
                (f"Edit {t}", "Lock and edit", self.action_edit_artifact),
                (f"History of {t}", "Versions, diffs, restore", self.action_history),
                (f"Wait for the lock on {t}", "Join the FIFO queue", self.action_wait_lock),
                (f"Copy {t}", "To the clipboard (OSC 52)", self.action_copy_artifact),
                (f"Export {t}", "Write it to a file in the current directory", self.action_export_artifact),
                (f"Tag {t}", "Edit tags", self.action_tag_artifact),
                (f"Rename {t}", "Change the title", self.action_rename_artifact),
                (f"Discuss {t}", "Write a message referring to it", self.action_discuss),
                (f"Force unlock {t}", "Owners: open the lock with a reason", self.action_force_unlock),
            ]
            cmds += pipeline_commands(self.app, self.session, art)
        return cmds
