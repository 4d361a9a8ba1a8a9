"""Errors are data: every failure a client should act on is a ``ConvexError`` whose data has a
``code`` and a human ``message`` plus the facts needed to show it (who holds the lock, ...)."""

from __future__ import annotations

from typing import Any, NoReturn

from collab.backend.errors import ConvexError


def fail(code: str, message: str, **data: Any) -> NoReturn:
    raise ConvexError({"code": code, "message": message, **data})


def not_found(what: str, ident: str) -> NoReturn:
    fail("NOT_FOUND", f"{what} {ident} does not exist", what=what, id=ident)


def invalid(message: str, **data: Any) -> NoReturn:
    fail("INVALID_ARGUMENT", message, **data)
