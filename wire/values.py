"""Convex-JSON: the value encoding used in every argument, result and error payload.

PROTOCOL.md section 4. Python representation:

- ``None``, ``bool``, ``str`` as themselves;
- Float64 as ``float`` *or* ``int`` (a plain JSON number is always a Float64, as in the
  official Python client, so function authors can return ``len(x)`` without ceremony);
- Int64 as :class:`Int64` (an ``int`` subclass), encoded ``{"$integer": base64 LE}``;
- Bytes as ``bytes``, encoded ``{"$bytes": base64}``;
- arrays as ``list`` (tuples accepted when encoding), objects as ``dict`` with ``str`` keys.

This module is shared by the server and the client (it does no I/O), so the two ends cannot
drift apart on the encoding.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from typing import Any

from collab.wire.validity import check_text, find_invalid

__all__ = [
    "Int64",
    "ValueError_",
    "MAX_ARRAY_LEN",
    "MAX_DEPTH",
    "convex_to_json",
    "json_to_convex",
    "dumps",
    "loads",
    "encode_ts",
    "decode_ts",
    "check_field_name",
]

MAX_ARRAY_LEN = 8192
# In json.dumps output (ensure_ascii): a high surrogate escape not followed by a low one, or a
# low one not preceded by a high one. Starts with a literal, so the scan is one fast C pass.
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\ud(?:[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})"
    r"|[c-f][0-9a-f]{2}(?<!\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}))"
)
MAX_DEPTH = 64
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


class ValueError_(ValueError):
    """A value that is not a valid Convex value (bad special form, bad field name...)."""


class Int64(int):
    """A Convex Int64 (JS ``bigint``). Plain ``int`` encodes as a Float64 number."""

    def __new__(cls, value: int) -> "Int64":
        if not _I64_MIN <= int(value) <= _I64_MAX:
            raise ValueError_(f"Int64 out of range: {value}")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"Int64({int(self)})"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError_("special value must hold a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError_(f"invalid base64: {text!r}") from exc


def check_field_name(name: Any) -> str:
    """Field names: not starting with ``$``, non-control ASCII, at most 1024 characters."""
    if not isinstance(name, str):
        raise ValueError_(f"object keys must be strings, got {type(name).__name__}")
    if name.startswith("$"):
        raise ValueError_(f"field name {name!r} starts with '$'")
    if len(name) > 1024:
        raise ValueError_("field name longer than 1024 characters")
    if not name.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError_(f"field name {name!r} must be non-control ASCII")
    return name


def convex_to_json(value: Any, _depth: int = 0) -> Any:
    """Python value -> JSON-serialisable structure in Convex-JSON form. Strings are taken as
    they are; :func:`dumps` additionally refuses text that is not valid Unicode."""
    if _depth > MAX_DEPTH:
        raise ValueError_(f"value nested deeper than {MAX_DEPTH}")
    if value is None or value is True or value is False or isinstance(value, str):
        return value
    if isinstance(value, Int64):
        return {"$integer": _b64(struct.pack("<q", int(value)))}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or (value == 0.0 and math.copysign(1, value) < 0):
            return {"$float": _b64(struct.pack("<d", value))}
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": _b64(bytes(value))}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ARRAY_LEN:
            raise ValueError_(f"array longer than {MAX_ARRAY_LEN}")
        return [convex_to_json(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {check_field_name(k): convex_to_json(v, _depth + 1) for k, v in value.items()}
    raise ValueError_(f"{type(value).__name__} is not a Convex value")


def json_to_convex(value: Any, _depth: int = 0) -> Any:
    """Parsed JSON in Convex-JSON form -> Python value. Strict: rejects malformed specials."""
    if _depth > MAX_DEPTH:
        raise ValueError_(f"value nested deeper than {MAX_DEPTH}")
    if isinstance(value, dict):
        if len(value) == 1:
            (key,) = value
            if key == "$integer":
                raw = _unb64(value[key])
                if len(raw) != 8:
                    raise ValueError_("$integer must hold exactly 8 bytes")
                return Int64(struct.unpack("<q", raw)[0])
            if key == "$float":
                raw = _unb64(value[key])
                if len(raw) != 8:
                    raise ValueError_("$float must hold exactly 8 bytes")
                f = struct.unpack("<d", raw)[0]
                if not (math.isnan(f) or math.isinf(f) or (f == 0.0 and math.copysign(1, f) < 0)):
                    raise ValueError_("$float may only hold NaN, +-Infinity or -0")
                return f
            if key == "$bytes":
                return _unb64(value[key])
            if key in ("$set", "$map"):
                raise ValueError_(f"{key} is a removed Convex type")
        return {check_field_name(k): json_to_convex(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > MAX_ARRAY_LEN:
            raise ValueError_(f"array longer than {MAX_ARRAY_LEN}")
        return [json_to_convex(v, _depth + 1) for v in value]
    return value


def dumps(value: Any, *, strict_text: bool = True) -> str:
    """Encode a Python value as canonical Convex-JSON text (sorted keys, compact).

    With ``strict_text`` (the default, and what the server uses for every document it stores
    and every result it sends) a string that is not valid Unicode raises :class:`ValueError_`
    naming where it is: such a value could not be read back by a strict JSON parser (the
    official clients), so it must be neither stored nor sent (wire/validity.py)."""
    encoded = convex_to_json(value)
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), allow_nan=False)
    # ensure_ascii writes a character outside the BMP as a high+low pair of \udXXX escapes and a
    # lone surrogate as a lone escape: one regex pass tells them apart. It is exact unless the
    # text holds an escaped backslash before "ud" (a string with a literal backslash-u-d in it);
    # then, and when it finds something, the walk decides and names the field.
    if strict_text and "\\ud" in text and ("\\\\ud" in text or _LONE_SURROGATE_ESCAPE.search(text)):
        problem = find_invalid(encoded, MAX_DEPTH + 1, numbers=False)
        if problem is not None:
            raise ValueError_(f"the string at {problem.field} {problem.what}")
    return text


def loads(text: str | bytes) -> Any:
    """Decode Convex-JSON text. The fast path skips the walk when no special form can occur."""
    parsed = json.loads(text)
    marker = '"$' if isinstance(text, str) else b'"$'
    if marker not in text:  # type: ignore[operator]
        return parsed
    return json_to_convex(parsed)


def encode_ts(ts: int) -> str:
    """A u64 timestamp as base64 of its 8 little-endian bytes (``0`` -> ``"AAAAAAAAAAA="``)."""
    return _b64(struct.pack("<Q", ts))


def decode_ts(text: str) -> int:
    raw = _unb64(text)
    if len(raw) != 8:
        raise ValueError_("timestamp must be 8 bytes")
    return struct.unpack("<Q", raw)[0]
