"""Toasts for this user's notifications in the space (mentions, a lock granted from the queue,
a lost lock, a failed run, a pipeline's "your review is needed" / "your turn" / "your stage
was rejected: <reason>" / stopped / done): it binds ``notifications:list`` (unread) and shows each new one
once, then marks them read. Invisible itself."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.widget import Widget

from collab.backend_client.space import SpaceSession
from collab.widgets.live import LiveBinding

TITLES = {"lockGranted": "Lock granted", "lockLost": "Lock lost", "mention": "Mentioned", "runFailed": "Agent failed",
          "reviewNeeded": "Pipeline: review", "stageTurn": "Pipeline: your turn", "stageRejected": "Pipeline: rejected",
          "pipelineFailed": "Pipeline stopped", "pipelineDone": "Pipeline done"}
ERRORS = {"lockLost", "runFailed", "stageRejected", "pipelineFailed"}
# What to press: the pipeline screen of the artifact (p on it in the space screen).
HINTS = {"reviewNeeded": " (p on the artifact: a approves, r rejects)", "stageTurn": " (p on the artifact, then e)",
         "stageRejected": " (p on the artifact, then e)"}


class Notifier(Widget):
    DEFAULT_CSS = "Notifier { display: none; }"

    def __init__(self, session: SpaceSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.seen: set[str] = set()
        self._live = LiveBinding(self, self._on_notifications)

    def on_mount(self) -> None:
        self._live.bind(self.session.watch_notifications())

    def on_unmount(self) -> None:
        self._live.close()

    def _on_notifications(self, rows: list[dict[str, Any]] | None) -> None:
        fresh = [n for n in rows or [] if str(n["_id"]) not in self.seen]
        for n in reversed(fresh):
            self.seen.add(str(n["_id"]))
            kind = str(n.get("kind"))
            text = str(n.get("text") or kind)
            if kind == "lockGranted":
                text += " (press e to edit)"
            text += HINTS.get(kind, "")
            self.notify(text, title=TITLES.get(kind, kind), severity="error" if kind in ERRORS else "information",
                        timeout=8)
        if fresh:
            self._mark_read()

    @work(group="mark-read")
    async def _mark_read(self) -> None:
        try:
            await self.session.mark_read()
        except Exception:
            pass  # reconnecting: they stay unread and show once (``seen``)
