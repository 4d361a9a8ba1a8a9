"""The ``collab`` Textual app: shows a first frame at once, then connects in a worker (config,
embedded backend, space) and lands on the space screen. Every failure on the way lands on an
error screen with a retry, never a traceback."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from collab.config import Config, textual_keymap
from collab.backend_client.space import SpaceSession
from collab.screens.startup import ErrorScreen, StartingScreen
from collab.tui.bootstrap import BootstrapError, LaunchOptions, connect, load
from collab.tui.compositor import use_row_cropping
from collab.tui.palette import ScreenCommands
from collab.tui.run import resume_gc
from collab.widgets.keys import binding


class CollabApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "collab"
    COMMANDS = App.COMMANDS | {ScreenCommands}
    BINDINGS = [
        binding("app.quit", "quit", description="Quit", show=False),
        binding("app.command_palette", "command_palette", description="Palette", show=False),
        binding("app.help", "toggle_help", description="Keys"),
        binding("app.toggle_theme", "toggle_dark", show=False),
        binding("app.notifications", "notifications", show=False),
        binding("app.switch_space", "switch_space", show=False),
        binding("app.redraw", "redraw", show=False),
        Binding("ctrl+c", "help_quit", show=False, system=True),
    ]

    def __init__(self, options: LaunchOptions | None = None, *, config: Config | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.options = options or LaunchOptions()
        self.config = config
        self.clock = clock or time.time
        self.session: SpaceSession | None = None
        self.startup_error: str | None = None
        if os.environ.get("COLLAB_FRAME_LOG"):  # benchmarks: per-frame timings (collab.tui.frame_log)
            from collab.tui.frame_log import install

            install(os.environ["COLLAB_FRAME_LOG"])

    # ------------------------------------------------------------------ start

    def on_mount(self) -> None:
        self.push_screen(StartingScreen("Loading the config…"))
        self.start()
        self.set_timer(5, resume_gc)  # in case no screen below gets to it

    @work(exclusive=True, group="start")
    async def start(self) -> None:
        from collab.screens.space import SpaceScreen

        try:
            if self.config is None:
                self.config = await asyncio.to_thread(load, self.options)
            self._apply_config(self.config)
            self._step("Connecting to the backend…")
            self.session = await connect(self.config, space_name=self.options.space, clock=self.clock)
        except BootstrapError as exc:
            self.config = None  # reload the file on retry: the user may have fixed it
            self.startup_error = str(exc)
            resume_gc()
            if await self.push_screen_wait(ErrorScreen("collab cannot start", str(exc))):
                self.start()
            return
        await self.switch_screen(SpaceScreen(self.session))
        if self.session.keeper is not None:
            self.session.on_connection_change(self._connection_changed)
        # The collector was paused for the start (collab.tui.run.pause_gc); the space screen's
        # first frame with its live data is drawn well within this.
        self.set_timer(0.5, resume_gc)

    @property
    def _background_screens(self) -> list[Screen[Any]]:
        # Textual counts the screen under the top one as visible whatever the top one's
        # background, and a "visible" screen below repaints the whole top screen whenever one of
        # its widgets changes: the space screen's live panes under a streaming variations or
        # pipeline screen cost a full-screen redraw per frame (bench/variations.py). A top
        # screen with an opaque background hides everything below; dialogs (translucent) keep
        # what Textual does. The screen below lays itself out again at its size when it resumes
        # (Textual's ScreenResume), so what changed meanwhile is drawn then.
        stack = self._screen_stack
        if stack and stack[-1].styles.background.a == 1:
            return []
        return list(super()._background_screens)

    def _get_screen(self, screen: Screen[Any] | str) -> tuple[Screen[Any], Any]:
        # Every screen the app shows passes here (push, switch, modes): each draws through the
        # row-cropping compositor (collab.tui.compositor).
        got, await_mount = super()._get_screen(screen)
        use_row_cropping(got)
        return got, await_mount

    def _connection_changed(self, status: Any) -> None:
        if status.state.value == "reconnecting":
            self._revive_backend()

    @work(exclusive=True, group="revive", thread=True)
    def _revive_backend(self) -> None:
        """The embedded backend went away under us: start it again (same port, same data) so
        the client's own reconnect finds it; no-op if it is alive or another pane revived it."""
        keeper = self.session.keeper if self.session is not None else None
        if keeper is None:
            return
        try:
            if keeper.revive():
                self.call_from_thread(self.notify, "The backend had stopped; it was started again.",
                                      severity="warning")
        except Exception as exc:  # shown; the badge keeps counting down the retries
            self.call_from_thread(self.notify, f"The backend is down and could not be restarted: {exc}",
                                  severity="error", timeout=10)

    def _step(self, what: str) -> None:
        if isinstance(self.screen, StartingScreen):
            self.screen.set_step(what)

    def _apply_config(self, config: Config) -> None:
        self.set_keymap(textual_keymap(config.keymap))
        self._themes = (config.theme.dark, config.theme.light)
        try:
            self.theme = config.theme.resolved
        except Exception:
            self.notify(f"Unknown theme {config.theme.resolved!r}; using the default.", severity="warning")

    # ------------------------------------------------------------------ app actions

    def action_toggle_dark(self) -> None:
        dark, light = getattr(self, "_themes", ("textual-dark", "textual-light"))
        self.theme = light if self.theme == dark else dark

    def action_toggle_help(self) -> None:
        from textual.widgets import HelpPanel

        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_redraw(self) -> None:
        self.refresh(layout=True, repaint=True)

    def action_notifications(self) -> None:
        from collab.screens.dialogs import MessageDialog

        session = self.session
        if session is None:
            return

        async def show() -> None:
            rows = await session.notifications(15)
            body = "\n".join(f"{'•' if not n.get('read') else ' '} {n.get('kind')}: {n.get('text')}" for n in rows)
            self.push_screen(MessageDialog("Notifications", body or "None yet."))

        self.run_worker(show(), group="notifications")

    @work(exclusive=True, group="switch-space")
    async def action_switch_space(self) -> None:
        """Pick another of the user's spaces (or, on the embedded backend, name a new one) and
        open it: the session is closed (presence left) and the app connects to the other
        space the way it started. Only from the space screen: an open editor is saved or
        cancelled first."""
        from collab.screens.space import SpaceScreen
        from collab.screens.spaces import SpacePicker

        session = self.session
        if session is None or not isinstance(self.screen, SpaceScreen):
            self.notify("Close the editor or dialog first, then switch spaces.", severity="warning")
            return
        try:
            spaces = await session.spaces()
        except Exception as exc:
            self.notify(f"Cannot list your spaces: {exc}", severity="error")
            return
        # Creating a space by naming it is the embedded backend's way (local trust); on a
        # deployment, spaces come from invites.
        name = await self.push_screen_wait(SpacePicker(spaces, session.space_id,
                                                       allow_new=session.keeper is not None))
        if not name or name == session.space_name or self.session is not session:
            return
        self.options.space = name
        await self.switch_screen(StartingScreen(f"Opening {name}…"))
        self.session = None
        await session.disconnect()
        self.start()

    def palette_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        return [
            ("Switch space", "Open another of your spaces", self.action_switch_space),
            ("Toggle light/dark theme", "Switch between the dark and the light theme", self.action_toggle_dark),
            ("Keys", "Show the keys of the focused pane", self.action_toggle_help),
            ("Notifications", "Mentions, locks granted, failed runs", self.action_notifications),
        ]

    async def action_quit(self) -> None:
        if self.session is not None:
            await self.session.disconnect()
        self.exit()
