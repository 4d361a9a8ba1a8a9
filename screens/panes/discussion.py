"""The discussion pane: the space's messages with agents' replies streaming in, the outline of
decisions and open questions, and the composer (``@agent`` asks, ``#artifact`` refers,
``/revise @agent #artifact ...`` asks for a revision under the lock).

It owns its live queries (``messages:list``, ``streams:forSpace``, ``messages:outline`` while
shown, members and artifacts for the completions) through the discussion facade, which the log
also pages older and newer messages from (``messages:page``), and its keys
(``ctrl+g`` stops the agents wherever the focus is in the pane; the log's keys come here as
:class:`MessageLog.Act` messages carrying the selected message)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import TextArea

from collab.backend_client import ConvexError
from collab.backend_client.space import VIEWER_REFUSAL, SpaceSession, error_text
from collab.backend_client.space.exporting import discussion_markdown
from collab.widgets.clipboard import copy_text
from collab.screens.pipeline import open_pipeline
from collab.widgets.composer import Composer
from collab.widgets.keys import binding
from collab.widgets.live import LiveBinding
from collab.widgets.message_log import MessageLog
from collab.widgets.outline import OutlinePanel

Command = tuple[str, str, Callable[[], Any]]


class DiscussionPane(Vertical):
    BINDINGS = [binding("discussion.cancel_runs", "cancel_runs", description="Stop agents", show=False)]

    class OpenVariations(Message):
        """``/vary`` started a round: show it (the screen asks the artifacts pane)."""

        def __init__(self, artifact_id: str, round_id: str) -> None:
            super().__init__()
            self.artifact_id = artifact_id
            self.round_id = round_id

    def __init__(self, session: SpaceSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.view = session.discussion
        self.handles: list[str] = []
        self.slugs: list[str] = []
        self._messages = LiveBinding(self, lambda msgs: self.log.set_messages(msgs or []))
        # The UI cadence (~30 ms): tails of agents' replies.
        self._streams = LiveBinding(self, lambda rows: self.log.set_live(rows))
        self._outline = LiveBinding(self, lambda o: self.query_one(OutlinePanel).set_outline(o))
        self._members = LiveBinding(self, self._on_members)
        self._artifacts = LiveBinding(self, self._on_artifacts)

    def compose(self) -> ComposeResult:
        with Horizontal(id="discussion-row"):
            yield MessageLog(self.session.handle, pages=self.view, id="log")
            yield OutlinePanel(id="outline")
        yield Composer(id="composer")

    @property
    def log(self) -> MessageLog:
        return self.query_one(MessageLog)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    def on_mount(self) -> None:
        self.role_changed()
        self._messages.bind(self.view.watch_messages())
        self._streams.bind(self.view.watch_streams())
        self._members.bind(self.session.watch_members())
        self._artifacts.bind(self.session.artifacts.watch_list())

    def on_unmount(self) -> None:
        for b in (self._messages, self._streams, self._outline, self._members, self._artifacts):
            b.close()

    # ------------------------------------------------------------------ what a role may do

    def role_changed(self) -> None:
        """A viewer reads the discussion and writes nothing: the composer says so."""
        composer = self.composer
        can = self.session.members.can_write
        composer.read_only = not can
        composer.placeholder = ("Message… (@agent asks, #artifact refers, ^j new line)" if can else
                                "You are a viewer here: you read, you cannot post. Ask an owner for the editor role.")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_runs" and not self.session.members.can_write:
            return None
        return True

    def on_key(self, event: Any) -> None:
        for b in self._bindings.key_to_bindings.get(event.key, []):
            if self.check_action(b.action, ()) is None:
                event.stop()
                self._refuse_viewer()
                return

    def _refuse_viewer(self) -> bool:
        if self.session.members.can_write:
            return False
        self.notify(VIEWER_REFUSAL, severity="warning")
        return True

    # ------------------------------------------------------------------ completions

    def _on_members(self, members: list[dict[str, Any]] | None) -> None:
        self.handles = [str(m["handle"]) for m in members or [] if m.get("handle") != self.session.handle]
        self.composer.set_completions(self.handles, self.slugs)

    def _on_artifacts(self, artifacts: list[dict[str, Any]] | None) -> None:
        self.slugs = [str(a.get("slug")) for a in artifacts or [] if a.get("slug")]
        self.composer.set_completions(self.handles, self.slugs)

    # ------------------------------------------------------------------ composing

    def start_message(self, text: str, *, prefix: bool = False) -> None:
        """Put ``text`` in the composer (before what is there with ``prefix``) and focus it."""
        composer = self.composer
        composer.value = text + composer.value if prefix else text
        self.screen.set_focus(composer)

    @on(TextArea.Changed, "#composer")
    def _typing(self, event: TextArea.Changed) -> None:
        self.session.set_presence(typing=bool(event.text_area.text))

    @on(Composer.Submitted)
    async def _send(self, event: Composer.Submitted) -> None:
        body = event.value.strip()
        if not body or self._refuse_viewer():
            return
        composer = self.composer
        composer.value = ""
        try:
            sent = await self.view.send(body)
            if sent.kind == "variations" and sent.artifact_id:
                self.post_message(self.OpenVariations(sent.artifact_id, sent.id))
            elif sent.kind == "pipeline" and sent.artifact_id:
                art = await self.session.artifacts.get(sent.artifact_id)
                self.notify(f"Started a pipeline on #{art.get('slug')}.")
                open_pipeline(self.app, self.session, art)
            for problem in self.view.unanswerable(body):
                self.notify(problem, severity="error", timeout=10)
        except ValueError as exc:  # a mistyped command: nothing was sent
            composer.value = body
            self.notify(str(exc), severity="error")
        except ConvexError as exc:
            composer.value = body  # keep what was typed
            what = "Not started" if body.startswith("/pipeline") else "Message rejected"
            self.notify(f"{what}: {error_text(exc)}", severity="error", timeout=10)
        except Exception as exc:
            composer.value = body
            self.notify(f"Not sent: {error_text(exc)}", severity="error")
        self.session.set_presence(typing=False)

    # ------------------------------------------------------------------ the log's keys

    @on(MessageLog.Act)
    def _log_action(self, event: MessageLog.Act) -> None:
        event.stop()
        if event.action in ("mark_decision", "reply") and self._refuse_viewer():
            return
        {"mark_decision": self._mark_decision, "reply": self._reply, "copy": self._copy,
         "export": lambda _m: self.action_export_discussion(),
         "toggle_sidebar": lambda _m: self.action_toggle_sidebar()}[event.action](event.message)

    @work(group="decision")
    async def _mark_decision(self, msg: dict[str, Any] | None) -> None:
        if msg is None:
            return
        try:
            await self.view.mark_decision(str(msg["_id"]), not msg.get("decision"))
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")
            return
        # A message paged in above the live tail is a copy: show the mark on it too.
        self.log.replace_message({**msg, "decision": not msg.get("decision")})

    def _reply(self, msg: dict[str, Any] | None) -> None:
        self.start_message(f"@{msg.get('authorHandle')} " if msg is not None else self.composer.value)

    def _copy(self, msg: dict[str, Any] | None) -> None:
        if msg is not None:
            copy_text(self, self.session.config, str(msg.get("body", "")), "the message")

    def action_toggle_sidebar(self) -> None:
        """Decisions and open questions beside the log; the query lives only while shown."""
        panel = self.query_one(OutlinePanel)
        panel.display = not panel.display
        if panel.display:
            self._outline.bind(self.view.watch_outline())
        else:
            self._outline.close()

    @work(exclusive=True, group="cancel-runs")
    async def action_cancel_runs(self) -> None:
        """Stop every agent run of this space that has not finished (queued, claimed,
        streaming): the worker stops the stream within a second and the reply says so."""
        try:
            stopped = await self.view.cancel_runs()
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

    @work(exclusive=True, group="export")
    async def action_export_discussion(self) -> None:
        """The whole discussion (every page, not only what the log holds) as Markdown."""
        path = Path.cwd() / f"discussion-{self.session.space_name}.md"
        try:
            messages = await self.view.all_messages()
        except Exception as exc:
            self.notify(f"Cannot export: {error_text(exc)}", severity="error")
            return
        text = discussion_markdown(self.session.space_name, messages)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot export: {exc}", severity="error")
            return
        self.notify(f"Exported the discussion to {path}")

    # ------------------------------------------------------------------ palette

    def palette_commands(self) -> list[Command]:
        if not self.session.members.can_write:  # a viewer writes nothing: only what reads
            return [("Show or hide decisions and open questions", "The outline beside the discussion",
                     self.action_toggle_sidebar)]
        cmds: list[Command] = [
            ("Show or hide decisions and open questions", "The outline beside the discussion",
             self.action_toggle_sidebar),
            ("Stop the agents replying", "Cancel the running agent runs of this space", self.action_cancel_runs),
        ]
        msg = self.log.selected
        if msg is not None:
            cmds.append(("Mark the selected message as a decision" if not msg.get("decision")
                         else "Unmark the selected decision", "Decisions are listed for everyone",
                         lambda: self._mark_decision(msg)))
        for a in self.session.config.enabled_agents():
            cmds.append((f"Ask @{a.handle}", f"{a.role or 'agent'}: start a message to it",
                         lambda h=a.handle: self.start_message(f"@{h} ")))
        return cmds
