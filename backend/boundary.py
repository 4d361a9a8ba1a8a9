"""Checks every function call's arguments get at the server's edge, WebSocket and HTTP alike.

Text that is not valid Unicode (a lone surrogate) and plain numbers that are not finite (``NaN``,
``Infinity``, ``1e999``) parse in Python but not in a strict JSON parser, so a value holding one
could be stored and then poison every reply that carries it (issue 14). Such arguments never
reach a function: the call fails as if the function had raised
``ConvexError({"code": "INVALID_ARGUMENT", "message": ..., "field": "chunks[0].text"})``, the
same errors-as-data shape as the model's own ``INVALID_ARGUMENT`` (backend/model/_errors.py),
so clients handle both alike (docs/API.md, "Errors are data").
"""

from __future__ import annotations

from typing import Any

from collab.backend.engine import Outcome
from collab.wire import dumps
from collab.wire.validity import clean_text, find_invalid

__all__ = ["invalid_argument", "safe_message"]


def invalid_argument(raw_args: Any) -> Outcome | None:
    """The failed Outcome for arguments (as parsed from JSON) that break the wire rules, or
    None when they are fine."""
    problem = find_invalid(raw_args)
    if problem is None:
        return None
    data = {
        "code": "INVALID_ARGUMENT",
        "message": f"argument `{problem.field}` {problem.what}",
        "field": problem.field,
    }
    data_json = dumps(data)
    # The same message shape as a ConvexError thrown by the function (engine._error_outcome).
    return Outcome(False, error_message=f"Uncaught ConvexError: {data_json}", error_data_json=data_json)


def safe_message(text: str) -> str:
    """An error message as it may go out: messages can echo what a client sent (an unknown
    function path, a token), so lone surrogates become U+FFFD rather than a frame no strict
    parser reads."""
    return clean_text(text)
