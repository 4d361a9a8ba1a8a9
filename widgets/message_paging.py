"""The discussion log's paging: asks the facade for the page the reader is coming near (above
the oldest message held, below the newest when the log is not at the live tail), hands it to
the log's window, and says on the log's edge lines what lies beyond (loading, the start of
the discussion, a failure). ``Home`` loads the first page of the discussion; ``End`` goes
back to the live tail.

At most one page per end is asked at a time. A ``Home`` or ``End`` starts a new *epoch*: a
page asked before it is dropped when it comes. After a failure nothing is asked again until
the reader moves (no loop of failing requests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collab.backend_client.space import error_text
from collab.widgets.message_window import LIVE, Edit, Pages

if TYPE_CHECKING:
    from collab.widgets.message_log import MessageLog

__all__ = ["PREFETCH", "LogPager"]

PREFETCH = 50  # messages between the reader and an end of the window when the next page is asked


class LogPager:
    def __init__(self, log: MessageLog, pages: Pages | None) -> None:
        self.log = log
        self.pages = pages
        self.loading: set[str] = set()  # "top", "bottom", "home"
        self.epoch = 0
        self.error: str | None = None

    def edge_line(self, top: bool) -> str:
        """The line above the first message held (``top``) or below the last one."""
        if self.error:
            return f"⚠ {self.error} (move to try again)"
        if not top:
            return "↓ loading newer messages… (End: the newest)"
        if "home" in self.loading:
            return "… loading the start of the discussion"
        return "── start of the discussion ──" if self.log.window.top_done else "↑ loading older messages…"

    def check(self, retry: bool = True) -> None:
        """Ask for the next page if the reader is near an end of the window. ``retry``: the
        reader moved (after a failure, only that asks again)."""
        log, window = self.log, self.log.window
        if self.pages is None or not window.messages or "home" in self.loading or (self.error and not retry):
            return
        view = log.scrollable_content_region.height
        if view <= 0 or not log._offsets:  # not laid out yet
            return
        first, last = log._visible()
        h = log.highlighted if log.highlighted is not None else last
        y = log.scroll_offset.y
        if (window.older_ref() is not None and "top" not in self.loading
                and (min(first, h) < PREFETCH or y < 2 * view)):
            self._start("top")
        if (not window.joined and "bottom" not in self.loading
                and (max(last, h) >= len(window.messages) - PREFETCH or y + 3 * view > log.virtual_size.height)):
            self._start("bottom")

    def _start(self, end: str) -> None:
        self.error = None
        self.loading.add(end)
        self.log.run_worker(self._load(end, self.epoch), group="log-pages")

    async def _load(self, end: str, epoch: int) -> None:
        log, window, pages = self.log, self.log.window, self.pages
        assert pages is not None
        edit: Edit | None = None
        try:
            if end == "top":
                ref = window.older_ref()
                if ref is not None:
                    page = await ref.fetch(pages)
                    edit = window.add_older(ref, page, log._reader()) if epoch == self.epoch else None
            elif (ref := window.below_ref()) == LIVE:
                tail = window.tail
                walked = await window.walk(pages)
                edit = window.join(walked, tail, log._reader()) if epoch == self.epoch else None
            elif ref is not None:
                page = await ref.fetch(pages)
                edit = window.add_below(ref, page, log._reader()) if epoch == self.epoch else None
        except Exception as exc:
            if epoch == self.epoch:
                self.error = f"could not load messages: {error_text(exc)}"
                log.refresh()
            return
        finally:
            if epoch == self.epoch:
                self.loading.discard(end)
        if epoch == self.epoch:
            log._apply(edit, log._following)
            log.refresh()  # the edge line says what lies beyond now
            self.check(retry=False)  # still near that end: the next page

    def home(self) -> None:
        """Load the first page of the discussion, unless the window starts there."""
        if self.pages is not None and not self.log.window.top_done:
            self.epoch += 1
            self.loading, self.error = {"home"}, None
            self.log.run_worker(self._load_home(self.epoch), group="log-pages")

    async def _load_home(self, epoch: int) -> None:
        log, pages = self.log, self.pages
        assert pages is not None
        try:
            page = await pages.from_start(None)
        except Exception as exc:
            if epoch == self.epoch:
                self.loading.discard("home")
                self.error = f"could not load the start: {error_text(exc)}"
                log.refresh()
            return
        if epoch != self.epoch:
            return
        self.loading.discard("home")
        log.window.reset_start(page)
        log.highlighted = 0
        log._relayout(False)
        log._scroll(0)
        self.check(retry=False)

    def end(self) -> None:
        """Back to the live tail (nothing to load: the log keeps its latest value)."""
        log = self.log
        if not log.window.joined:
            self.epoch += 1
            self.loading.clear()
            self.error = None
            log.window.reset_tail()
            log._relayout(True)
