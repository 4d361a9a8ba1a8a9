"""``[backend]``: which backend to talk to, and where the embedded one keeps its data."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field, field_validator

from .base import Section

EMBEDDED = "embedded"


class BackendConfig(Section):
    url: str | None = Field(
        default=None,
        description=(
            "URL of a Convex deployment (https://<name>.convex.cloud, or a self-hosted one). "
            'Unset or "embedded": the embedded backend, started in the background.'
        ),
    )
    data_dir: Path | None = Field(
        default=None,
        description=(
            "Where the embedded backend keeps its database. Unset: $XDG_DATA_HOME/collab. "
            "A relative path is relative to the config file."
        ),
    )
    space: str = Field(
        default="main",
        min_length=1,
        max_length=64,
        description="The space opened when none is given (--space).",
    )
    token_env: str = Field(
        default="COLLAB_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the auth token for a Convex deployment.",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", EMBEDDED)):
            return None
        if not isinstance(value, str):
            return value  # pydantic reports the type
        parsed = urlparse(value.strip())
        if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
            raise ValueError(
                f'must be an http(s) or ws(s) URL like "https://happy-otter-123.convex.cloud", '
                f'or "embedded" (got {value!r})'
            )
        return value.strip().rstrip("/")

    @property
    def embedded(self) -> bool:
        """True when collab runs (or joins) its own embedded backend."""
        return self.url is None
