"""The composer: one line, enter sends. Completion of ``@handles`` (members, ``@all``) and
``#artifact`` slugs as inline suggestions, accepted with tab or right arrow."""

from __future__ import annotations

import re
from typing import Any

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

_LAST_WORD = re.compile(r"(?:^|(?<=\s))([@#])([A-Za-z0-9_.-]*)$")


class RefSuggester(Suggester):
    """Suggests the rest of the ``@handle`` or ``#slug`` being typed at the end of the line."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.handles: list[str] = []
        self.slugs: list[str] = []

    async def get_suggestion(self, value: str) -> str | None:
        return complete(value, self.handles, self.slugs)


def complete(value: str, handles: list[str], slugs: list[str]) -> str | None:
    m = _LAST_WORD.search(value)
    if not m:
        return None
    sigil, prefix = m.group(1), m.group(2).lower()
    pool = ["all", *handles] if sigil == "@" else slugs
    for cand in sorted(pool, key=lambda s: (len(s), s)):
        if cand.lower().startswith(prefix) and cand.lower() != prefix:
            return value[: m.start(2)] + cand + " "
    return None


class Composer(Input):
    BINDINGS = [Binding("tab", "accept_suggestion", "Complete", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        self.ref_suggester = RefSuggester()
        super().__init__(placeholder="Message… (@agent asks, #artifact refers)", suggester=self.ref_suggester,
                         **kwargs)

    def set_completions(self, handles: list[str], slugs: list[str]) -> None:
        self.ref_suggester.handles = handles
        self.ref_suggester.slugs = slugs

    def action_accept_suggestion(self) -> None:
        if self._suggestion and self._suggestion != self.value:
            self.value = self._suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()
