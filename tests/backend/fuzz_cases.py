"""Hostile inputs for the protocol fuzz test, each with what the server must answer.

A :class:`Case` is a short script for one fresh connection (frames to send, in order) plus an
:class:`Expect`: which answer proves the bad input was *handled* (an error response naming the
right thing, a FatalError / close), never silence. Frames are JSON *text* built here, so they
can hold what ``json.dumps`` would never write: ``NaN``, ``1e999``, ``"\\ud800"`` escapes in keys.

Values come in three families, never mixed in one case so the expected answer is exact:

- *poisoned*: a valid value with exactly one unsendable leaf (a lone surrogate in a string or
  a key, a non-finite number literal): the call fails with ``INVALID_ARGUMENT`` naming it;
- *malformed*: a broken Convex-JSON encoding (bad special values, ``$`` or non-ASCII keys, too
  deep, too long): a protocol error (FatalError) on the socket, 400 over HTTP;
- *valid*: any Convex value, including huge strings and deep nesting within the limits: it
  round-trips (``counter:fail`` throws it back as ``ConvexError`` data).
"""

from __future__ import annotations

import base64
import json
import math
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

MARKER_ID = 4_000_000_000  # request id of the marker Mutation sent after every case
U32_MAX = 2**32 - 1


class Raw(str):
    """JSON text written as is (``NaN``, ``1e999``)."""


def to_json(value: Any) -> str:
    """Like ``json.dumps``, but :class:`Raw` values are written verbatim. Plain strs with lone
    surrogates come out as ``\\udXXX`` escapes, exactly what a hostile client sends."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


# --- expectations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What must come back.

    ``kind``:
    - ``"invalid"``: the call fails with errorData ``{code: INVALID_ARGUMENT, field}``
      (a MutationResponse / ActionResponse for ``target``, or a QueryFailed for query ``target``);
    - ``"fatal"``: a FatalError (or an AuthError when ``auth``), then the close; over HTTP a
      4xx with ``{code, message}``;
    - ``"echo"``: ``counter:fail`` answers with errorData equal to ``data`` (a round trip);
    - ``"answered"``: the frame gets its own answer (a response for ``target``, a Transition
      reaching query set ``target``) or a FatalError: anything but silence.
    - ``"nothing"``: no answer is due (an Event); the marker proves it was processed.
    """

    kind: str
    target: int | None = None
    message_type: str | None = None
    field: str | None = None
    data: Any = None
    auth: bool = False
    count: int = 1  # how many answers ``target`` must get (a replayed request id: one per send)


@dataclass
class Case:
    frames: list[str | bytes]
    expect: Expect
    connect: bool = True
    label: str = ""
    http: dict[str, Any] | None = field(default=None)  # {"path", "body"} for an HTTP case


# --- values ------------------------------------------------------------------------------------

IDENT = st.from_regex(r"\A[a-z][a-zA-Z0-9_]{0,11}\Z")
SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
FINITE = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not (f == 0 and math.copysign(1, f) < 0))


def _special_float(f: float) -> dict[str, str]:
    return {"$float": base64.b64encode(struct.pack("<d", f)).decode()}


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    FINITE,
    st.integers(-(2**53), 2**53),
    SAFE_TEXT,
    st.sampled_from([_special_float(math.inf), _special_float(-math.inf), _special_float(-0.0)]),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}),
    st.binary(max_size=32).map(lambda b: {"$bytes": base64.b64encode(b).decode()}),
)

VALID = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(IDENT, children, max_size=5),
    ),
    max_leaves=30,
)


@st.composite
def huge_or_deep(draw: st.DrawFn) -> Any:
    """Valid but extreme: a big string (up to 1 MiB), or nesting close to the limit of 64."""
    if draw(st.booleans()):
        return "x" * draw(st.integers(100_000, 1_000_000)) + draw(SAFE_TEXT)
    value: Any = draw(LEAVES)
    for _ in range(draw(st.integers(40, 60))):
        value = [value] if draw(st.booleans()) else {"d": value}
    return value


@st.composite
def lone_surrogate_text(draw: st.DrawFn) -> str:
    """Text holding a lone surrogate (never a high one right before a low one: that pair is a
    valid character once escaped)."""
    high, low = chr(draw(st.integers(0xD800, 0xDBFF))), chr(draw(st.integers(0xDC00, 0xDFFF)))
    core = draw(st.sampled_from([high, low, low + high, high + "x", "x" + low]))
    return draw(SAFE_TEXT) + core + draw(SAFE_TEXT)


def _containers(value: Any, path: str, depth: int, out: list[tuple[Any, str]]) -> None:
    if depth > 50:
        return
    if isinstance(value, dict) and not any(k.startswith("$") for k in value):
        out.append((value, path))
        for k, v in value.items():
            _containers(v, f"{path}.{k}" if path else k, depth + 1, out)
    elif isinstance(value, list):
        out.append((value, path))
        for i, v in enumerate(value):
            _containers(v, f"{path}[{i}]", depth + 1, out)


@st.composite
def poisoned_args(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """An argument object with exactly one unsendable leaf, and the field the server must name."""
    args = draw(st.dictionaries(IDENT, VALID, max_size=4))
    spots: list[tuple[Any, str]] = []
    _containers(args, "", 0, spots)
    container, path = draw(st.sampled_from(spots))
    kind = draw(st.sampled_from(["text", "key", "number"]))
    if kind == "key" and isinstance(container, dict):
        container[draw(lone_surrogate_text())] = draw(LEAVES)
        return args, path or "(arguments)"
    poison: Any = draw(lone_surrogate_text()) if kind == "text" else Raw(draw(st.sampled_from(["1e999", "-1e999", "1E400"])))
    if isinstance(container, dict):
        key = draw(IDENT.filter(lambda k: k not in container))
        container[key] = poison
        return args, f"{path}.{key}" if path else key
    index = draw(st.integers(0, len(container)))
    container.insert(index, poison)
    return args, f"{path}[{index}]"


MALFORMED = st.one_of(
    st.just({"$integer": "AQ=="}),                     # not 8 bytes
    st.just({"$integer": "not base64!"}),
    st.just(_special_float(1.5)),                      # $float may only hold NaN/Inf/-0
    st.just({"$float": "AAAA"}),
    st.just({"$set": []}),                             # removed types
    st.just({"$map": []}),
    st.just({"$bytes": 5}),
    st.just({"$dollar": 1, "other": 2}),               # a field name starting with $
    st.just({"caf\u00e9": 1}),                         # field names are ASCII
    st.just({"ctl\u0001": 1}),
    st.just({"k" * 1025: 1}),                          # too long a field name
    st.just(list(range(8193))),                        # too long an array
    st.integers(65, 300).map(lambda n: _nest(n)),      # too deep
)


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


NOT_JSON = st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(Raw)

# A pool of wrong values for any field of any message.
JUNK = st.one_of(
    st.sampled_from([None, True, False, -1, 2**32, 2**64, 1.5, "", "x", [], {}, [1], {"a": 1}]),
    NOT_JSON,
    st.sampled_from([Raw("1e999"), Raw("-1e999")]),
    lone_surrogate_text(),
    SAFE_TEXT,
    st.integers(-5, U32_MAX + 5),
)


# --- frames --------------------------------------------------------------------------------------


def connect_frame(session_id: str | None = None) -> str:
    return to_json({"type": "Connect", "sessionId": session_id or str(uuid.uuid4()), "connectionCount": 0,
                    "lastCloseReason": None, "clientTs": 0})


def marker_frame() -> str:
    # An unknown function: always answered (failure), never writes, proves the connection lives.
    return to_json({"type": "Mutation", "requestId": MARKER_ID, "udfPath": "fuzz:marker", "args": [{}]})


def _call(kind: str, rid: int, path: str, args: Any) -> dict[str, Any]:
    if kind == "Add":
        return {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                "modifications": [{"type": "Add", "queryId": rid, "udfPath": path, "args": [args]}]}
    return {"type": kind, "requestId": rid, "udfPath": path, "args": [args]}


CALLS = {"Mutation": "counter:fail", "Action": "slow:sleep", "Add": "counter:get"}
RESPONSE = {"Mutation": "MutationResponse", "Action": "ActionResponse", "Add": "Transition"}


@st.composite
def poisoned_call(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(sorted(CALLS)))
    rid = draw(st.integers(0, 1000))
    args, where = draw(poisoned_args())
    return Case([to_json(_call(kind, rid, CALLS[kind], args))],
                Expect("invalid", rid, RESPONSE[kind], field=where), label=f"poisoned {kind}")


@st.composite
def malformed_call(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(sorted(CALLS)))
    bad = draw(MALFORMED)
    args = {draw(IDENT): bad} if draw(st.booleans()) else {"wrap": [bad]}
    return Case([to_json(_call(kind, draw(st.integers(0, 1000)), CALLS[kind], args))], Expect("fatal"),
                label=f"malformed {kind}")


@st.composite
def not_json_call(draw: st.DrawFn) -> Case:
    args = {draw(IDENT): draw(NOT_JSON)}
    return Case([to_json(_call("Mutation", 1, "counter:fail", args))], Expect("fatal"), label="NaN literal")


@st.composite
def echo_call(draw: st.DrawFn) -> Case:
    data = draw(st.one_of(VALID, huge_or_deep()))
    rid = draw(st.integers(0, 1000))
    return Case([to_json(_call("Mutation", rid, "counter:fail", {"data": data}))],
                Expect("echo", rid, "MutationResponse", data=data), label="valid value round trip")


TEMPLATES: dict[str, dict[str, Any]] = {
    "Connect": {"type": "Connect", "sessionId": "00000000-0000-4000-8000-000000000000", "connectionCount": 0,
                "lastCloseReason": None, "maxObservedTimestamp": "AAAAAAAAAAA=", "clientTs": 1.7e12},
    "ModifyQuerySet": {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
        {"type": "Add", "queryId": 7, "udfPath": "counter:get", "args": [{"name": "f"}], "journal": None},
    ]},
    "Mutation": {"type": "Mutation", "requestId": 7, "udfPath": "counter:inc", "args": [{"name": "f"}]},
    "Action": {"type": "Action", "requestId": 7, "udfPath": "slow:sleep", "args": [{"ms": 1}]},
    "Authenticate": {"type": "Authenticate", "baseVersion": 0, "tokenType": "None"},
    "Event": {"type": "Event", "eventType": "ClientConnect", "event": {"x": 1}},
}


def _answer_for(msg: dict[str, Any]) -> Expect:
    kind = msg.get("type")
    if kind in ("Mutation", "Action") and type(msg.get("requestId")) is int:
        return Expect("answered", msg["requestId"], f"{kind}Response")
    if kind == "ModifyQuerySet" and type(msg.get("newVersion")) is int:
        return Expect("answered", msg["newVersion"], "Transition")
    if kind == "Authenticate":
        return Expect("answered", None, "Authenticate")
    if kind == "Event":
        return Expect("nothing")
    return Expect("answered", None, None)  # Connect, unknown types: the marker or a FatalError


@st.composite
def mangled_message(draw: st.DrawFn) -> Case:
    """A valid message of any type with one field replaced by junk, removed, or added."""
    kind = draw(st.sampled_from(sorted(TEMPLATES)))
    msg = json.loads(json.dumps(TEMPLATES[kind]))
    target = msg
    if kind == "ModifyQuerySet" and draw(st.booleans()):
        target = msg["modifications"][0]
    name = draw(st.sampled_from(sorted(target)))
    action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
    if action == "replace":
        target[name] = draw(JUNK)
    elif action == "remove":
        del target[name]
    else:
        target[draw(IDENT)] = draw(JUNK)
    expect = _answer_for(msg)
    if kind == "Connect":
        return Case([to_json(msg)], Expect("answered"), connect=False, label=f"mangled Connect.{name}")
    return Case([to_json(msg)], expect, label=f"mangled {kind}.{name} ({action})")


@st.composite
def out_of_protocol(draw: st.DrawFn) -> Case:
    """Sequences the protocol forbids or that clients get wrong."""
    which = draw(st.sampled_from([
        "replayed ids", "ids out of order", "bad base version", "remove unknown", "add twice",
        "bad identity version", "junk token", "before Connect", "Connect twice", "binary", "not JSON",
        "not an object",
    ]))
    rid = draw(st.integers(0, 1000))
    if which == "replayed ids":
        name = f"replay-{uuid.uuid4().hex[:8]}"
        frame = to_json({"type": "Mutation", "requestId": rid, "udfPath": "counter:inc", "args": [{"name": name}]})
        return Case([frame, frame], Expect("answered", rid, "MutationResponse", count=2), label=which)
    if which == "ids out of order":
        ids = draw(st.lists(st.integers(0, U32_MAX - 1), min_size=2, max_size=5, unique=True))
        frames: list[str | bytes] = [to_json({"type": "Mutation", "requestId": i, "udfPath": "counter:get",
                                              "args": [{}]}) for i in sorted(ids, reverse=True)]
        return Case(frames, Expect("answered", min(ids), "MutationResponse"), label=which)
    if which == "bad base version":
        base = draw(st.integers(1, U32_MAX - 1))
        return Case([to_json({"type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1,
                              "modifications": []})], Expect("fatal"), label=which)
    if which == "remove unknown":
        return Case([to_json({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                              "modifications": [{"type": "Remove", "queryId": rid}]})], Expect("fatal"), label=which)
    if which == "add twice":
        add = {"type": "Add", "queryId": rid, "udfPath": "counter:get", "args": [{"name": "t"}]}
        return Case([to_json({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                              "modifications": [add, add]})], Expect("fatal"), label=which)
    if which == "bad identity version":
        return Case([to_json({"type": "Authenticate", "baseVersion": draw(st.integers(1, U32_MAX)),
                              "tokenType": "None"})], Expect("fatal"), label=which)
    if which == "junk token":
        token = draw(st.one_of(SAFE_TEXT.filter(bool), lone_surrogate_text(), st.just("a.b.c")))
        return Case([to_json({"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": token})],
                    Expect("fatal", auth=True), label=which)
    if which == "before Connect":
        return Case([TEMPLATES_TEXT["Mutation"]], Expect("fatal"), connect=False, label=which)
    if which == "Connect twice":
        return Case([connect_frame()], Expect("fatal"), label=which)
    if which == "binary":
        return Case([draw(st.binary(min_size=1, max_size=64))], Expect("fatal"), label=which)
    if which == "not JSON":
        return Case([draw(st.sampled_from(["{", "[" * 5000, "{\"type\":", "nul", "{\"a\":NaN}"]))], Expect("fatal"),
                    label=which)
    return Case([draw(st.sampled_from(["[]", "1", "\"Connect\"", "null"]))], Expect("fatal"), label=which)


TEMPLATES_TEXT = {k: to_json(v) for k, v in TEMPLATES.items()}


@st.composite
def http_case(draw: st.DrawFn) -> Case:
    """The same values over HTTP: an error body (never a 500, never non-JSON)."""
    family = draw(st.sampled_from(["poisoned", "malformed", "not json"]))
    route = draw(st.sampled_from(["/api/mutation", "/api/query", "/api/action", "/api/function"]))
    path = {"/api/mutation": "counter:fail", "/api/query": "counter:get", "/api/action": "slow:sleep",
            "/api/function": "counter:fail"}[route]
    if family == "poisoned":
        args, where = draw(poisoned_args())
        return Case([], Expect("invalid", field=where), label=f"http poisoned {route}",
                    http={"route": route, "body": to_json({"path": path, "args": args})})
    if family == "malformed":
        return Case([], Expect("fatal"), label=f"http malformed {route}",
                    http={"route": route, "body": to_json({"path": path, "args": {"v": draw(MALFORMED)}})})
    return Case([], Expect("fatal"), label=f"http NaN {route}",
                http={"route": route, "body": to_json({"path": path, "args": {"v": draw(NOT_JSON)}})})


# Each family equally often (one_of would favour the first ones).
FAMILIES = [poisoned_call(), malformed_call(), not_json_call(), echo_call(), mangled_message(), out_of_protocol(),
            http_case()]
CASES = st.sampled_from(FAMILIES).flatmap(lambda family: family)
