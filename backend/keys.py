"""Order-preserving, self-delimiting byte encoding of Convex values, for index keys.

An index key is the concatenation of the encodings of the indexed fields followed by
``_creationTime`` and ``_id`` (so every key is unique, as in Convex). Because each encoding is
prefix-free, "all keys whose first k fields equal these values" is the byte interval
``[P, prefix_end(P))``; a range on field k+1 is a sub-interval. Read sets and write sets are
both expressed in these bytes, so invalidation is interval containment on ``bytes``.

Order across types is Convex's: undefined < null < Int64 < Float64 < boolean < string < bytes <
array < object.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from collab.wire import Int64

_END = b"\x00"
_UNDEFINED, _NULL, _INT, _FLOAT, _BOOL, _STR, _BYTES, _ARRAY, _OBJECT = (
    bytes([t]) for t in range(0x02, 0x0B)
)


class Missing:
    """The value of an absent field (Convex ``undefined``); sorts first."""

    _instance: "Missing | None" = None

    def __new__(cls) -> "Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


def _escape(data: bytes) -> bytes:
    # 0x00 is the terminator; an embedded 0x00 becomes 0x00 0xFF, which sorts after the
    # terminator 0x00 0x00 and before any byte >= 0x01, preserving order.
    return data.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def encode_value(value: Any) -> bytes:
    if value is MISSING:
        return _UNDEFINED
    if value is None:
        return _NULL
    if value is True or value is False:
        return _BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, Int64):
        return _INT + struct.pack(">Q", int(value) + 2**63)
    if isinstance(value, (int, float)):
        f = float(value)
        if math.isnan(f):
            f = math.nan  # one canonical NaN
        (bits,) = struct.unpack(">Q", struct.pack(">d", f))
        bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
        return _FLOAT + struct.pack(">Q", bits)
    if isinstance(value, str):
        return _STR + _escape(value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray)):
        return _BYTES + _escape(bytes(value))
    if isinstance(value, (list, tuple)):
        return _ARRAY + b"".join(encode_value(v) for v in value) + _END
    if isinstance(value, dict):
        fields = b"".join(encode_value(k) + encode_value(value[k]) for k in sorted(value))
        return _OBJECT + fields + _END
    raise TypeError(f"cannot index a {type(value).__name__}")


def encode_key(values: list[Any] | tuple[Any, ...]) -> bytes:
    return b"".join(encode_value(v) for v in values)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``.

    ``None`` means +infinity (the prefix was empty or all 0xFF)."""
    data = bytearray(prefix)
    while data:
        if data[-1] != 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return None


def successor(key: bytes) -> bytes:
    """The smallest byte string greater than ``key`` (for inclusive upper bounds)."""
    return key + b"\x00"


def in_interval(key: bytes, lo: bytes, hi: bytes | None) -> bool:
    return lo <= key and (hi is None or key < hi)
