"""Errors a function can raise, with Convex semantics."""

from __future__ import annotations

from typing import Any


class ConvexError(Exception):
    """A user error carrying data: the data reaches the client as ``errorData``.

    ``raise ConvexError({"code": "LOCKED", "holder": ...})`` in Python reads like
    ``throw new ConvexError({...})`` in TypeScript.
    """

    def __init__(self, data: Any) -> None:
        self.data = data
        super().__init__(data if isinstance(data, str) else "ConvexError")


class FunctionNotFound(Exception):
    pass


class ArgumentError(Exception):
    """Arguments failed validation (reported to the caller like any function error)."""
