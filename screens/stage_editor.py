"""A human's turn in a pipeline: the editor under the artifact's lock (the pipeline lets only
the stage's actor take it), where ctrl+s hands the text in for review (``pipelines:submit``,
which ends the hold) instead of saving a version. It opens on the previous attempt's output
after a rejection (whose reason it shows), else on the stage's input."""

from __future__ import annotations

from typing import Any

from collab.backend_client.space import SpaceSession
from collab.screens.editor import EditorScreen


class StageEditorScreen(EditorScreen):
    def __init__(self, session: SpaceSession, artifact: dict[str, Any], pipeline: dict[str, Any],
                 run: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        text = str(previous.get("output") or "") if previous and previous.get("output") else None
        super().__init__(session, artifact, None, text=text)
        self.pipeline = pipeline
        self.run = run
        self.previous = previous
        self.LABEL = f" STAGE {run['stageName']} #{run['attempt']:g} "

    def on_mount(self) -> None:
        super().on_mount()
        prev = self.previous
        if prev is not None and prev.get("status") == "rejected":
            who = (prev.get("reviewer") or {}).get("handle", "?")
            self.notify(f"Attempt {prev['attempt']:g} was rejected by @{who}: {prev.get('reason', '')}",
                        title="Your stage was rejected", timeout=20)
        self.notify("ctrl+s hands your text in for review; escape gives the lock back.", timeout=6)

    async def commit(self) -> dict[str, Any]:
        return await self.session.pipeline.submit(str(self.pipeline["_id"]), str(self.run["_id"]), self.text)
