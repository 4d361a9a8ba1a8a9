"""The space screen: layout and focus. The panes own their data, keys and actions (each binds
its own live queries through the session's facades), so nothing here relays data:

- top bar: the space, who you are, the connection badge;
- the artifacts pane (tree + document, the edit cycle);
- the discussion pane (log, outline, composer);
- the presence bar, and the notifier that turns notifications into toasts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from collab.backend_client.space import SpaceSession
from collab.screens.panes.artifacts import ArtifactsPane
from collab.screens.panes.discussion import DiscussionPane
from collab.widgets.connection_badge import ConnectionBadge
from collab.widgets.keys import binding
from collab.widgets.notifier import Notifier
from collab.widgets.presence_bar import PresenceBar
from collab.widgets.usage import UsageLine

Command = tuple[str, str, Callable[[], Any]]


class SpaceScreen(Screen[None]):
    BINDINGS = [
        # Priority: resolved in the app's key loop before the keys after them are forwarded, so
        # "f4 then text" types into the composer (a plain binding would leave the text queued on
        # the pane being left, where e.g. `e` opens the editor).
        binding("space.focus_tree", "focus_pane('tree')", description="Tree", show=False, priority=True),
        binding("space.focus_document", "focus_pane('document')", description="Doc", show=False, priority=True),
        binding("space.focus_discussion", "focus_pane('composer')", description="Chat", show=False, priority=True),
        binding("app.members", "members", description="Members", show=False),
    ]

    def __init__(self, session: SpaceSession) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        s = self.session
        with Horizontal(id="topbar"):
            role = "" if s.role in ("owner", "editor") else f"  {s.role}"
            yield Static(Text.assemble((" collab ", "bold reverse"), (f" {s.space_name}", "bold"),
                                       (f"  @{s.handle}", "dim"), (role, "bold yellow")), id="title")
            yield UsageLine(s, id="usage")
            yield ConnectionBadge(s.clock, s, id="badge")
        yield ArtifactsPane(s, id="main")
        yield DiscussionPane(s, id="discussion")
        yield PresenceBar(s, id="presence")
        yield Notifier(s)
        yield Footer()

    def on_mount(self) -> None:
        self.session.start_presence()
        self.session.members.follow_role()
        self.session.members.on_role_change.append(self._role_changed)
        self.query_one("#tree").focus()

    def on_unmount(self) -> None:
        if self._role_changed in self.session.members.on_role_change:
            self.session.members.on_role_change.remove(self._role_changed)

    def _role_changed(self, role: str) -> None:
        """An owner changed this member's role: offer exactly what the new role allows."""
        def apply() -> None:
            self._draw_title()
            self.artifacts.refresh_bindings()
            self.discussion.role_changed()
        self.call_later(apply)

    def _draw_title(self) -> None:
        s = self.session
        role = "" if s.role in ("owner", "editor") else f"  {s.role}"
        self.query_one("#title", Static).update(Text.assemble((" collab ", "bold reverse"), (f" {s.space_name}", "bold"),
                                                              (f"  @{s.handle}", "dim"), (role, "bold yellow")))

    def action_members(self) -> None:
        from collab.screens.members import MembersScreen

        self.app.push_screen(MembersScreen(self.session))

    @property
    def artifacts(self) -> ArtifactsPane:
        return self.query_one(ArtifactsPane)

    @property
    def discussion(self) -> DiscussionPane:
        return self.query_one(DiscussionPane)

    def action_focus_pane(self, pane: str) -> None:
        # Screen.set_focus, not Widget.focus(): focus() defers the change (call_later), so keys
        # typed in the same burst ("f4 then text") would still go to the pane being left.
        self.set_focus(self.query_one(f"#{pane}"))

    def _invite(self) -> None:
        from collab.screens.members import MembersScreen

        screen = MembersScreen(self.session)
        self.app.push_screen(screen)
        screen.call_after_refresh(screen.action_invite)

    @on(ArtifactsPane.Discuss)
    def _discuss(self, event: ArtifactsPane.Discuss) -> None:
        self.discussion.start_message(event.text, prefix=True)

    @on(DiscussionPane.OpenVariations)
    async def _open_variations(self, event: DiscussionPane.OpenVariations) -> None:
        art = await self.session.artifacts.get(event.artifact_id)
        self.artifacts.tree.select_id(event.artifact_id)
        self.artifacts.open_variations(art, event.round_id)

    def palette_commands(self) -> list[Command]:
        """The palette's commands for what is on screen: each pane's, and moving between them."""
        moves: list[Command] = [
            ("Focus tree", "Move to the artifact tree", lambda: self.action_focus_pane("tree")),
            ("Focus discussion", "Write a message", lambda: self.action_focus_pane("composer")),
            ("Members and costs", "Who is here, roles, invites, what the agents do and cost", self.action_members),
        ]
        if self.session.members.is_owner:
            moves.append(("Invite a teammate", "An invite code and the `collab join` line to send",
                          self._invite))
        artifacts = self.artifacts.palette_commands()
        return artifacts[:1] + moves + artifacts[1:] + self.discussion.palette_commands()
