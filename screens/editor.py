"""The editor: the artifact's content in a TextArea while this terminal holds its lock.

The screen opens the moment ``e`` is pressed, *before* the lock is granted, and takes the
keyboard focus in the same step (see :meth:`EditorScreen.open`): keys typed in one burst after
``e`` land in the TextArea in order instead of reaching the space screen's bindings (where
``h`` opened the history and the rest was lost). The lock is taken meanwhile; a refusal closes
the editor and hands the typed text back to the space screen.

ctrl+s saves a new version and releases the lock (one transaction on the server); escape
releases without saving (the draft is kept); ctrl+r continues in $EDITOR (the app is
suspended). The session renews the lease in the background; if the hold is lost (expired,
forced open) the banner says so at once, the text stays, and ctrl+s tries to take the lock
again before saving.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from collab.backend_client import ConvexError
from collab.backend_client.space import LockConflict, LockHold, SpaceSession, error_text
from collab.widgets.keys import binding
from collab.widgets.live import LiveBinding

SUFFIX = {"markdown": ".md", "python": ".py", "code": ".txt"}


class EditorScreen(Screen[dict[str, Any] | None]):
    BINDINGS = [
        # Priority: the TextArea would otherwise take escape (blur) before the screen sees it.
        binding("editor.save", "save", description="Save", priority=True),
        binding("editor.cancel", "cancel", description="Cancel", priority=True),
        binding("editor.external", "external", description="$EDITOR", priority=True),
    ]

    def __init__(self, session: SpaceSession, artifact: dict[str, Any], hold: LockHold | None = None,
                 text: str | None = None) -> None:
        """``hold=None``: take the lock after opening. ``text``: start from text typed earlier
        (a refused attempt) instead of the artifact's content."""
        super().__init__()
        self.session = session
        self.artifact = artifact
        self.hold = hold
        self._live = LiveBinding(self, self._on_artifact)
        self.saving = False
        self.closed = False
        self._original = str(artifact.get("content") or "")
        # Built here, not in compose, so :meth:`open` can focus it before it is even mounted.
        self.area = TextArea(self._original if text is None else text, id="editor-area", show_line_numbers=False,
                             soft_wrap=True, tab_behavior="indent")
        language = artifact.get("language") or ("markdown" if artifact.get("kind") == "markdown" else None)
        try:
            if language:
                self.area.language = str(language)
        except Exception:  # no tree-sitter grammar for it: plain text is fine
            pass
        self._acquiring: asyncio.Task[None] | None = None

    def open(self, app: Any, callback: Any) -> None:
        """Push this screen and focus its TextArea in one synchronous step. Textual sends each
        key to the focused widget of the top screen; until a freshly pushed screen has mounted
        and focused something, keys go to the screen itself and are dropped. Focusing here,
        before the app handles the next key, closes that window (the TextArea's queue keeps
        the keys until it has mounted)."""
        app.push_screen(self, callback=callback)
        self.set_focus(self.area, scroll_visible=False)

    def compose(self) -> ComposeResult:
        yield Static(id="editor-banner")
        yield self.area
        yield Footer()

    def on_mount(self) -> None:
        self.session.artifacts.on_hold_lost.append(self._hold_lost)
        self._live.bind(self.session.artifacts.watch(str(self.artifact["_id"])))
        self.session.set_presence(artifact_id=str(self.artifact["_id"]), view="editor")
        self.area.focus()
        if self.hold is None:
            self._acquiring = asyncio.get_running_loop().create_task(self._acquire())
        self._draw_banner()

    @property
    def typed(self) -> bool:
        return self.text != self._original

    async def _acquire(self) -> None:
        aid = str(self.artifact["_id"])
        try:
            got = await self.session.artifacts.acquire(aid)
        except Exception as exc:
            if not self.closed:
                what = "Cannot lock" if isinstance(exc, ConvexError) else "Cannot lock (backend unreachable?)"
                self._close({"error": f"{what}: {error_text(exc)}"})
            return
        if self.closed:  # escape while the lock was on its way: give it back
            if isinstance(got, LockHold):
                await self.session.artifacts.cancel_edit()
            return
        if not isinstance(got, LockHold):
            self._close({"conflict": got})
            return
        self.hold = got
        if got.base_version != self.artifact.get("version"):
            # Someone saved between the document on screen and the grant.
            fresh = await self.session.artifacts.get(aid)
            if not self.typed:
                self.area.load_text(str(fresh.get("content") or ""))
                self._original = self.text
            else:
                self.notify(f"v{got.base_version} was saved while the lock was being taken; your text is "
                            f"based on v{self.artifact.get('version')}.", severity="warning", timeout=8)
            self.artifact = fresh
        self._draw_banner()

    def _close(self, result: dict[str, Any] | None) -> None:
        """Leave without saving; a refused lock hands the typed text back (never lost)."""
        self.closed = True
        if result is not None and self.typed:
            result["text"] = self.text
        self.session.set_presence(typing=False, view="space")
        self.dismiss(result)

    def on_unmount(self) -> None:
        self._live.close()
        if self._hold_lost in self.session.artifacts.on_hold_lost:
            self.session.artifacts.on_hold_lost.remove(self._hold_lost)

    def _on_artifact(self, art: dict[str, Any] | None) -> None:
        if art:
            self.session.artifacts.check_lock_row(art)

    def _hold_lost(self, hold: LockHold) -> None:
        if hold is self.hold:
            self._draw_banner()
            by = f" by @{hold.lost_by}" if hold.lost_by else ""
            self.notify(f"You lost the lock ({hold.lost_reason}{by}). Your text is kept: ctrl+s tries to take "
                        "the lock again and save.", severity="error", timeout=8)

    # The label on the banner and what ctrl+s does: a pipeline stage's editor hands its text in
    # for review instead of saving a version (screens/stage_editor.py).
    LABEL = " EDITING "

    async def commit(self) -> dict[str, Any]:
        """ctrl+s under the hold: a new version, the lock released (one transaction)."""
        return await self.session.artifacts.save(self.text)

    def _draw_banner(self) -> None:
        h = self.hold
        text = Text(no_wrap=True, overflow="ellipsis")
        if h is None:
            text.append(" LOCKING ", style="bold black on yellow")
            text.append(f" {self.artifact.get('title', '')}", style="bold")
            text.append("  taking the lock… (type away: your keys are kept)", style="yellow")
            self.query_one("#editor-banner", Static).update(text)
            return
        text.append(self.LABEL, style="bold black on green" if not h.lost_reason else "bold white on red")
        text.append(f" {self.artifact.get('title', '')}", style="bold")
        text.append(f" (from v{h.base_version})", style="dim")
        if h.lost_reason:
            text.append(f"  lock lost: {h.lost_reason}" + (f" by @{h.lost_by}" if h.lost_by else ""),
                        style="bold red")
        else:
            # The lease length, not a countdown: the session renews it in the background, so
            # a ticking number would only say "the renewal works" while making noise.
            locks = self.session.config.locks
            text.append(f"  lock held (lease {locks.lease_ttl_s:g}s, renewed every {locks.renew_every_s:g}s)",
                        style="green")
        self.query_one("#editor-banner", Static).update(text)

    @property
    def text(self) -> str:
        return self.area.text

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.session.set_presence(typing=True)

    async def action_save(self) -> None:
        if self.saving:
            return
        self.saving = True
        try:
            if self.hold is None and self._acquiring is not None:
                await asyncio.shield(self._acquiring)  # ctrl+s typed in the same burst as e
            if self.hold is None:
                return  # refused: _acquire closed the editor and kept the text
            if self.hold.lost_reason:
                got = await self.session.artifacts.acquire(self.hold.artifact_id)
                if isinstance(got, LockConflict):
                    self.notify(f"Cannot save: @{got.handle} ({got.kind}) holds the lock now. Your text is "
                                "still here; copy it or wait.", severity="error", timeout=8)
                    return
                if not isinstance(got, LockHold):
                    self.notify("Queued for the lock; save again when it is yours.", severity="warning")
                    return
                self.hold = got
            await self._after_queued_keys()
            result = await self.commit()
        except ConvexError as exc:
            self.notify(f"Save rejected: {error_text(exc)}. Your text is kept.", severity="error", timeout=8)
            return
        except Exception as exc:
            self.notify(f"Save failed: {error_text(exc)}. Your text is kept.", severity="error", timeout=8)
            return
        finally:
            self.saving = False
        self.session.set_presence(typing=False, view="space")
        self.dismiss(result)

    async def _after_queued_keys(self) -> None:
        """ctrl+s is a priority binding: keys typed just before it in the same burst may still
        wait in the text box's queue. A callback posted there runs after them."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.area.call_later(lambda: done.done() or done.set_result(None))
        await done

    async def action_cancel(self) -> None:
        self.closed = True
        if self.hold is not None:
            await self.session.artifacts.cancel_edit(keep_draft=True)
        # else the lock is still on its way; _acquire releases it when it arrives
        self._close(None)

    def action_external(self) -> None:
        cmd = self.session.config.ui.editor_command()
        if not cmd:
            cmd_env = os.environ.get("VISUAL") or os.environ.get("EDITOR")
            if not cmd_env:
                self.notify("No external editor: set $EDITOR or ui.editor in the config.", severity="warning")
                return
            cmd = cmd_env.split()
        self._run_external(cmd)

    @work(exclusive=True, group="external-editor")
    async def _run_external(self, cmd: list[str]) -> None:
        suffix = SUFFIX.get(str(self.artifact.get("kind")), ".txt")
        with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False, encoding="utf-8") as f:
            f.write(self.text)
            path = f.name
        try:
            # An asyncio subprocess, not subprocess.call: the loop keeps running while the
            # editor is open, so the session keeps renewing the lease (a long edit in vim must
            # not lose the lock after 30 s).
            with self.app.suspend():
                proc = await asyncio.create_subprocess_exec(*cmd, path)
                code = await proc.wait()
            if code != 0:
                self.notify(f"{cmd[0]} exited with {code}; text unchanged.", severity="warning")
                return
            with open(path, encoding="utf-8") as f:
                self.area.load_text(f.read())
        except OSError as exc:
            self.notify(f"Cannot run {cmd[0]}: {exc}", severity="error")
        finally:
            os.unlink(path)
