"""Artifacts and discussions as files (used by the space screen's export keys and by
``collab export``). Pure functions, no Textual."""

from __future__ import annotations

import time
from typing import Any

EXT_BY_LANGUAGE = {"python": "py", "javascript": "js", "typescript": "ts", "rust": "rs", "bash": "sh",
                   "json": "json", "toml": "toml", "go": "go", "c": "c"}


def artifact_filename(art: dict[str, Any]) -> str:
    slug = str(art.get("slug") or "artifact")
    lang = art.get("language")
    if lang:
        ext = EXT_BY_LANGUAGE.get(str(lang), "txt")
        return slug if slug.endswith("." + ext) or "." in slug[-5:] else f"{slug}.{ext}"
    return f"{slug}.md"


def discussion_markdown(space_name: str, messages: list[dict[str, Any]]) -> str:
    lines = [f"# Discussion in {space_name}", ""]
    decisions = [m for m in messages if m.get("decision")]
    if decisions:
        lines += ["## Decisions", ""] + [f"- {m.get('body', '').strip()} (@{m.get('authorHandle')})"
                                        for m in decisions] + [""]
    lines += ["## Messages", ""]
    for m in messages:
        at = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(m.get("_creationTime", 0)) / 1000))
        kind = " (agent)" if m.get("authorKind") == "agent" else ""
        mark = " **[decision]**" if m.get("decision") else ""
        lines += [f"### @{m.get('authorHandle')}{kind}, {at}{mark}", "", str(m.get("body", "")).rstrip(), ""]
    return "\n".join(lines)
