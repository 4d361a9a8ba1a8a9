"""Reading server frames, including the ones that cannot be read in full.

The fast path is one strict parse (pydantic's jiter, which refuses lone surrogates as the
official clients' parsers do). A frame that fails it used to end the socket; the server then
sent the same frame on the next socket, and the client looped, with every other subscription
and write stalled (issue 14). Now, when the frame is still JSON to a lenient reader (Python's
``json`` reads ``"\\ud800"``), only the part that cannot be read fails:

- a Transition's unreadable modification becomes a ``QueryFailed`` for its query (the
  LiveQuery shows a :data:`DECODE_ERROR`); the rest of the Transition applies as usual;
- an unreadable MutationResponse / ActionResponse fails its request with that error;
- AuthError / FatalError texts are cleaned (lone surrogates become U+FFFD).

Only a frame that is not JSON at all, or whose envelope (versions, ids) cannot be read, is
still a protocol error: then the client cannot know where it stands and must reconnect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from collab.backend_client.errors import ProtocolError
from collab.backend_client.remote_query_set import DECODE_ERROR
from collab.wire.messages import (
    ActionResponse,
    MutationResponse,
    QueryFailed,
    ServerMessage,
    StateModification,
    Transition,
    server_message_adapter,
)
from collab.wire.validity import clean_text

__all__ = ["DECODE_ERROR", "Unreadable", "read_frame", "unreadable_response"]

_U32_MAX = 2**32 - 1
_modification_adapter: TypeAdapter[Any] = TypeAdapter(StateModification)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """One part of a frame that could not be read: a query's result or a request's answer."""

    kind: str  # "query" or "request"
    ident: int
    reason: str


def read_frame(raw: str) -> tuple[ServerMessage | dict[str, Any], list[Unreadable]]:
    """The message (or a raw TransitionChunk dict) and what in it could not be read.
    Raises ProtocolError when the frame cannot be used at all."""
    try:
        return server_message_adapter.validate_json(raw), []
    except ValidationError as exc:
        strict_failure = exc
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(f"frame is not JSON: {_reason(strict_failure)}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object")
    kind = obj.get("type")
    if kind == "TransitionChunk":
        return obj, []
    try:
        if kind == "Transition":
            return _salvage_transition(obj)
        if kind in ("MutationResponse", "ActionResponse"):
            request_id = _u32(obj.get("requestId"))
            reason = _reason(strict_failure)
            return unreadable_response(kind, request_id, reason), [Unreadable("request", request_id, reason)]
        return server_message_adapter.validate_python(_clean_texts(obj)), []
    except ValidationError as exc:
        raise ProtocolError(f"unreadable {kind} frame: {_reason(exc)}") from None


def unreadable_response(kind: str, request_id: int, reason: str) -> MutationResponse | ActionResponse:
    """A failed response standing in for one whose result cannot be read. (A mutation answered
    this way may have committed: the LiveQueries show what it wrote.)"""
    fields: dict[str, Any] = {
        "type": kind, "requestId": request_id, "success": False,
        "result": f"{DECODE_ERROR}: the server's answer could not be read ({reason})",
    }
    if kind == "MutationResponse":
        return MutationResponse.model_validate(fields)
    return ActionResponse.model_validate(fields)


def _salvage_transition(obj: dict[str, Any]) -> tuple[Transition, list[Unreadable]]:
    mods = obj.get("modifications")
    if not isinstance(mods, list):
        raise ProtocolError("Transition without a modifications array")
    kept: list[Any] = []
    unreadable: list[Unreadable] = []
    for mod in mods:
        try:
            # Re-encoded and read by the same strict parser as the fast path: a modification
            # is kept exactly when it would have been read on its own.
            kept.append(_modification_adapter.validate_json(json.dumps(mod)))
        except (ValidationError, ValueError, RecursionError) as exc:
            query_id = _u32(mod.get("queryId") if isinstance(mod, dict) else None)
            reason = _reason(exc) if isinstance(exc, ValidationError) else str(exc)
            kept.append(QueryFailed(
                type="QueryFailed", queryId=query_id,
                errorMessage=f"{DECODE_ERROR}: the server's result for this query could not be read ({reason})",
            ))
            unreadable.append(Unreadable("query", query_id, reason))
    envelope = Transition.model_validate({**obj, "modifications": []})
    return envelope.model_copy(update={"modifications": kept}), unreadable


def _u32(value: Any) -> int:
    if type(value) is int and 0 <= value <= _U32_MAX:
        return value
    raise ProtocolError("an unreadable part of a frame carries no usable id")


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_input=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return clean_text(f"{where}: {first.get('msg')}" if where else str(first.get("msg")))


def _clean_texts(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): _clean_texts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_texts(v) for v in value]
    return value
