"""The variations screen of one artifact: a round's N variations side by side, streaming live.

A grid of 2-5 columns from 80 columns on (one column with next/previous below), each with its
author, temperature, status, tokens and cost; the columns scroll together or apart. Star
(shortlist), pick (the next version, through the lock), compose (select lines in any column,
collect them in the tray, reorder, give an instruction or none), N more from the shortlist, a
diff of two variations or of one against the current version, the rounds, cancel. Live for
everyone: the screen owns its live queries (the rounds, the round, the live tails, the
artifact) through the variations facade, and a second terminal sees the same stream, stars and
pick with no key pressed. The keys are the keymap's ``variations.*`` ids."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from collab.backend_client import ConvexError
from collab.backend_client.space import LockConflict, Part, Queued, SpaceSession, error_text, merge
from collab.screens.diff import DiffScreen
from collab.screens.dialogs import Confirm, LockConflictDialog, Prompt
from collab.screens.rounds import RoundsDialog
from collab.widgets.compose_tray import ComposeTray
from collab.widgets.connection_badge import ConnectionBadge
from collab.widgets.keys import binding
from collab.widgets.live import LiveBinding
from collab.widgets.stream_text import StreamText
from collab.widgets.variation_column import VariationColumn

WIDE = 80  # from this width on, several columns side by side
COLUMN_MIN = 26
MAX_COLUMNS = 5


class VariationsScreen(Screen[None]):
    BINDINGS = [
        binding("variations.star", "star", description="Star"),
        binding("variations.pick", "pick", description="Pick"),
        binding("variations.compose", "compose", description="Compose"),
        binding("variations.more", "more", description="More"),
        binding("variations.diff", "diff", description="Diff"),
        binding("variations.next", "move(1)", description="Next", show=False),
        binding("variations.previous", "move(-1)", description="Prev", show=False),
        binding("variations.next_round", "round(1)", description="Round+", show=False),
        binding("variations.previous_round", "round(-1)", description="Round-", show=False),
        binding("variations.more_columns", "columns(1)", show=False),
        binding("variations.fewer_columns", "columns(-1)", show=False),
        binding("variations.cancel", "cancel_all", description="Stop all", show=False),
        binding("variations.cancel_one", "cancel_one", show=False),
        binding("variations.new", "new_round", description="New"),
        binding("variations.rounds", "rounds", description="Rounds", show=False),
        binding("variations.sync_scroll", "sync_scroll", show=False),
        binding("variations.select", "select", show=False),
        binding("variations.add_part", "add_part", show=False),
        binding("app.back", "back", description="Back"),
    ]
    DEFAULT_CSS = """
    VariationsScreen #var-top { height: 1; }
    VariationsScreen #var-title { width: 1fr; height: 1; }
    VariationsScreen #var-info { height: 1; color: $text-muted; }
    VariationsScreen #grid { height: 1fr; }
    VariationsScreen #var-empty { height: 1fr; content-align: center middle; color: $text-muted; }
    VariationsScreen ComposeTray { display: none; }
    VariationsScreen.-composing ComposeTray { display: block; }
    """

    def __init__(self, session: SpaceSession, artifact: dict[str, Any], round_id: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.view = session.variations
        self.artifact = artifact
        self.artifact_id = str(artifact["_id"])
        self.round_id = round_id
        self.rounds: list[dict[str, Any]] = []
        self.round: dict[str, Any] | None = None
        self.rows: list[dict[str, Any]] = []
        self.tails: dict[str, dict[str, Any]] = {}
        self.focus_index = 0  # the focused variation (index in rows)
        self.first = 0  # the first column shown
        self.wanted_columns: int | None = None  # +/- overrides the width's choice
        self.sync = True  # columns scroll together
        self.composing = False
        self._rounds = LiveBinding(self, self._on_rounds)
        self._round = LiveBinding(self, self._on_round)
        self._tails = LiveBinding(self, self._on_tails)
        self._art = LiveBinding(self, self._on_artifact)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(id="var-top"):
            yield Static(id="var-title")
            yield ConnectionBadge(self.session.clock, self.session, id="badge")
        yield Static(id="var-info")
        yield Horizontal(id="grid")
        yield Static(Text("No rounds yet. n starts one: what should the variations do?"), id="var-empty")
        yield ComposeTray(id="tray")
        yield Footer()

    def on_mount(self) -> None:
        self._rounds.bind(self.view.watch_rounds(self.artifact_id))
        self._tails.bind(self.view.watch_tails(self.artifact_id))
        self._art.bind(self.session.artifacts.watch(self.artifact_id))
        if self.round_id:
            self._round.bind(self.view.watch_round(self.round_id))
        self._draw_title()

    def on_unmount(self) -> None:
        for b in (self._rounds, self._round, self._tails, self._art):
            b.close()
        self.session.set_presence(view="space")

    def on_resize(self) -> None:
        self._layout()

    def _columns(self) -> int:
        """How many columns show: from the width (one below 80 columns), or as +/- asked."""
        n = max(1, len(self.rows))
        if self.wanted_columns is not None:
            return max(1, min(self.wanted_columns, n, MAX_COLUMNS))
        if self.size.width < WIDE:
            return 1
        return max(1, min(n, MAX_COLUMNS, self.size.width // COLUMN_MIN))

    def _layout(self) -> None:
        columns = list(self.query(VariationColumn))
        k = self._columns()
        self.focus_index = max(0, min(self.focus_index, len(columns) - 1)) if columns else 0
        if self.focus_index < self.first:
            self.first = self.focus_index
        elif self.focus_index >= self.first + k:
            self.first = self.focus_index - k + 1
        self.first = max(0, min(self.first, max(0, len(columns) - k)))
        for i, col in enumerate(columns):
            col.display = self.first <= i < self.first + k
        self.query_one("#var-empty").display = not columns
        self.query_one("#grid").display = bool(columns)
        self._draw_info()

    # ------------------------------------------------------------------ live data

    def _on_rounds(self, rounds: list[dict[str, Any]] | None) -> None:
        previous = [str(r["_id"]) for r in self.rounds]
        self.rounds = list(rounds or [])
        if self.rounds:
            newest = str(self.rounds[0]["_id"])
            # Follow a new round (someone started one) unless the reader went back to an older one.
            following = self.round_id is None or (previous and self.round_id == previous[0])
            if following and newest != self.round_id:
                if self.round_id is not None and self.rounds[0].get("createdBy") != self.session.actor_id:
                    self.notify(f"Round {self.rounds[0]['number']:g} started by "
                                f"@{self.rounds[0].get('createdByHandle', '?')}.", timeout=5)
                self._show_round(newest)
        self._draw_title()

    def _show_round(self, round_id: str) -> None:
        self.round_id = round_id
        self.round, self.rows, self.focus_index, self.first = None, [], 0, 0
        self.query_one("#grid").remove_children()
        self._round.bind(self.view.watch_round(round_id))
        self._leave_compose()

    def _on_round(self, got: dict[str, Any] | None) -> None:
        if not got or str(got["round"]["_id"]) != self.round_id:
            return
        self.round, self.rows = got["round"], list(got["variations"])
        grid = self.query_one("#grid")
        have = {c.variation_id: c for c in self.query(VariationColumn)}
        for row in self.rows:
            if str(row["variationId"]) not in have:
                grid.mount(VariationColumn(str(row["variationId"])))
        self.call_after_refresh(self._fill)
        self.session.set_presence(artifact_id=self.artifact_id, view=f"variations r{self.round['number']:g}")
        self._draw_title()

    def _fill(self) -> None:
        by_id = {c.variation_id: c for c in self.query(VariationColumn)}
        for row in self.rows:
            col = by_id.get(str(row["variationId"]))
            if col is not None:
                tail = self.tails.get(str(row["proposalId"])) if row["status"] == "streaming" else None
                col.show(row, merge(str(row["content"]), tail))
        self._layout()
        focused = self.focused
        if focused is None or not focused.is_attached or not focused.display:
            col = self._column(self.focus_index)
            if col is not None:  # the focused variation's text takes the keys
                self.set_focus(col.text)

    def _on_tails(self, rows: list[dict[str, Any]] | None) -> None:
        self.tails = {str(r["proposalId"]): r for r in rows or [] if r.get("proposalId")}
        by_id = {c.variation_id: c for c in self.query(VariationColumn)}
        for row in self.rows:
            if row["status"] == "streaming" and str(row["variationId"]) in by_id:
                shown = merge(str(row["content"]), self.tails.get(str(row["proposalId"])))
                by_id[str(row["variationId"])].text.set_text(shown, streaming=True)

    def _on_artifact(self, art: dict[str, Any] | None) -> None:
        if art:
            self.artifact = art
            self._draw_title()

    def _draw_title(self) -> None:
        art, rnd = self.artifact, self.round
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" Variations ", style="bold reverse")
        text.append(f" #{art.get('slug', '?')}", style="bold")
        text.append(f" v{art.get('version', '?')}", style="cyan")
        if rnd is not None:
            text.append(f"  round {rnd['number']:g}/{len(self.rounds) or rnd['number']:g}", style="bold")
            text.append(f"  {rnd['instruction']}", style="italic")
        self.query_one("#var-title", Static).update(text)

    def _draw_info(self) -> None:
        rnd, rows = self.round, self.rows
        text = Text(no_wrap=True, overflow="ellipsis")
        if rnd is None:
            self.query_one("#var-info", Static).update(text)
            return
        stars = [f"#{r['index']:g}" for r in rows if r["starred"]]
        counts: dict[str, int] = {}
        for r in rows:
            counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
        text.append(" · ".join(f"{n} {s}" for s, n in counts.items()), style="dim")
        if stars:
            text.append(f"  ★ {' '.join(stars)}", style="yellow")
        if rnd.get("note"):
            text.append(f"  note: {rnd['note']}", style="dim")
        picked = rnd.get("picked")
        if picked:
            text.append(f"  ✔ #{picked['index']:g} became v{picked['version']:g}", style="green")
        if len(rows) > self._columns():
            text.append(f"  [{self.focus_index + 1}/{len(rows)}] ←/→", style="dim")
        if self.composing:
            text.append("  COMPOSE: space selects, a adds, c composes, esc leaves", style="bold cyan")
        self.query_one("#var-info", Static).update(text)

    # ------------------------------------------------------------------ the focused variation

    @property
    def focused_row(self) -> dict[str, Any] | None:
        return self.rows[self.focus_index] if 0 <= self.focus_index < len(self.rows) else None

    def _column(self, index: int) -> VariationColumn | None:
        columns = list(self.query(VariationColumn))
        return columns[index] if 0 <= index < len(columns) else None

    def _need(self) -> dict[str, Any] | None:
        row = self.focused_row
        if row is None:
            self.notify("No variation here yet: n starts a round.", severity="warning")
        return row

    @on(StreamText.Moved)
    def _moved(self, event: StreamText.Moved) -> None:
        """Columns scrolled together follow the focused one."""
        columns = list(self.query(VariationColumn))
        for i, col in enumerate(columns):
            if col.text is event.widget:
                self.focus_index = i
            elif self.sync and col.display:
                col.text.scroll_rows_to(event.widget.scroll_offset.y)

    def on_descendant_focus(self, event: Any) -> None:
        for i, col in enumerate(self.query(VariationColumn)):
            if col.has_focus_within:
                self.focus_index = i
        self._draw_info()

    def action_move(self, delta: int) -> None:
        if not self.rows:
            return
        self.focus_index = max(0, min(len(self.rows) - 1, self.focus_index + delta))
        self._layout()
        col = self._column(self.focus_index)
        if col is not None:
            self.set_focus(col.text)

    def action_columns(self, delta: int) -> None:
        self.wanted_columns = max(1, min(MAX_COLUMNS, self._columns() + delta))
        self._layout()

    def action_sync_scroll(self) -> None:
        self.sync = not self.sync
        self.notify("Columns scroll together." if self.sync else "Columns scroll apart.", timeout=3)

    def action_round(self, delta: int) -> None:
        ids = [str(r["_id"]) for r in reversed(self.rounds)]  # oldest first
        if self.round_id not in ids:
            return
        i = ids.index(self.round_id) + delta
        if 0 <= i < len(ids):
            self._show_round(ids[i])

    @work(group="rounds")
    async def action_rounds(self) -> None:
        if not self.rounds:
            return
        chosen = await self.app.push_screen_wait(RoundsDialog(self.rounds, self.round_id))
        if chosen:
            self._show_round(chosen)

    # ------------------------------------------------------------------ actions

    @work(group="star")
    async def action_star(self) -> None:
        row = self._need()
        if row is None:
            return
        try:
            await self.view.star(str(row["variationId"]), not row["starred"])
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")

    @work(exclusive=True, group="pick")
    async def action_pick(self) -> None:
        row = self._need()
        if row is None:
            return
        if row["status"] != "done":
            self.notify(f"#{row['index']:g} is {row['status']}: pick a finished variation.", severity="warning")
            return
        art = self.artifact
        moved = f" (it was made from v{row['baseVersion']:g}; the artifact is at v{art.get('version')})" \
            if row.get("baseVersion") != art.get("version") else ""
        if not await self.app.push_screen_wait(Confirm(f"Make #{row['index']:g} the next version of "
                                                       f"{art.get('title')}?{moved}")):
            return
        try:
            got = await self.view.pick(self.artifact_id, str(row["variationId"]))
        except ConvexError as exc:
            self.notify(f"Cannot pick: {error_text(exc)}", severity="error")
            return
        if isinstance(got, LockConflict):
            if await self.app.push_screen_wait(LockConflictDialog(str(art.get("title")), got, self.session.clock())):
                queued = await self.view.queue_for_pick(self.artifact_id)
                if isinstance(queued, Queued):
                    self.notify(f"#{queued.position} in the queue: press p again when the lock is yours.", timeout=8)
                else:
                    self.notify("The lock is free now: press p again.")
            return
        if isinstance(got, Queued):
            return
        self.notify(f"#{row['index']:g} is v{got['version']:g} of {art.get('title')}.")

    @work(exclusive=True, group="more")
    async def action_more(self) -> None:
        if self.round is None:
            return
        stars = " ".join(f"★#{r['index']:g}" for r in self.rows if r["starred"]) or "no stars yet"
        note = await self.app.push_screen_wait(Prompt(f"{self.round['n']:g} more in the direction of {stars}. "
                                                      "Note (what to change):", placeholder="e.g. shorter, "
                                                      "keep the list", allow_empty=True))
        if note is None:
            return
        try:
            got = await self.view.more(str(self.round["_id"]), note)
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")
            return
        self._show_round(str(got["roundId"]))

    @work(exclusive=True, group="new")
    async def action_new_round(self) -> None:
        flow = (self.round or {}).get("flow")
        instruction = await self.app.push_screen_wait(Prompt(
            f"New round of variations of #{self.artifact.get('slug')}: what should they do? "
            "(start with a number for N, e.g. 3 shorter)", placeholder="e.g. make it shorter"))
        if not instruction:
            return
        head, _, rest = instruction.partition(" ")
        n = int(head) if head.isdigit() and rest.strip() else None
        try:
            plan = self.view.plan(flow, n)
            got = await self.view.start(self.artifact_id, rest.strip() if n is not None else instruction, plan)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        except ConvexError as exc:
            self.notify(f"Rejected: {error_text(exc)}", severity="error")
            return
        self._show_round(str(got["roundId"]))

    @work(exclusive=True, group="diff")
    async def action_diff(self) -> None:
        row = self._need()
        if row is None:
            return
        others = " ".join(f"#{r['index']:g}" for r in self.rows if r is not row)
        answer = await self.app.push_screen_wait(Prompt(
            f"Diff #{row['index']:g} against: a variation ({others}) or v (the current version)", "v"))
        if not answer:
            return
        answer = answer.strip().lstrip("#").lower()
        if answer == "v":
            a, label_a = str(self.artifact.get("content") or ""), f"v{self.artifact.get('version')}"
        else:
            other = next((r for r in self.rows if answer.isdigit() and r["index"] == int(answer)), None)
            if other is None:
                self.notify(f"No variation #{answer} in this round.", severity="warning")
                return
            a, label_a = str(other["content"]), f"#{other['index']:g}"
        label_b = f"#{row['index']:g}"
        self.app.push_screen(DiffScreen(f"{label_a} -> {label_b} of #{self.artifact.get('slug')}", a,
                                        str(row["content"]), label_a, label_b))

    @work(group="cancel")
    async def action_cancel_all(self) -> None:
        if self.round is not None:
            await self._cancel(None)

    @work(group="cancel")
    async def action_cancel_one(self) -> None:
        row = self._need()
        if row is not None and self.round is not None:
            await self._cancel(str(row["variationId"]))

    async def _cancel(self, variation_id: str | None) -> None:
        assert self.round is not None
        try:
            count = await self.view.cancel(str(self.round["_id"]), variation_id)
        except ConvexError as exc:
            self.notify(f"Cannot stop: {error_text(exc)}", severity="error")
            return
        self.notify(f"Stopped {count} variation{'s' if count != 1 else ''}." if count else "Nothing is running.")

    # ------------------------------------------------------------------ compose

    def _leave_compose(self) -> None:
        self.composing = False
        self.set_class(False, "-composing")
        for col in self.query(VariationColumn):
            col.text.show_cursor_line = False
            col.text.clear_selection()
        self._draw_info()

    @work(exclusive=True, group="compose")
    async def action_compose(self) -> None:
        if self.round is None:
            return
        tray = self.query_one(ComposeTray)
        if not self.composing:
            self.composing = True
            self.set_class(True, "-composing")
            for col in self.query(VariationColumn):
                col.text.show_cursor_line = True
                col.text.refresh()
            self._draw_info()
            return
        if not tray.parts:
            self.notify("Add parts first: select lines with space, then a.", severity="warning")
            return
        instruction = await self.app.push_screen_wait(Prompt(
            "Instruction for the agent (empty: join the parts as they are):", placeholder="e.g. take #4 but "
            "use the helper from #2", allow_empty=True))
        if instruction is None:
            return
        try:
            got = await self.view.compose(str(self.round["_id"]), list(tray.parts), instruction or None)
        except ConvexError as exc:
            self.notify(f"Cannot compose: {error_text(exc)}", severity="error")
            return
        tray.clear_parts()
        self._leave_compose()
        how = "joined" if got["composed"] == "concatenated" else "being merged by an agent"
        self.notify(f"A new variation is {how}.")

    def action_select(self) -> None:
        col = self._column(self.focus_index)
        if self.composing and col is not None:
            col.text.toggle_selection()

    def action_add_part(self) -> None:
        col = self._column(self.focus_index)
        row = self.focused_row
        if not self.composing or col is None or row is None:
            return
        if row["status"] != "done":
            self.notify(f"#{row['index']:g} is {row['status']}: compose finished variations.", severity="warning")
            return
        start, end = col.text.selection or (col.text.cursor_line, col.text.cursor_line + 1)
        lines = str(row["content"]).split("\n")
        part = Part(str(row["variationId"]), int(row["index"]), start, min(end, len(lines)))
        self.query_one(ComposeTray).add(part, "\n".join(lines[part.start:part.end]))
        col.text.clear_selection()

    def action_back(self) -> None:
        if self.composing:
            self._leave_compose()
            return
        self.dismiss(None)
