"""``[identity]``: who you are in every space (your ``@handle`` and the name others see)."""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping

from pydantic import Field, field_validator

from .base import Section

HANDLE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Words with a meaning in @mentions or pipeline stages, so they can be no one's handle.
RESERVED_HANDLES = frozenset({"all", "everyone", "here", "human", "humans", "me", "auto"})


def check_handle(value: str) -> str:
    """A handle is what follows ``@`` in a message: lowercase, short, unambiguous."""
    if not HANDLE_PATTERN.match(value):
        raise ValueError(
            "must be 1-32 characters: a lowercase letter, then lowercase letters, digits, "
            f"'-' or '_' (got {value!r})"
        )
    if value in RESERVED_HANDLES:
        raise ValueError(f"{value!r} is reserved (@{value} has a meaning of its own)")
    return value


def handle_from_login(login: str) -> str:
    """A valid handle derived from a login name (``Jane.Doe`` -> ``jane-doe``)."""
    h = re.sub(r"[^a-z0-9_-]+", "-", login.lower()).strip("-_")
    if not h or not h[0].isalpha():
        h = "u" + h
    h = h[:32]
    return h if h not in RESERVED_HANDLES else h + "1"


def login_name(env: Mapping[str, str]) -> str:
    """The user's login name: ``$USER``, ``$LOGNAME``, else the password database."""
    found = env.get("USER") or env.get("LOGNAME")
    if found:
        return found
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers): any stable name will do
        return "me"


class IdentityConfig(Section):
    handle: str | None = Field(
        default=None,
        description="Your @handle. Unset: derived from your login name.",
    )
    display_name: str | None = Field(
        default=None,
        max_length=64,
        description="The name others see. Unset: your handle.",
    )

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str | None) -> str | None:
        return None if value is None else check_handle(value)

    @property
    def name(self) -> str:
        """The name to show: the display name, else the handle."""
        return self.display_name or self.handle or ""
