"""The space screen: artifact tree, document, discussion, presence, connection; every pane a
live query of the session's client, so nothing here ever refreshes by hand."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from collab.backend_client import ConnectionState, ConnectionStatus, ConvexError
from collab.screens.dialogs import LockConflictDialog, Prompt
from collab.screens.editor import EditorScreen
from collab.screens.exporting import artifact_filename, discussion_markdown
from collab.screens.history import HistoryScreen
from collab.screens.session import Hold, LockConflict, Queued, SpaceSession, error_text
from collab.widgets.artifact_tree import ArtifactTree
from collab.widgets.composer import Composer
from collab.widgets.connection_badge import ConnectionBadge
from collab.widgets.document_view import DocumentView
from collab.widgets.keys import binding
from collab.widgets.live import LiveBinding
from collab.widgets.message_log import MessageLog
from collab.widgets.outline import OutlinePanel
from collab.widgets.presence_bar import PresenceBar

_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9_.-]*)")

Command = tuple[str, str, Callable[[], Any]]



NOTIFICATION_TITLES = {"lockGranted": "Lock granted", "lockLost": "Lock lost", "mention": "Mentioned",
                       "runFailed": "Agent failed"}

# Composer commands: "/revise @edwin #test-plan tighten the intro" asks the mentioned agents to
# revise the artifact (under its lock) instead of replying in the thread.
COMMANDS = {"/revise": "revise", "/edit": "revise"}


def split_command(body: str) -> tuple[str, str]:
    """(task, message body) of what was typed; ValueError names the commands for a typo."""
    if not body.startswith("/"):
        return "reply", body
    head, _, rest = body.partition(" ")
    task = COMMANDS.get(head.lower())
    if task is None:
        raise ValueError(f"Unknown command {head}: try /revise @agent #artifact what to change")
    if "@" not in rest:
        raise ValueError(f"{head} needs an @agent to do it, e.g. {head} @edwin #test-plan make it shorter")
    return task, rest.strip()

class SpaceScreen(Screen[None]):
    BINDINGS = [
        # Priority: resolved in the app's key loop before the keys after them are forwarded, so
        # "f4 then text" types into the composer (a plain binding would leave the text queued on
        # the pane being left, where e.g. `e` opens the editor).
        binding("space.focus_tree", "focus_pane('tree')", description="Tree", show=False, priority=True),
        binding("space.focus_document", "focus_pane('document')", description="Doc", show=False, priority=True),
        binding("space.focus_discussion", "focus_pane('composer')", description="Chat", show=False, priority=True),
    ]

    def __init__(self, session: SpaceSession) -> None:
        super().__init__()
        self.session = session
        self.names: dict[str, str] = {}  # actorId -> handle
        self.members: list[dict[str, Any]] = []
        self.artifacts: list[dict[str, Any]] = []
        self.seen_notifications: set[str] = set()
        self.unsaved: dict[str, str] = {}  # artifactId -> text typed while a refused lock was asked for
        s = self
        self._artifacts = LiveBinding(self, s._on_artifacts)
        self._locks = LiveBinding(self, s._on_locks)
        self._doc = LiveBinding(self, s._on_document, s._on_doc_error)
        self._members = LiveBinding(self, s._on_members)
        self._presence = LiveBinding(self, lambda rows: s.query_one(PresenceBar).set_presence(rows or []))
        self._messages = LiveBinding(self, lambda msgs: s.query_one(MessageLog).set_messages(msgs or []))
        # The UI cadence (~30 ms): tails of agents' replies and of the shown artifact's draft.
        self._streams = LiveBinding(self, lambda rows: s.query_one(MessageLog).set_live(rows))
        self._draft = LiveBinding(self, lambda d: s.query_one(DocumentView).set_draft(d), lambda e: None)
        self._draft_stream = LiveBinding(self, lambda r: s.query_one(DocumentView).set_draft_row(r), lambda e: None)
        self._notifications = LiveBinding(self, s._on_notifications)
        self._outline = LiveBinding(self, lambda o: s.query_one(OutlinePanel).set_outline(o))
        self._unsub_state: Callable[[], None] | None = None
        self.locks: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        clock, me = self.session.clock, self.session.handle
        with Horizontal(id="topbar"):
            yield Static(Text.assemble((" collab ", "bold reverse"), (f" {self.session.space_name}", "bold"),
                                       (f"  @{me}", "dim")), id="title")
            yield ConnectionBadge(clock, id="badge")
        with Horizontal(id="main"):
            yield ArtifactTree(clock, me, id="tree")
            yield DocumentView(clock, me, self.names, id="document")
        with Vertical(id="discussion"):
            with Horizontal(id="discussion-row"):
                yield MessageLog(me, id="log")
                yield OutlinePanel(id="outline")
            yield Composer(id="composer")
        yield PresenceBar(me, id="presence")
        yield Footer()

    def on_mount(self) -> None:
        s = self.session
        self._artifacts.bind(s.watch_artifacts())
        self._locks.bind(s.watch_locks())
        self._members.bind(s.watch_members())
        self._presence.bind(s.watch_presence())
        self._messages.bind(s.watch_messages())
        self._streams.bind(s.watch_streams())
        self._notifications.bind(s.watch_notifications())
        self.query_one(ConnectionBadge).set_status(s.client.state)
        self._unsub_state = s.client.on_state_change(lambda st: self.call_next(self._on_state, st))
        s.start_presence()
        self.query_one(ArtifactTree).focus()

    def on_unmount(self) -> None:
        for b in (self._artifacts, self._locks, self._doc, self._members, self._presence, self._messages,
                  self._streams, self._draft, self._draft_stream, self._notifications, self._outline):
            b.close()
        if self._unsub_state:
            self._unsub_state()

    # ------------------------------------------------------------------ live data

    def _on_artifacts(self, artifacts: list[dict[str, Any]] | None) -> None:
        self.artifacts = list(artifacts or [])
        self.query_one(ArtifactTree).set_artifacts(self.artifacts)
        self._refresh_completions()
        self._update_presence_locks()

    def _on_locks(self, locks: list[dict[str, Any]] | None) -> None:
        self.locks = list(locks or [])
        self.query_one(ArtifactTree).set_locks(self.locks)
        self._update_presence_locks()

    def _update_presence_locks(self) -> None:
        slugs = {str(a["_id"]): str(a.get("slug", a.get("title", "?"))) for a in self.artifacts}
        self.query_one(PresenceBar).set_locks(self.locks, slugs)

    def _on_members(self, members: list[dict[str, Any]] | None) -> None:
        self.members = list(members or [])
        self.names.clear()
        self.names.update({str(m["actorId"]): str(m["handle"]) for m in self.members})
        self.query_one(PresenceBar).set_members(self.members)
        self.query_one(DocumentView).refresh_header()
        self._refresh_completions()

    def _refresh_completions(self) -> None:
        handles = [str(m["handle"]) for m in self.members if m.get("handle") != self.session.handle]
        slugs = [str(a.get("slug")) for a in self.artifacts if a.get("slug")]
        self.query_one(Composer).set_completions(handles, slugs)

    def _on_document(self, art: dict[str, Any] | None) -> None:
        self.query_one(DocumentView).show(art)

    def _on_doc_error(self, err: Exception) -> None:
        self.query_one(DocumentView).show(None)

    def _on_notifications(self, rows: list[dict[str, Any]] | None) -> None:
        fresh = [n for n in rows or [] if str(n["_id"]) not in self.seen_notifications]
        for n in reversed(fresh):
            self.seen_notifications.add(str(n["_id"]))
            kind = n.get("kind")
            severity = "error" if kind in ("lockLost", "runFailed") else "information"
            title = NOTIFICATION_TITLES.get(str(kind), str(kind))
            text = str(n.get("text") or kind)
            if kind == "lockGranted":
                text += " (press e to edit)"
            self.notify(text, title=title, severity=severity, timeout=8)
        if fresh:
            self._mark_read()

    @work(group="mark-read")
    async def _mark_read(self) -> None:
        try:
            await self.session.mark_read()
        except Exception:
            pass  # reconnecting: they stay unread and show once (seen_notifications)

    def _on_state(self, status: ConnectionStatus) -> None:
        self.query_one(ConnectionBadge).set_status(status)
        doc = self.query_one(DocumentView)
        doc.stale = status.state is not ConnectionState.LIVE and status.connection_count > 0
        doc.refresh_header()
        self.set_class(doc.stale, "-stale")

    @on(ArtifactTree.Highlighted)
    def _artifact_highlighted(self, event: ArtifactTree.Highlighted) -> None:
        if event.artifact_id is None:
            return
        doc = self.query_one(DocumentView)
        if doc.artifact and doc.artifact.get("_id") == event.artifact_id and self._doc.live is not None:
            return
        self._doc.bind(self.session.watch_artifact(event.artifact_id))
        self._draft.bind(self.session.watch_draft(event.artifact_id))
        self._draft_stream.bind(self.session.watch_draft_stream(event.artifact_id))
        self.session.set_presence(artifact_id=event.artifact_id)

    # ------------------------------------------------------------------ helpers

    @property
    def current(self) -> dict[str, Any] | None:
        return self.query_one(DocumentView).artifact

    def action_focus_pane(self, pane: str) -> None:
        # Screen.set_focus, not Widget.focus(): focus() defers the change (call_later), so keys
        # typed in the same burst ("f4 then text") would still go to the pane being left.
        self.set_focus(self.query_one(f"#{pane}"))

    def _need_artifact(self) -> dict[str, Any] | None:
        art = self.current
        if art is None:
            self.notify("Select an artifact first (n creates one).", severity="warning")
        return art

    # ------------------------------------------------------------------ artifact actions

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
        self.query_one(ArtifactTree).focus()
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
        if isinstance(got, LockConflict):
            wait = await self.app.push_screen_wait(LockConflictDialog(str(art.get("title")), got, self.session.clock()))
            if wait:
                await self._wait_for_lock(art)
        else:
            self.notify(f"You are #{got.position} in the queue.")

    async def _open_editor(self, art: dict[str, Any], hold: Hold) -> None:
        """The queue handed us the lock already: open on the fresh content under that hold."""
        fresh = await self.session.artifact(str(art["_id"]))
        aid = str(art["_id"])
        EditorScreen(self.session, fresh, hold, text=self.unsaved.pop(aid, None)).open(
            self.app, lambda result: self._editor_closed(art, result))

    async def _wait_for_lock(self, art: dict[str, Any]) -> None:
        try:
            got = await self.session.acquire(str(art["_id"]), wait=True)
        except ConvexError as exc:
            self.notify(f"Cannot queue: {error_text(exc)}", severity="error")
            return
        if isinstance(got, Hold):  # freed in the meantime
            await self._open_editor(art, got)
        elif isinstance(got, Queued):
            self.notify(f"Waiting for the lock on {art.get('title')}: #{got.position} in the queue. "
                        "You will be told when it is yours.", timeout=6)

    @work(exclusive=True, group="edit")
    async def action_wait_lock(self) -> None:
        art = self._need_artifact()
        if art is not None:
            await self._wait_for_lock(art)

    @work(group="new")
    async def action_new_artifact(self) -> None:
        title = await self.app.push_screen_wait(Prompt("Title of the new artifact:",
                                                       placeholder="e.g. Test plan, or main.py"))
        if not title:
            return
        kind, language = "markdown", None
        suffix = Path(title).suffix.lower()
        if suffix in {".py", ".js", ".ts", ".rs", ".go", ".json", ".toml", ".sh", ".c"}:
            kind, language = "code", {"py": "python", "js": "javascript", "ts": "typescript", "rs": "rust",
                                      "sh": "bash"}.get(suffix[1:], suffix[1:])
        try:
            aid = await self.session.create_artifact(title, kind, "", language)
        except ConvexError as exc:
            self.notify(f"Cannot create: {error_text(exc)}", severity="error")
            return
        self.query_one(ArtifactTree).select_id(aid)

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
        from collab.backend_client.api import api

        try:
            await self.session.client.mutation(api.artifacts.update, {"artifactId": art["_id"], **fields})
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")

    @work(group="meta")
    async def action_force_unlock(self) -> None:
        from collab.backend_client.api import api

        art = self._need_artifact()
        if art is None:
            return
        reason = await self.app.push_screen_wait(Prompt("Force the lock open. Reason (the holder is told):"))
        if not reason:
            return
        try:
            await self.session.client.mutation(api.locks.forceRelease, {"artifactId": art["_id"], "reason": reason})
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")

    def action_discuss(self) -> None:
        art = self.current
        composer = self.query_one(Composer)
        if art is not None and art.get("slug"):
            composer.value = f"#{art['slug']} " + composer.value
        composer.focus()

    # ------------------------------------------------------------------ discussion

    @on(TextArea.Changed, "#composer")
    def _typing(self, event: TextArea.Changed) -> None:
        self.session.set_presence(typing=bool(event.text_area.text))

    @on(Composer.Submitted)
    async def _send(self, event: Composer.Submitted) -> None:
        body = event.value.strip()
        if not body:
            return
        composer = self.query_one(Composer)
        try:
            task, text = split_command(body)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        composer.value = ""
        self._warn_missing_keys(text)
        # A revision with no #ref targets the artifact on screen.
        target = (self.current or {}).get("_id") if task == "revise" and "#" not in text else None
        try:
            await self.session.post(text, artifact_id=target, task=task)
        except ConvexError as exc:
            composer.value = body  # keep what was typed
            self.notify(f"Message rejected: {error_text(exc)}", severity="error")
        except Exception as exc:
            composer.value = body
            self.notify(f"Not sent: {error_text(exc)}", severity="error")
        self.session.set_presence(typing=False)

    def _warn_missing_keys(self, body: str) -> None:
        """A mentioned agent whose model needs an API key that is not set cannot answer:
        say so now, per agent, instead of leaving the user waiting."""
        cfg = self.session.config
        agents = {a.handle: a for a in cfg.enabled_agents()}
        handles = {m.lower() for m in _MENTION.findall(body)}
        targets = list(agents) if "all" in handles else [h for h in handles if h in agents]
        for h in targets:
            problem = cfg.model_for(agents[h]).missing_key()
            if problem:
                self.notify(f"@{h} cannot reply: {problem}", severity="error", timeout=10)

    @work(group="decision")
    async def action_mark_decision(self) -> None:
        msg = self.query_one(MessageLog).selected
        if msg is None:
            return
        try:
            await self.session.mark_decision(str(msg["_id"]), not msg.get("decision"))
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")

    def action_reply(self) -> None:
        msg = self.query_one(MessageLog).selected
        composer = self.query_one(Composer)
        if msg is not None:
            composer.value = f"@{msg.get('authorHandle')} "
        composer.focus()

    def action_copy_message(self) -> None:
        msg = self.query_one(MessageLog).selected
        if msg is not None:
            self.app.copy_to_clipboard(str(msg.get("body", "")))
            self.notify("Copied the message (OSC 52).")

    def action_toggle_sidebar(self) -> None:
        """Decisions and open questions beside the log; the query lives only while shown."""
        panel = self.query_one(OutlinePanel)
        panel.display = not panel.display
        if panel.display:
            self._outline.bind(self.session.watch_outline())
        else:
            self._outline.close()

    @work(exclusive=True, group="cancel-runs")
    async def action_cancel_runs(self) -> None:
        """Stop every agent run of this space that has not finished (queued, claimed,
        streaming): the worker stops the stream within a second and the reply says so."""
        try:
            stopped = await self.session.cancel_runs()
        except ConvexError as exc:
            self.notify(f"Cannot stop: {error_text(exc)}", severity="error")
            return
        except Exception as exc:
            self.notify(f"Cannot stop (backend unreachable?): {error_text(exc)}", severity="error")
            return
        if stopped:
            self.notify(f"Stopped {', '.join('@' + h for h in stopped)}.")
        else:
            self.notify("No agent is working in this space.")

    def action_export_discussion(self) -> None:
        path = Path.cwd() / f"discussion-{self.session.space_name}.md"
        text = discussion_markdown(self.session.space_name, self.query_one(MessageLog).messages)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot export: {exc}", severity="error")
            return
        self.notify(f"Exported the discussion to {path}")

    # ------------------------------------------------------------------ palette

    def palette_commands(self) -> list[Command]:
        """Commands for the command palette, depending on what is selected."""
        cmds: list[Command] = [
            ("New artifact", "Create an artifact in this space", self.action_new_artifact),
            ("Focus tree", "Move to the artifact tree", lambda: self.action_focus_pane("tree")),
            ("Focus discussion", "Write a message", lambda: self.action_focus_pane("composer")),
        ]
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
        cmds += [("Show or hide decisions and open questions", "The outline beside the discussion",
                  self.action_toggle_sidebar),
                 ("Stop the agents replying", "Cancel the running agent runs of this space",
                  self.action_cancel_runs)]
        msg = self.query_one(MessageLog).selected
        if msg is not None:
            cmds.append(("Mark the selected message as a decision" if not msg.get("decision")
                         else "Unmark the selected decision", "Decisions are listed for everyone",
                         self.action_mark_decision))
        for a in self.session.config.enabled_agents():
            cmds.append((f"Ask @{a.handle}", f"{a.role or 'agent'}: start a message to it",
                         lambda h=a.handle: self._start_message(f"@{h} ")))
        return cmds

    def _start_message(self, text: str) -> None:
        composer = self.query_one(Composer)
        composer.value = text
        composer.focus()
