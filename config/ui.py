"""``[ui]``: how the app behaves in your terminal."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator

from .base import Section

TEXTAREA = "textarea"
ENV_EDITOR = "$EDITOR"


class UIConfig(Section):
    editor: str = Field(
        default=TEXTAREA,
        description=(
            '"textarea" (built in), "$EDITOR" (your $VISUAL / $EDITOR, run while the app is '
            'suspended), or a command such as "nvim" or "code --wait".'
        ),
    )
    clipboard: Literal["osc52", "off"] = Field(
        default="osc52",
        description='"osc52" copies through the terminal (works over SSH and in tmux); "off" copies '
                    'nothing, for terminals that print the escape sequence instead.',
    )
    mouse: bool = Field(default=True, description="Accept mouse input (keyboard always works).")
    allow_multiplexer_keys: bool = Field(
        default=False,
        description="Allow binding ctrl+a / ctrl+b (only if you use neither tmux nor screen).",
    )

    @field_validator("editor")
    @classmethod
    def _editor(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError('must be "textarea", "$EDITOR" or a command')
        try:
            shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"is not a valid command line: {exc}") from None
        return value

    def editor_command(self, env: Mapping[str, str] | None = None) -> list[str] | None:
        """The external editor command line, or None for the built-in text area (also when
        ``$EDITOR`` is asked for but neither ``VISUAL`` nor ``EDITOR`` is set)."""
        if self.editor == TEXTAREA:
            return None
        if self.editor == ENV_EDITOR:
            e = os.environ if env is None else env
            cmd = e.get("VISUAL") or e.get("EDITOR")
            return shlex.split(cmd) if cmd else None
        return shlex.split(self.editor)
