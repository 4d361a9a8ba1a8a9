"""Text rules both ends of the protocol apply, so the backend and the client cannot disagree:

- **mentions and refs**: what counts as ``@handle`` and ``#slug`` in a message body. The
  backend resolves them when a message is posted (and queues agent runs); the client uses the
  same rule to complete them and to warn about an agent that cannot answer.
- **the stream merge rule**: how a live tail (``liveStreams`` row: ``text`` after offset
  ``base``) joins the durable text (message body, draft or proposal content). Every pane that
  shows a stream applies it.

Pure functions, no I/O (docs/ARCHITECTURE.md: ``wire`` imports nothing of ours).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["HANDLE_RE", "REF_RE", "merge", "parse_mentions", "parse_refs"]

# ``@`` not preceded by a word character (e-mail addresses do not count), then the handle.
HANDLE_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9_.-]*)")
# ``#`` not preceded by a word character or ``&`` (HTML entities), then the slug.
REF_RE = re.compile(r"(?<![\w#&])#([A-Za-z0-9][A-Za-z0-9_./-]*)")
# Sentence punctuation that ends a handle or a slug instead of belonging to it.
TRAILING = ".-/_"


def parse_mentions(body: str) -> list[str]:
    """``@handle`` tokens in order, without duplicates. A trailing ``.``/``-`` ends the
    sentence, not the handle (``@edwin.`` mentions ``edwin``); e-mail addresses don't count."""
    seen: list[str] = []
    for m in HANDLE_RE.finditer(body):
        handle = m.group(1).rstrip(TRAILING)
        if handle and handle not in seen:
            seen.append(handle)
    return seen


def parse_refs(body: str) -> list[str]:
    """``#slug`` tokens (lowercased) in order, without duplicates; trailing punctuation is
    not part of the slug (``#test-plan?`` refers to ``test-plan``)."""
    seen: list[str] = []
    for m in REF_RE.finditer(body):
        slug = m.group(1).rstrip(TRAILING).lower()
        if slug and slug not in seen:
            seen.append(slug)
    return seen


def merge(durable: str, row: Mapping[str, Any] | None) -> str:
    """The text to show: the durable text, then the part of the live tail it does not have yet.

    The writer announces a new ``base`` only after the durable write that reached it was
    acknowledged, so in any consistent snapshot ``len(durable) >= base``. A reader whose two
    queries arrived a frame apart may see otherwise: the tail cannot be placed then, and the
    durable text alone is shown until the next value."""
    if row is None:
        return durable
    base = int(row.get("base") or 0)
    if len(durable) < base:
        return durable
    return durable + str(row.get("text") or "")[len(durable) - base:]
