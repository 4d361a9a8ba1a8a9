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
from collab.backend_client.space import VIEWER_REFUSAL, LockConflict, LockHold, Queued, SpaceSession, error_text
from collab.backend_client.space.exporting import artifact_filename
from collab.screens.dialogs import ConfirmDelete, LockConflictDialog, PipelineHoldsDialog, Prompt
from collab.screens.editor import EditorScreen
from collab.screens.history import HistoryScreen
from collab.screens.pipeline import open_pipeline
from collab.widgets.artifact_tree import ArtifactTree
from collab.widgets.clipboard import copy_text
from collab.widgets.document_view import DocumentView
from collab.widgets.keys import artifact_bindings
from collab.widgets.live import LiveBinding

Command = tuple[str, str, Callable[[], Any]]
# Actions that write: a viewer is not offered them. Force unlock: owners only.
WRITE_ACTIONS = frozenset({"edit_artifact", "new_artifact", "wait_lock", "tag_artifact", "rename_artifact",
                           "discuss", "start_variations", "flow", "delete_artifact"})
OWNER_ACTIONS = frozenset({"force_unlock"})


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
        self.granted: dict[str, LockHold] = {}  # artifactId -> a queued lock that reached us, not opened yet
        self._list = LiveBinding(self, self._on_artifacts)
        self._locks = LiveBinding(self, self._on_locks)
        self._members = LiveBinding(self, self._on_members)
        self._doc = LiveBinding(self, self._on_document, lambda err: self.document.show(None))
        self._draft = LiveBinding(self, lambda d: self.document.set_draft(d), lambda err: None)
        self._draft_stream = LiveBinding(self, lambda r: self.document.set_draft_row(r), lambda err: None)
        self._rounds = LiveBinding(self, lambda rounds: self.document.set_rounds(rounds), lambda err: None)
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
        for b in (self._list, self._locks, self._members, self._doc, self._draft, self._draft_stream, self._rounds):
            b.close()
        if self._unsub_state:
            self._unsub_state()

    # ------------------------------------------------------------------ live data

    def _on_artifacts(self, artifacts: list[dict[str, Any]] | None) -> None:
        self.artifacts = list(artifacts or [])
        self.tree.set_artifacts(self.artifacts)
        shown = (self.document.artifact or {}).get("_id")
        if shown is not None and all(a["_id"] != shown for a in self.artifacts):
            # the artifact on screen was deleted (here or by someone else): stop showing it and
            # stop telling the others we look at it
            for b in (self._doc, self._draft, self._draft_stream):
                b.close()
            self.document.show(None)
            self.session.set_presence(artifact_id=None)

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
        found = self.query(DocumentView)
        if not found:  # not composed yet, or being torn down (the space is switched or left)
            return
        doc = found.first()
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
        self._rounds.bind(self.session.variations.watch_rounds(event.artifact_id, limit=1))
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
        granted = self.granted.pop(aid, None)  # the queue handed it to us while we were away
        editor = EditorScreen(self.session, art, granted if granted is not None and granted.held else None,
                              text=self.unsaved.pop(aid, None))
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
            got, hold = await self.view.queue_for(str(art["_id"]))
        except ConvexError as exc:
            self.notify(f"Cannot queue: {error_text(exc)}", severity="error")
            return
        if isinstance(got, LockHold):  # freed in the meantime
            await self._open_editor(art, got)
        elif isinstance(got, Queued):
            self.notify(f"Waiting for the lock on {art.get('title')}: #{got.position} in the queue. "
                        "You will be told when it is yours.", timeout=6)
            self._await_grant(art, hold)

    @work(group="grants")
    async def _await_grant(self, art: dict[str, Any], hold: LockHold) -> None:
        """The queue hands us the lock: open the editor if this pane has the focus; otherwise
        keep it for ``locks.grant_idle_s`` for an `e`, then release it for the next in line
        (a lock nobody uses must not sit held while its lease is renewed)."""
        try:
            await hold.wait_granted()
            await self.view.adopt(hold)
        except Exception as exc:
            self.notify(f"Lost the place in the queue for {art.get('title')}: {error_text(exc)}", severity="error")
            return
        aid, title = str(art["_id"]), art.get("title")
        if self._focused_here() and not isinstance(self.app.screen, EditorScreen):
            await self._open_editor(art, hold)
            return
        idle = float(self.session.config.locks.grant_idle_s)
        self.granted[aid] = hold
        self.notify(f"The lock on {title} is yours: press e on it within {idle:g} s, or it goes to the next "
                    "in line.", timeout=min(idle, 30))
        self.set_timer(idle, lambda: self._grant_unused(aid, hold, str(title)))

    def _focused_here(self) -> bool:
        focused = self.app.focused
        return focused is not None and (focused is self or self in focused.ancestors)

    def _grant_unused(self, aid: str, hold: LockHold, title: str) -> None:
        if self.granted.get(aid) is not hold:
            return  # the editor took it
        del self.granted[aid]

        async def release() -> None:
            if self.view.hold is hold:
                await self.view.cancel_edit()
            else:
                await hold.release()
            self.notify(f"Released the lock on {title}: it reached you and you did not open it within "
                        f"{self.session.config.locks.grant_idle_s:g} s. w queues again.", severity="warning",
                        timeout=10)

        self.run_worker(release(), group="grants")

    @work(exclusive=True, group="edit")
    async def action_wait_lock(self) -> None:
        """Join the artifact's lock queue; pressed again while waiting, leave it."""
        art = self._need_artifact()
        if art is None:
            return
        queue = (art.get("lock") or {}).get("queue") or []
        if not any(w.get("actorId") == self.session.actor_id for w in queue):
            await self._wait_for_lock(art)
            return
        try:
            await self.view.leave_queue(str(art["_id"]))
        except ConvexError as exc:
            self.notify(f"Cannot leave the queue: {error_text(exc)}", severity="error")
            return
        self.notify(f"You left the queue for {art.get('title')}.")

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
            copy_text(self, self.session.config, str(art.get("content") or ""), str(art.get("title")))

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

    @work(group="meta")
    async def action_delete_artifact(self) -> None:
        """Asks first; the backend refuses while someone else holds the lock."""
        art = self._need_artifact()
        if art is None:
            return
        title = str(art.get("title"))
        if not await self.app.push_screen_wait(ConfirmDelete(
                f"Delete {title}?", "Its whole history goes with it; nobody can undo this.")):
            return
        try:
            await self.view.delete(str(art["_id"]))
        except ConvexError as exc:
            self.notify(f"Not deleted: {error_text(exc)}", severity="error")
            return
        self.notify(f"Deleted {title}.")

    def action_pipeline(self) -> None:
        """The artifact's pipeline screen (a flow to start one is offered when it has none)."""
        art = self._need_artifact()
        if art is not None:
            open_pipeline(self.app, self.session, art)

    def action_discuss(self) -> None:
        art = self.current
        self.post_message(self.Discuss(f"#{art['slug']} " if art is not None and art.get("slug") else ""))

    # ------------------------------------------------------------------ variations and flows

    def action_variations(self) -> None:
        """The artifact's variations (its latest round, or an empty screen to start one)."""
        art = self._need_artifact()
        if art is not None:
            self.open_variations(art)

    def open_variations(self, art: dict[str, Any], round_id: str | None = None) -> None:
        from collab.screens.variations import VariationsScreen

        self.app.push_screen(VariationsScreen(self.session, art, round_id))

    @work(exclusive=True, group="vary")
    async def start_variations(self, flow: str | None = None) -> None:
        """Ask for the instruction (a leading number is N), start the round, show it."""
        art = self._need_artifact()
        if art is None:
            return
        views = self.session.variations
        try:
            plan = views.plan(flow)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        what = f"the {flow} flow" if flow else "variations"
        answer = await self.app.push_screen_wait(Prompt(
            f"{plan.n} {what} of {art.get('title')}: what should they do? (a number first changes N)",
            placeholder="e.g. make it shorter, or: 3 bolder opening"))
        if not answer:
            return
        head, _, rest = answer.partition(" ")
        if head.isdigit() and rest.strip():
            try:
                plan = views.plan(flow, int(head))
            except ValueError as exc:
                self.notify(str(exc), severity="error")
                return
            answer = rest.strip()
        try:
            got = await views.start(str(art["_id"]), answer, plan)
        except ConvexError as exc:
            self.notify(f"Cannot start: {error_text(exc)}", severity="error")
            return
        self.open_variations(art, str(got["roundId"]))

    @work(exclusive=True, group="flow")
    async def action_flow(self) -> None:
        """The flow picker: every flow of the config; run the chosen one on the artifact."""
        from collab.screens.flows import FlowPicker

        art = self._need_artifact()
        if art is None:
            return
        name = await self.app.push_screen_wait(FlowPicker(self.session.config, f"#{art.get('slug')}"))
        if name:
            self.run_flow(name)

    def run_flow(self, name: str) -> None:
        art = self.current
        flow = self.session.config.flow(name)
        if flow.view == "variations":
            self.start_variations(name)
        elif flow.view == "discussion":
            handles = " ".join(f"@{a.handle}" for a in self.session.config.flow_agents(name))
            self.post_message(self.Discuss(f"{handles} #{(art or {}).get('slug', '')} "))
        elif art is not None:  # a pipeline: started, and its screen opened (docs/PIPELINE.md)
            open_pipeline(self.app, self.session, art, name)

    # ------------------------------------------------------------------ what a role may do

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A viewer is not offered what writes (the keys show disabled; pressing one says why),
        nor an editor what only owners do."""
        if action in WRITE_ACTIONS and not self.session.members.can_write:
            return None
        if action in OWNER_ACTIONS and not self.session.members.is_owner:
            return None
        return True

    def on_key(self, event: Any) -> None:
        for b in self._bindings.key_to_bindings.get(event.key, []):
            if self.check_action(b.action, ()) is None:
                event.stop()
                self.notify(VIEWER_REFUSAL if b.action in WRITE_ACTIONS and not self.session.members.can_write
                            else "Only owners of the space force a lock open.", severity="warning")
                return

    # ------------------------------------------------------------------ palette

    def palette_commands(self) -> list[Command]:
        """What the palette offers for the artifact on screen."""
        cmds: list[tuple[str, str, str, Callable[[], Any]]] = [
            ("new_artifact", "New artifact", "Create an artifact in this space", self.action_new_artifact)]
        art = self.current
        if art is not None:
            t = art.get("title")
            cmds += [
                ("edit_artifact", f"Edit {t}", "Lock and edit", self.action_edit_artifact),
                ("history", f"History of {t}", "Versions, diffs, restore", self.action_history),
                ("wait_lock", f"Wait for the lock on {t}", "Join the FIFO queue (again: leave it)", self.action_wait_lock),
                ("copy_artifact", f"Copy {t}", "To the clipboard (OSC 52)", self.action_copy_artifact),
                ("export_artifact", f"Export {t}", "Write it to a file in the current directory",
                 self.action_export_artifact),
                ("tag_artifact", f"Tag {t}", "Edit tags", self.action_tag_artifact),
                ("rename_artifact", f"Rename {t}", "Change the title", self.action_rename_artifact),
                ("discuss", f"Discuss {t}", "Write a message referring to it", self.action_discuss),
                ("force_unlock", f"Force unlock {t}", "Owners: open the lock with a reason", self.action_force_unlock),
                ("delete_artifact", f"Delete {t}", "With its history (asks first)", self.action_delete_artifact),
                ("start_variations", f"Variations of #{art.get('slug')}…", "N versions side by side: star, pick, "
                 "compose", self.start_variations),
                ("variations", f"Rounds of variations of {t}", "Browse the variation rounds of this artifact",
                 self.action_variations),
                ("flow", f"Run a flow on #{art.get('slug')}…", "Pick one of the config's flows", self.action_flow),
                ("pipeline", f"Pipeline of {t}", "The stage track, the output, the reviews (p)", self.action_pipeline),
            ]
            for name, flow in self.session.config.visible_flows().items():
                cmds.append(("flow", f"Flow {flow.title} on #{art.get('slug')}", flow.description or name,
                             lambda n=name: self.run_flow(n)))
        # Only what this member's role allows is offered.
        return [(name, help_text, cb) for action, name, help_text, cb in cmds if self.check_action(action, ())]
