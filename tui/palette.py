"""The command palette provider: the active screen's context-aware commands (what is selected
decides what is offered) plus the app's own."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScreenCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        screen = self.screen
        # The palette is itself a screen: ask the one below it.
        stack = self.app.screen_stack
        target = stack[-2] if len(stack) > 1 and stack[-1] is screen else screen
        found: Callable[[], list[tuple[str, str, Callable[[], Any]]]] | None = getattr(
            target, "palette_commands", None)
        cmds = list(found()) if found else []
        app_cmds: Callable[[], list[tuple[str, str, Callable[[], Any]]]] | None = getattr(
            self.app, "palette_commands", None)
        return cmds + (app_cmds() if app_cmds else [])

    async def discover(self) -> Hits:
        for name, help_text, cb in self._commands():
            yield DiscoveryHit(name, partial(cb), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, cb in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(cb), help=help_text)
