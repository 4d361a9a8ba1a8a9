"""What the discussion log holds of a long discussion: a window of at most ~1,000 consecutive
messages around the reader, paged in and out through the discussion facade (``messages:page``),
joined to the live tail (``messages:list``) when the reader is at the newest messages.

The window is a run of *segments*, oldest first, each remembering how to fetch it again:

- above the window: ``older(before=the oldest one's _creationTime)``, always (pages are keyed
  by creation time, so that page is the same whenever it is asked for);
- below it (``below``, a stack, next page last): the pages dropped from the bottom, each with
  the query that gave it; ``from_start`` pages continue their walk by cursor (the *frontier*);
  :data:`LIVE` at the bottom of the stack stands for the live tail. An empty stack means the
  window *is* joined to the live tail and new messages come in at its end.

Messages that leave the live tail while the window holds them (new ones pushed them out) stay:
the window only grows at its ends, so what the reader looks at never moves. Every change
returns an :class:`Edit` saying what changed at each end, so the log re-wraps only the
messages that came in. No Textual here: the log draws; this decides what it holds.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Protocol

from collab.backend_client.space.discussion import PAGE, MessagePage

__all__ = ["LIVE", "MAX_WINDOW", "Edit", "MessageWindow", "PageRef", "Pages"]

MAX_WINDOW = 1000  # messages held at most (the reader's page and the margins stay)
MARGIN = 200  # messages kept on the reader's side of a trim
WALK_KEEP = 3  # pages kept when walking down to the live tail over a long gap

Msg = dict[str, Any]


class Pages(Protocol):
    """Where the pages come from: the discussion facade (``DiscussionView``)."""

    async def older(self, before: float, n: int = PAGE) -> MessagePage: ...

    async def from_start(self, cursor: str | None = None, n: int = PAGE) -> MessagePage: ...


@dataclass(frozen=True)
class PageRef:
    """How to fetch a page again: ``older(before)``, ``from_start(cursor)``, or the live tail."""

    kind: str  # "older", "start" or "live"
    before: float = 0.0
    cursor: str | None = None
    frontier: bool = False  # the next page of a from_start walk: fetching it moves the walk on

    async def fetch(self, pages: Pages) -> MessagePage:
        if self.kind == "older":
            return await pages.older(self.before, PAGE)
        return await pages.from_start(self.cursor, PAGE)


LIVE = PageRef("live")


@dataclass
class Edit:
    """What one change did: messages removed then added at the top and at the bottom (in that
    order), indexes (in the new list) of messages replaced in place, or everything anew."""

    top_removed: int = 0
    top_added: int = 0
    bottom_removed: int = 0
    bottom_added: int = 0
    changed: list[int] = field(default_factory=list)
    reset: bool = False

    def __bool__(self) -> bool:
        return bool(self.reset or self.changed or self.top_removed or self.top_added
                    or self.bottom_removed or self.bottom_added)


def _ct(msg: Msg) -> float:
    return float(msg.get("_creationTime", 0.0))


class MessageWindow:
    def __init__(self, live_limit: int = PAGE, max_size: int = MAX_WINDOW) -> None:
        self.live_limit = live_limit
        self.max_size = max_size
        self.messages: list[Msg] = []
        self.times: list[float] = []
        self.segments: list[list[Any]] = []  # [PageRef, count], oldest first
        self.below: list[PageRef] = []  # what is newer than the window; the next page last
        self.top_done = True  # the first message of the discussion is the window's first
        self.tail: list[Msg] = []  # the live tail's latest value (``messages:list``)
        self.paged = False  # anything was ever paged in (the log then marks the top)

    # ------------------------------------------------------------------ state

    @property
    def joined(self) -> bool:
        """The window reaches the live tail: new messages arrive at its end."""
        return not self.below

    def older_ref(self) -> PageRef | None:
        """The page above the window, or None at the start of the discussion."""
        if self.top_done or not self.times:
            return None
        return PageRef("older", before=self.times[0])

    def below_ref(self) -> PageRef | None:
        return self.below[-1] if self.below else None

    def _set(self, messages: list[Msg], ref: PageRef) -> None:
        self.messages = list(messages)
        self.times = [_ct(m) for m in self.messages]
        self.segments = [[ref, len(self.messages)]] if self.messages else []

    # ------------------------------------------------------------------ the live tail

    def set_tail(self, rows: list[Msg], following: bool, reader: int) -> Edit:
        """A new value of the live tail: merged in place, new messages appended when joined."""
        self.tail = list(rows)
        if not self.messages:
            return self.reset_tail() if rows else Edit()
        edit = Edit()
        for m in rows:  # messages the window holds: updated in place (a decision, a reply's end)
            i = self._index(m)
            if i is not None and self.messages[i] != m:
                self.messages[i] = m
                edit.changed.append(i)
        newer = [m for m in rows if _ct(m) > self.times[-1]]
        if not self.joined or not newer:
            return edit
        if following and self.needs_walk():  # more came at once than the tail holds
            return self.reset_tail()
        if len(self.messages) + len(newer) > self.max_size and reader < len(self.messages) // 2:
            self._trim_bottom(edit, reader, len(newer))  # the reader is far up: let the tail go
        if self.needs_walk():
            self.below = [LIVE]  # a gap, perhaps: walk down to the tail when the reader comes
        if not self.joined:
            return edit
        self._append(newer, LIVE)
        edit.bottom_added = len(newer)
        return self._trim_top(edit, reader)

    def replace(self, msg: Msg) -> Edit:
        """A message the window holds, changed (a page's copy is not live: a mark made here)."""
        i = self._index(msg)
        if i is None or self.messages[i] == msg:
            return Edit()
        self.messages[i] = msg
        return Edit(changed=[i])

    def reset_tail(self) -> Edit:
        """The window becomes the live tail (``End``)."""
        rows = self.tail
        self._set(rows, LIVE)
        self.below = []
        self.top_done = len(rows) < self.live_limit
        self.paged = self.paged or not self.top_done
        return Edit(reset=True)

    def _index(self, msg: Msg) -> int | None:
        i = bisect_left(self.times, _ct(msg))
        while i < len(self.times) and self.times[i] == _ct(msg):
            if self.messages[i].get("_id") == msg.get("_id"):
                return i
            i += 1
        return None

    def needs_walk(self) -> bool:
        """Pages may lie between the window's end and the live tail's first message."""
        tail = self.tail
        return bool(tail and self.times and len(tail) >= self.live_limit and _ct(tail[0]) > self.times[-1])

    # ------------------------------------------------------------------ pages in

    def reset_start(self, page: MessagePage) -> Edit:
        """``Home``: the window becomes the first page of the discussion."""
        self._set(page.messages, PageRef("start"))
        self.top_done = self.paged = True
        self.below = [LIVE] if page.done else [LIVE, PageRef("start", cursor=page.cursor, frontier=True)]
        return Edit(reset=True)

    def add_older(self, ref: PageRef, page: MessagePage, reader: int) -> Edit | None:
        """The page above came (None: the window moved meanwhile; ask again)."""
        if ref != self.older_ref():
            return None
        self.paged = True
        rows = [m for m in page.messages if _ct(m) < self.times[0]]
        self.top_done = page.done or not rows
        edit = Edit(top_added=len(rows))
        if rows:
            self.messages[:0] = rows
            self.times[:0] = [_ct(m) for m in rows]
            self.segments.insert(0, [ref, len(rows)])
        return self._trim_bottom(edit, reader + len(rows))

    def add_below(self, ref: PageRef, page: MessagePage, reader: int) -> Edit | None:
        """The page below came (None: the window moved meanwhile; ask again)."""
        if self.below_ref() != ref or ref == LIVE:
            return None
        self.below.pop()
        if ref.frontier and not page.done:
            self.below.append(PageRef("start", cursor=page.cursor, frontier=True))
        rows = [m for m in page.messages if not self.times or _ct(m) > self.times[-1]]
        self._append(rows, PageRef(ref.kind, ref.before, ref.cursor))
        return self._trim_top(Edit(bottom_added=len(rows)), reader)

    async def walk(self, pages: Pages) -> list[tuple[PageRef, MessagePage]]:
        """The pages between the window's end and the live tail, newest first (only the oldest
        few keep their messages: the others are fetched again when the reader gets there)."""
        walked: list[tuple[PageRef, MessagePage]] = []
        if not self.needs_walk():
            return walked
        last, before = self.times[-1], _ct(self.tail[0])
        while True:
            ref = PageRef("older", before=before)
            page = await ref.fetch(pages)
            walked.append((ref, page))
            if len(walked) > WALK_KEEP:
                old_ref, _ = walked[-WALK_KEEP - 1]
                walked[-WALK_KEEP - 1] = (old_ref, MessagePage([], "", False))
            if page.done or not page.messages or _ct(page.messages[0]) <= last:
                return walked
            before = _ct(page.messages[0])

    def join(self, walked: list[tuple[PageRef, MessagePage]], tail: list[Msg], reader: int) -> Edit | None:
        """Reach the live tail from the window's end: ``walked`` (from :meth:`walk`) are the
        pages above ``tail``, newest first. Past a long gap only the oldest few come in; the
        others wait in ``below``, the tail last. None: the window moved meanwhile."""
        if self.below != [LIVE]:
            return None
        last = self.times[-1] if self.times else float("-inf")
        keep, later = walked[-WALK_KEEP:], walked[:-WALK_KEEP]
        edit = Edit()
        for ref, page in reversed(keep):
            rows = [m for m in page.messages if _ct(m) > last]
            if rows:
                self._append(rows, ref)
                last = self.times[-1]
                edit.bottom_added += len(rows)
        if later:  # the rest of the way: fetched as the reader goes down
            self.below = [LIVE] + [ref for ref, _ in later]
        else:
            rows = [m for m in tail if _ct(m) > last]
            self._append(rows, LIVE)
            edit.bottom_added += len(rows)
            self.below = []
        return self._trim_top(edit, reader)

    def _append(self, rows: list[Msg], ref: PageRef) -> None:
        if not rows:
            return
        self.messages += rows
        self.times += [_ct(m) for m in rows]
        if self.segments and self.segments[-1][0] == ref == LIVE:
            self.segments[-1][1] += len(rows)
        else:
            self.segments.append([ref, len(rows)])

    # ------------------------------------------------------------------ bounded

    def _trim_top(self, edit: Edit, reader: int) -> Edit:
        """Past ``max_size``, drop messages above the ``reader`` (an index in the window, kept
        with a margin): ``older`` fetches them again."""
        n = max(0, min(len(self.messages) - self.max_size, reader - MARGIN))
        if n:
            del self.messages[:n], self.times[:n]
            left = n
            while left:
                take = min(left, self.segments[0][1])
                self.segments[0][1] -= take
                left -= take
                if not self.segments[0][1]:
                    self.segments.pop(0)
            self.top_done, self.paged = False, True
            edit.top_removed = n
            edit.changed = [i - n for i in edit.changed if i >= n]
        return edit

    def _trim_bottom(self, edit: Edit, reader: int, coming: int = 0) -> Edit:
        """Past ``max_size`` (counting ``coming`` messages), drop whole segments below the
        ``reader``; their refs go to ``below`` (the live tail's as :data:`LIVE`)."""
        while len(self.messages) + coming > self.max_size and len(self.segments) > 1:
            ref, count = self.segments[-1]
            if len(self.messages) - count <= reader + MARGIN:
                break
            self.segments.pop()
            del self.messages[-count:], self.times[-count:]
            edit.bottom_removed += count
            edit.changed = [i for i in edit.changed if i < len(self.messages)]
            if ref != LIVE:
                self.below.append(ref)
            elif not self.below or self.below[-1] != LIVE:
                self.below.append(LIVE)
        return edit
