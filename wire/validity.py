"""Text and number rules both ends apply: what may travel on the wire, and how to clean it.

JSON lets a string hold ``"\\ud800"`` (a lone UTF-16 surrogate) and Python's ``json`` module
reads it, and ``NaN``, ``Infinity`` or ``1e999`` (which overflows to infinity) as numbers. None
of that is valid Unicode or strict JSON: the official clients' parsers (serde_json, jiter)
refuse such a frame outright. So:

- :func:`find_invalid` finds the first such value in parsed arguments and names where it is
  (``body``, ``chunks[0].text``), for the server to answer ``INVALID_ARGUMENT`` at its boundary;
- :func:`check_text` is the test the value codec (``values.dumps``) applies to every string it
  writes, so nothing invalid is ever stored or sent;
- :func:`clean_text` turns text from outside (a model's output, an error message echoing a
  client's input) into valid text: every lone surrogate becomes U+FFFD.

In a Python ``str`` a valid character outside the BMP is one code point, never a surrogate
pair, so *any* code point in U+D800..U+DFFF means the text cannot be encoded as UTF-8.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["InvalidValue", "check_text", "clean_text", "find_invalid", "is_valid_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def is_valid_text(text: str) -> bool:
    """True when ``text`` is valid Unicode (encodable as UTF-8). ASCII is the fast path."""
    return text.isascii() or _SURROGATE.search(text) is None


def check_text(text: str) -> None:
    """Raise ``ValueError`` (with the offending code point, never the text) if invalid."""
    if not text.isascii():
        found = _SURROGATE.search(text)
        if found is not None:
            raise ValueError(f"lone surrogate U+{ord(found.group()):04X} at character {found.start()}")


def clean_text(text: str) -> str:
    """Valid text: each lone surrogate becomes U+FFFD. A high+low pair that arrived as two code
    points (e.g. decoded with ``surrogatepass``) is joined into the character it encodes."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@dataclass(frozen=True, slots=True)
class InvalidValue:
    """Where a value breaks the wire rules. ``path`` is ``""`` for the value itself, else like
    ``body`` or ``chunks[0].text``; ``what`` says what is wrong, in words (no client text)."""

    path: str
    what: str

    @property
    def field(self) -> str:
        return self.path or "(arguments)"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def find_invalid(value: Any, max_depth: int = 64, *, numbers: bool = True) -> InvalidValue | None:
    """The first string (or object key) found that is not valid Unicode, or plain number that
    is not finite, in a value as parsed from JSON; None if there is none.

    A non-finite float in parsed JSON can only come from ``NaN``/``Infinity`` literals or an
    overflowing literal such as ``1e999``: the wire spells those ``{"$float": ...}``. Pass
    ``numbers=False`` for a decoded Python value, where such floats are legitimate Float64s.
    Iterative, and it does not descend below ``max_depth`` (the value codec rejects deeper
    values itself)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if not is_valid_text(item):
                return InvalidValue(path, "is not valid Unicode (it holds a lone surrogate)")
        elif isinstance(item, float):
            if numbers and not math.isfinite(item):
                return InvalidValue(path, "is not a finite number (send NaN and Infinity as {\"$float\": ...})")
        elif depth <= max_depth and isinstance(item, dict):
            children: list[tuple[Any, str, int]] = []
            for key, child in item.items():
                if isinstance(key, str) and not is_valid_text(key):
                    return InvalidValue(path, "has a field name that is not valid Unicode")
                children.append((child, _join(path, str(key)), depth + 1))
            stack.extend(reversed(children))  # report the first bad field in document order
        elif depth <= max_depth and isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in reversed(list(enumerate(item))))
    return None
