"""Convex document ids (PROTOCOL.md 4.2): VInt(table number) ‖ 16 random bytes ‖ Fletcher-16
footer, base32 (Convex alphabet, MSB first, no padding). Clients treat ids as opaque; we still
generate real-looking ones so that a port to a real deployment changes nothing visible.
"""

from __future__ import annotations

import os

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
FIRST_USER_TABLE_NUMBER = 10001


class InvalidId(ValueError):
    pass


def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_vint(data: bytes) -> tuple[int, int]:
    value = 0
    for i, byte in enumerate(data[:5]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, i + 1
    raise InvalidId("bad table number")


def _fletcher16(data: bytes) -> int:
    c0 = c1 = 0
    for byte in data:
        c0 = (c0 + byte) % 256
        c1 = (c1 + c0) % 256
    return (c1 << 8) | c0


def _b32encode(data: bytes) -> str:
    bits = int.from_bytes(data, "big")
    nbits = len(data) * 8
    pad = (-nbits) % 5
    bits <<= pad
    nchars = (nbits + pad) // 5
    return "".join(ALPHABET[(bits >> (5 * (nchars - 1 - i))) & 31] for i in range(nchars))


def _b32decode(text: str) -> bytes:
    nbits = len(text) * 5
    nbytes = nbits // 8
    bits = 0
    for ch in text:
        try:
            bits = (bits << 5) | _DECODE[ch]
        except KeyError:
            raise InvalidId(f"invalid character {ch!r} in id") from None
    pad = nbits - nbytes * 8
    if bits & ((1 << pad) - 1):
        raise InvalidId("non-canonical id encoding")
    return (bits >> pad).to_bytes(nbytes, "big")


def new_id(table_number: int) -> str:
    body = _vint(table_number) + os.urandom(16)
    footer = _fletcher16(body)
    return _b32encode(body + footer.to_bytes(2, "little"))


def table_number_of(doc_id: str) -> int:
    """Decode and validate an id; returns its table number. Raises InvalidId."""
    if not isinstance(doc_id, str) or not 31 <= len(doc_id) <= 37:
        raise InvalidId(f"{doc_id!r} is not a document id")
    raw = _b32decode(doc_id)
    if _b32encode(raw) != doc_id:
        raise InvalidId(f"{doc_id!r} is not a canonical document id")
    body, footer = raw[:-2], int.from_bytes(raw[-2:], "little")
    if _fletcher16(body) != footer:
        raise InvalidId(f"{doc_id!r} has a bad checksum")
    number, used = _read_vint(body)
    if len(body) - used != 16:
        raise InvalidId(f"{doc_id!r} has the wrong length")
    return number
