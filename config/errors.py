"""The one error type of the config layer: every problem names where it comes from.

A problem in a file reads ``~/.config/collab/config.toml:14: agents[2].temperature: must be <= 2
(got 3.5)``; a problem in an environment variable reads ``environment variable COLLAB_THEME:
theme.name: ...``. Several problems are reported together, one per line, so a user fixes them
all in one go instead of one per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Key = tuple[str | int, ...]


def format_key(key: Key) -> str:
    """``("agents", 2, "temperature")`` -> ``agents[2].temperature``."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def display_path(path: Path) -> str:
    """A path as a user would type it: under the home directory it starts with ``~``."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where (source, file, line, column), which field, and what is wrong."""

    source: str
    message: str
    path: Path | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [where]
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(Exception):
    """A config that cannot be used. ``.path``, ``.line``, ``.field``, ``.message`` describe the
    first problem; ``.issues`` holds all of them (sorted by source and line)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        if not issues:
            raise ValueError("ConfigError needs at least one issue")
        self.issues: list[ConfigIssue] = issues
        super().__init__("\n".join(str(i) for i in issues))

    @property
    def first(self) -> ConfigIssue:
        return self.issues[0]

    @property
    def path(self) -> Path | None:
        return self.first.path

    @property
    def line(self) -> int | None:
        return self.first.line

    @property
    def column(self) -> int | None:
        return self.first.column

    @property
    def field(self) -> str | None:
        return self.first.field

    @property
    def message(self) -> str:
        return self.first.message

    @property
    def source(self) -> str:
        return self.first.source
