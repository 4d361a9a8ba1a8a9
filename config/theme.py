"""``[theme]``: dark, light, or a named Textual theme. ``app.toggle_theme`` switches between
the ``dark`` and ``light`` themes named here. ``NO_COLOR`` is honoured by the app whatever the
theme."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from .base import Section

THEME_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _name(value: str) -> str:
    if not THEME_NAME.match(value):
        raise ValueError(f"must be a theme name like 'dark', 'light' or 'nord' (got {value!r})")
    return value


class ThemeConfig(Section):
    name: str = Field(
        default="dark",
        description='"dark", "light", or the name of any Textual theme (nord, gruvbox...).',
    )
    dark: str = Field(default="textual-dark", description='The theme "dark" stands for.')
    light: str = Field(default="textual-light", description='The theme "light" stands for.')

    @field_validator("name", "dark", "light")
    @classmethod
    def _theme_name(cls, value: str) -> str:
        return _name(value)

    @property
    def resolved(self) -> str:
        """The Textual theme to apply."""
        if self.name == "dark":
            return self.dark
        if self.name == "light":
            return self.light
        return self.name
