"""The pipeline screen of an artifact (DESIGN 1.3, docs/PIPELINE.md): the stage track (``draft ✓
-> edit ● -> polish ○`` with who, attempt and status per stage), the current stage's output
streaming live (the durable output every ~250 ms plus its live tail every ~30 ms, drawn line by
line by :class:`StreamText`), its diff against the stage's input, every attempt with its
reason, and the keys: approve, reject (asks for the reason), diff, work on your stage, retry,
cancel, start. Live for everyone: it binds ``pipelines:forArtifact``, ``pipelines:get`` and
``proposals:live`` through the pipeline facade; a decision in another terminal moves the track
here with no key pressed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from collab.backend_client import ConvexError
from collab.backend_client.space import LockConflict, SpaceSession, error_text, pipeline_flows, stage_output, track
from collab.screens.dialogs import PipelineFlowPicker, Prompt
from collab.screens.history import diff_text
from collab.screens.stage_editor import StageEditorScreen
from collab.widgets.keys import binding
from collab.widgets.live import LiveBinding
from collab.widgets.stage_track import StageTrack, attempts_text
from collab.widgets.stream_text import StreamText

__all__ = ["PipelineScreen", "open_pipeline", "pipeline_commands"]



class PipelineScreen(Screen[None]):
    DEFAULT_CSS = """
    PipelineScreen #pipe-title { height: 1; padding: 0 1; }
    PipelineScreen StageTrack { max-height: 7; }
    PipelineScreen #pipe-status { height: auto; max-height: 3; padding: 0 1; }
    PipelineScreen #pipe-body { height: 1fr; min-height: 4; border: round $primary 50%; }
    PipelineScreen #pipe-body:focus-within { border: round $accent; }
    PipelineScreen #pipe-output { height: 1fr; padding: 0 1; }
    PipelineScreen #pipe-diff { height: 1fr; display: none; padding: 0 1; }
    PipelineScreen #pipe-attempts { height: auto; max-height: 6; padding: 0 1; border-top: solid $primary 50%; }
    """
    BINDINGS = [
        binding("pipeline.approve", "approve", description="Approve"),
        binding("pipeline.reject", "reject", description="Reject"),
        binding("pipeline.diff", "diff", description="Diff"),
        binding("pipeline.work", "work", description="Work"),
        binding("pipeline.retry", "retry", description="Retry"),
        binding("pipeline.cancel", "cancel_pipeline", description="Cancel"),
        binding("pipeline.start", "start", description="Start", show=False),
        binding("app.back", "back", description="Back"),
    ]

    def __init__(self, session: SpaceSession, artifact: dict[str, Any], pipeline_id: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.view = session.pipeline
        self.artifact = artifact
        self.pipeline_id = pipeline_id
        self.data: dict[str, Any] | None = None  # pipelines:get
        self.tails: list[dict[str, Any]] = []  # proposals:live
        self.diff = False
        self._offered = pipeline_id is not None
        self._list = LiveBinding(self, self._on_list)
        self._one = LiveBinding(self, self._on_pipeline)
        self._tails = LiveBinding(self, self._on_tails)

    def compose(self) -> ComposeResult:
        yield Static(id="pipe-title")
        yield StageTrack(id="track")
        yield Static(id="pipe-status")
        with Vertical(id="pipe-body"):
            yield StreamText(placeholder="No output.", id="pipe-output")
            with VerticalScroll(id="pipe-diff"):
                yield Static(id="pipe-diff-text")
        yield Static(id="pipe-attempts")
        yield Footer()

    def on_mount(self) -> None:
        aid = str(self.artifact["_id"])
        self._list.bind(self.view.watch_for_artifact(aid))
        self._tails.bind(self.view.watch_tails(aid))
        if self.pipeline_id:
            self._one.bind(self.view.watch(self.pipeline_id))
        self.session.set_presence(artifact_id=aid, view="pipeline")
        self._draw()

    def on_unmount(self) -> None:
        for b in (self._list, self._one, self._tails):
            b.close()

    # ------------------------------------------------------------------ live data

    @property
    def pipeline(self) -> dict[str, Any] | None:
        return self.data["pipeline"] if self.data else None

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self.data["runs"]) if self.data else []

    @property
    def current(self) -> dict[str, Any] | None:
        """The attempt on show: the latest one of the pipeline's current stage."""
        runs = self.runs
        return runs[-1] if runs else None

    def _on_list(self, rows: list[dict[str, Any]] | None) -> None:
        """The artifact's pipelines: follow the one holding it (a pipeline started from another
        terminal shows up here by itself), else the newest."""
        rows = list(rows or [])
        if not rows and not self._offered and self.session.role != "viewer":
            self._offered = True  # nothing to show yet: offer the flows once
            self.action_start()
        chosen = next((r for r in rows if r.get("holding")), rows[0] if rows else None)
        if chosen is not None and (self.pipeline_id is None or (chosen.get("holding") and
                                                                chosen["_id"] != self.pipeline_id)):
            self.pipeline_id = str(chosen["_id"])
            self._one.bind(self.view.watch(self.pipeline_id))
        self._draw()

    def _on_pipeline(self, value: dict[str, Any] | None) -> None:
        self.data = value
        self._draw()

    def _on_tails(self, rows: list[dict[str, Any]] | None) -> None:
        self.tails = list(rows or [])
        if not self.diff:
            self._draw_output()  # the ~30 ms path: only the output grows

    # ------------------------------------------------------------------ keys on offer

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers what this user can do now (each action still checks and says why
        not, for a key pressed anyway through a remap or the palette)."""
        p, run = self.pipeline, self.current
        if action in ("approve", "reject"):
            return p is not None and self.view.may_review(p, run)
        if action == "work":
            return p is not None and self.view.may_work(p, run)
        if action == "retry":
            return p is not None and p["status"] == "failed" and self.view.may_end(p)
        if action == "cancel_pipeline":
            return p is not None and p["status"] in ("running", "awaitingReview", "failed") and self.view.may_end(p)
        if action == "diff":
            return run is not None
        return True

    # ------------------------------------------------------------------ drawing

    def _draw(self) -> None:
        p, run = self.pipeline, self.current
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(" Pipeline ", style="bold reverse")
        if p is not None:
            title.append(f" {p['title']}", style="bold")
        title.append(f" on {self.artifact.get('title', '')}", style="")
        self.query_one("#pipe-title", Static).update(title)
        self.query_one(StageTrack).set_stages(track(p, self.runs) if p else [])
        self.query_one("#pipe-status", Static).update(self._status(p, run))
        self.query_one("#pipe-attempts", Static).update(attempts_text(self.runs))
        body = self.query_one("#pipe-body")
        if run is not None:
            what = "notes" if p and p["stages"][int(run["stage"])]["output"] == "notes" else "output"
            body.border_title = f"{'Diff' if self.diff else what.title()}: {run['stageName']} #{run['attempt']:g}"
        else:
            body.border_title = "Output"
        self.query_one("#pipe-output").display = not self.diff
        self.query_one("#pipe-diff").display = self.diff
        if self.diff:
            self._show_diff()
        else:
            self._draw_output()
        self.refresh_bindings()

    def _draw_output(self) -> None:
        out, run = self.query_one(StreamText), self.current
        if run is None:
            out.set_text("")
            return
        text = stage_output(run, self.tails)
        human_at_work = run["status"] == "working" and run.get("actorKind") != "agent"
        out.placeholder = "Being written in the stage editor…" if human_at_work else "No output."
        out.set_text(text, streaming=run["status"] == "working" and run.get("actorKind") == "agent")

    def _status(self, p: dict[str, Any] | None, run: dict[str, Any] | None) -> Text:
        text = Text()
        if p is None or run is None:
            text.append("No pipeline on this artifact yet. s picks a flow and starts one.", style="dim")
            return text
        stage = p["stages"][int(run["stage"])]
        who = f"@{run['actorHandle']}" if run.get("actorHandle") else "a human editor"
        status = p["status"]
        if status == "running" and self.view.may_work(p, run):
            text.append(f"Your turn: stage {stage['name']}. ", style="bold green")
            text.append("e takes the lock and opens the stage editor.")
        elif status == "running":
            text.append(f"{who} is working on {stage['name']} (attempt {run['attempt']:g})…", style="yellow")
        elif status == "awaitingReview" and self.view.may_review(p, run):
            text.append("Your review is needed: ", style="bold green")
            text.append("a approves, r rejects with a reason, d diffs.")
        elif status == "awaitingReview":
            approver = stage["approver"].split(":", 1)[-1]
            text.append(f"Awaiting review by {'a human editor' if approver == 'human' else '@' + approver}.",
                        style="yellow")
        elif status == "failed":
            text.append(f"Stopped: {p.get('reason', 'failed')}", style="bold red")
            if self.view.may_end(p):
                text.append("  R retries, ctrl+g cancels.")
        elif status == "done":
            text.append(f"Done: every stage approved (now v{self._last_version()}).", style="bold green")
        else:
            text.append(f"Cancelled: {p.get('reason', '')}", style="bold red")
        if status == "running" and run["attempt"] > 1:  # what this attempt must answer
            before = next((r for r in reversed(self.runs) if r["stage"] == run["stage"] and r["_id"] != run["_id"]),
                          None)
            if before is not None and before.get("reason"):
                text.append(f"\nAttempt {before['attempt']:g} was rejected: {before['reason']}", style="italic")
        return text

    def _last_version(self) -> Any:
        versions = [r.get("outputVersion") for r in self.runs if r.get("outputVersion")]
        return versions[-1] if versions else self.artifact.get("version", "?")

    @work(exclusive=True, group="diff")
    async def _show_diff(self) -> None:
        """The output against the stage's input version (not streaming: drawn when the durable
        output or the attempt changes, not on every tail)."""
        run, shown = self.current, self.query_one("#pipe-diff-text", Static)
        if run is None:
            return
        try:
            before = await self.view.input_of(str(self.artifact["_id"]), int(run["inputVersion"]))
        except Exception as exc:
            shown.update(f"Cannot load version {run['inputVersion']:g}: {error_text(exc)}")
            return
        shown.update(diff_text(before, stage_output(run, self.tails), f"v{run['inputVersion']:g} (input)",
                               f"{run['stageName']} #{run['attempt']:g}"))

    # ------------------------------------------------------------------ actions

    def _need(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        p, run = self.pipeline, self.current
        if p is None or run is None:
            self.notify("No pipeline here yet: s starts one.", severity="warning")
            return None
        return p, run

    async def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return await fn()
        except ValueError as exc:
            self.notify(str(exc), severity="error")
        except ConvexError as exc:
            self.notify(f"{what}: {error_text(exc)}", severity="error", timeout=8)
        except Exception as exc:
            self.notify(f"{what} failed (backend unreachable?): {error_text(exc)}", severity="error")
        return None

    @work(exclusive=True, group="decide")
    async def action_approve(self) -> None:
        got = self._need()
        if got is None:
            return
        p, run = got
        if not self.view.may_review(p, run):
            self.notify(self._why_not_review(p, run), severity="warning")
            return
        if await self._call("Cannot approve", lambda: self.view.approve(str(p["_id"]), str(run["_id"]))):
            self.notify(f"Approved {run['stageName']} #{run['attempt']:g}.")

    @work(exclusive=True, group="decide")
    async def action_reject(self) -> None:
        got = self._need()
        if got is None:
            return
        p, run = got
        if not self.view.may_review(p, run):
            self.notify(self._why_not_review(p, run), severity="warning")
            return
        reason = await self.app.push_screen_wait(Prompt(f"Reject {run['stageName']} #{run['attempt']:g}: why? "
                                                        "(the stage's actor gets this)"))
        if not reason:
            self.notify("Not rejected: a rejection needs a reason.", severity="warning")
            return
        if await self._call("Cannot reject", lambda: self.view.reject(str(p["_id"]), str(run["_id"]), reason)):
            self.notify(f"Rejected {run['stageName']} #{run['attempt']:g}: back to {run.get('actorHandle') or 'its actor'}.")

    def _why_not_review(self, p: dict[str, Any], run: dict[str, Any]) -> str:
        if p["status"] != "awaitingReview":
            return f"Nothing to review: the pipeline is {p['status']}."
        approver = p["stages"][int(run["stage"])]["approver"]
        return f"Only {'a human editor' if approver == 'human' else '@' + approver.split(':', 1)[-1]} reviews " \
               f"stage {run['stageName']}."

    def action_diff(self) -> None:
        self.diff = not self.diff
        self._draw()

    def action_work(self) -> None:
        got = self._need()
        if got is None:
            return
        p, run = got
        if not self.view.may_work(p, run):
            self.notify(f"Stage {run['stageName']} is not yours to work on now.", severity="warning")
            return
        earlier = [r for r in self.runs if r["stage"] == run["stage"] and r["attempt"] < run["attempt"]]
        editor = StageEditorScreen(self.session, self.artifact, p, run, earlier[-1] if earlier else None)
        editor.open(self.app, self._worked)

    def _worked(self, result: dict[str, Any] | None) -> None:
        if not result:
            return
        if isinstance(result.get("conflict"), LockConflict):
            self.notify(result["conflict"].message or f"@{result['conflict'].handle} holds the lock.",
                        severity="error", timeout=8)
        elif "error" in result:
            self.notify(str(result["error"]), severity="error")
        elif "status" in result:
            self.notify("Handed in: " + ("approved at once (auto)." if result["status"] != "awaitingReview"
                                          else "it awaits review."))

    @work(exclusive=True, group="end")
    async def action_retry(self) -> None:
        got = self._need()
        if got is not None and await self._call("Cannot retry", lambda: self.view.retry(str(got[0]["_id"]))):
            self.notify("Retrying the stage.")

    @work(exclusive=True, group="end")
    async def action_cancel_pipeline(self) -> None:
        got = self._need()
        if got is None:
            return
        p = got[0]
        reason = await self.app.push_screen_wait(Prompt(f"Cancel the {p['title']} pipeline? Reason (enter cancels "
                                                        "it, escape keeps it):", f"cancelled by @{self.session.handle}"))
        if reason and await self._call("Cannot cancel", lambda: self.view.cancel(str(p["_id"]), reason)) is None:
            return
        if reason:
            self.notify("Cancelled: the artifact is free again.")

    @work(exclusive=True, group="start")
    async def action_start(self) -> None:
        flow = await self.app.push_screen_wait(PipelineFlowPicker(self.session, str(self.artifact.get("title", ""))))
        if flow:
            pid = await self._call("Cannot start", lambda: self.view.start(str(self.artifact["_id"]), flow))
            if pid:
                self.pipeline_id = str(pid)
                self._one.bind(self.view.watch(self.pipeline_id))

    def action_back(self) -> None:
        self.session.set_presence(view="space")
        self.app.pop_screen()

    def palette_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        return [("Approve the stage output", "Only the stage's approver", self.action_approve),
                ("Reject the stage output", "Asks for the reason", self.action_reject),
                ("Diff the output against its input", "Toggle", self.action_diff),
                ("Work on my stage", "Take the lock and open the stage editor", self.action_work),
                ("Retry the failed stage", "Owners and who started it", self.action_retry),
                ("Cancel the pipeline", "Owners and who started it", self.action_cancel_pipeline),
                ("Start a pipeline", "Pick a flow", self.action_start)]


def open_pipeline(app: Any, session: SpaceSession, artifact: dict[str, Any], flow: str | None = None) -> None:
    """Open the pipeline screen of ``artifact``; with ``flow`` (a flow whose view is
    ``pipeline``, e.g. from the flow picker) start that flow's pipeline first."""
    screen = PipelineScreen(session, artifact)
    screen._offered = flow is not None  # the flow is chosen already
    app.push_screen(screen)
    if flow is not None:
        async def start() -> None:
            pid = await screen._call("Cannot start", lambda: session.pipeline.start(str(artifact["_id"]), flow))
            if pid:
                screen.pipeline_id = str(pid)
                screen._one.bind(session.pipeline.watch(screen.pipeline_id))

        screen.run_worker(start(), group="start")


def pipeline_commands(app: Any, session: SpaceSession, artifact: dict[str, Any] | None
                      ) -> list[tuple[str, str, Callable[[], Any]]]:
    """Palette entries for the artifact on screen: open its pipeline, or start one per
    pipeline flow of the config (the lead's flow picker can call :func:`open_pipeline`)."""
    if artifact is None:
        return []
    t = artifact.get("title")
    cmds: list[tuple[str, str, Callable[[], Any]]] = [
        (f"Pipeline of {t}", "The stage track, output, reviews", lambda: open_pipeline(app, session, artifact))]
    for name, flow in pipeline_flows(session.config).items():
        stages = " -> ".join(s.name for s in flow.stages)
        cmds.append((f"Start the {flow.title} pipeline on {t}", stages,
                     lambda n=name: open_pipeline(app, session, artifact, n)))
    return cmds
