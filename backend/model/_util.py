"""Small helpers shared by the modules: audit rows, notifications, slugs. Message parsing
(``parse_mentions`` / ``parse_refs``) is the wire's rule (``collab.wire.text``), shared with the
client."""

from __future__ import annotations

import base64
import math
import re
from typing import Any

from collab.backend.model._errors import invalid
from collab.wire.text import TRAILING, parse_mentions, parse_refs

__all__ = ["TRAILING", "audit", "notify", "slugify", "check_slug", "parse_mentions", "parse_refs",
           "actor_summary", "get_in"]

_TRAILING = TRAILING


def whole(x: Any) -> bool:
    """A whole number. Arguments are float64: NaN and the infinities pass ``v.number()``, and
    ``int()`` of them raises, which would answer bad input with an internal error."""
    return isinstance(x, (int, float)) and math.isfinite(x) and x == int(x)


def audit(ctx: Any, space_id: str, type_: str, data: dict[str, Any], *,
          artifact_id: str | None = None, actor_id: str | None = None) -> str:
    row: dict[str, Any] = {"spaceId": space_id, "type": type_, "data": data, "at": ctx.now()}
    if artifact_id is not None:
        row["artifactId"] = artifact_id
    if actor_id is not None:
        row["actorId"] = actor_id
    return str(ctx.db.insert("audit", row))


def notify(ctx: Any, actor_id: str, space_id: str, kind: str, text: str, **extra: Any) -> str:
    row: dict[str, Any] = {"actorId": actor_id, "spaceId": space_id, "kind": kind, "read": False,
                           "text": text, "at": ctx.now()}
    for key in ("messageId", "artifactId", "data"):
        if extra.get(key) is not None:
            row[key] = extra[key]
    return str(ctx.db.insert("notifications", row))


def slugify(title: str) -> str:
    """``"Test plan (v2)"`` -> ``"test-plan-v2"``: what ``#test-plan-v2`` refers to."""
    slug = re.sub(r"[^a-z0-9_./]+", "-", title.lower()).strip("-./_")
    return slug[:60] or "artifact"


def check_slug(slug: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_./-]*", slug) or slug[-1] in _TRAILING:
        invalid(f"slug {slug!r} must be lowercase letters, digits and - _ . / (not at the end)")
    return slug


def actor_summary(actor: dict[str, Any] | None) -> dict[str, Any] | None:
    if actor is None:
        return None
    return {"actorId": actor["_id"], "handle": actor["handle"], "name": actor["name"], "kind": actor["kind"]}


def get_in(ctx: Any, table: str, doc_id: str) -> dict[str, Any] | None:
    """``ctx.db.get`` restricted to one table: argument validation does not check which table
    an id belongs to, so an id of another table must read as "not found"."""
    if ctx.db.normalize_id(table, doc_id) is None:
        return None
    return ctx.db.get(doc_id)


def random_token(ctx: Any, nbytes: int) -> str:
    """Unpredictable text for capabilities (invite codes), like ``secrets.token_urlsafe`` but
    from ``ctx.random_bytes``: a Convex mutation gets randomness only from its per-execution
    seeded generator (``crypto.getRandomValues``), and the TypeScript twin does the same."""
    return base64.urlsafe_b64encode(ctx.random_bytes(nbytes)).rstrip(b"=").decode()
