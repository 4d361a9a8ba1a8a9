"""What an agent is sent: its persona, the thread, the referenced artifacts (DESIGN 1, 2.5).

Pure functions of rows the worker read from the backend, so they are unit-testable and the
same for every provider. Budgets are in characters (~4 per token) and modest, because the
offline default model has a 2k-token window: the newest messages and the start of each
artifact are kept, and the asking message always is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["discussion_messages", "revise_messages"]

THREAD_BUDGET = 6_000
ARTIFACT_BUDGET = 4_000
MAX_THREAD_MESSAGES = 30


def _system(handle: str, name: str, persona: str, role: str) -> str:
    who = f"You are @{handle} ({name}), the {role} agent of a small team of humans and AI agents."
    return f"{who}\n{persona}".strip()


def _clip(text: str, budget: int) -> str:
    return text if len(text) <= budget else text[:budget] + "\n[... cut ...]"


def artifact_block(artifacts: Sequence[dict[str, Any]]) -> str:
    parts = []
    for a in artifacts:
        parts.append(f"### #{a['slug']}: {a['title']} (version {a['version']}, {a['kind']})\n"
                     f"{_clip(a.get('content', ''), ARTIFACT_BUDGET)}")
    return "Artifacts referenced in the discussion:\n\n" + "\n\n".join(parts)


def discussion_messages(*, handle: str, name: str, persona: str, role: str, thread: Sequence[dict[str, Any]],
                        asking: dict[str, Any], artifacts: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages for a discussion reply: system (persona, rules, artifacts), then the
    thread as user/assistant turns (the agent's own messages are ``assistant``), ending with
    the message that asked."""
    system = _system(handle, name, persona, role) + (
        "\nReply to the latest message addressed to you, in your own voice, concisely. "
        "Write only your own reply: never lines for other participants.")
    out = [{"role": "system", "content": system}]
    if artifacts:
        out.append({"role": "system", "content": artifact_block(artifacts)})
    turns: list[dict[str, str]] = []
    used = 0
    history = [m for m in thread if m["_id"] != asking["_id"] and m["state"] == "done" and m["body"].strip()]
    for m in reversed(history[-MAX_THREAD_MESSAGES:]):
        own = m["authorKind"] == "agent" and m["authorHandle"] == handle
        content = m["body"] if own else f"@{m['authorHandle']}: {m['body']}"
        if used + len(content) > THREAD_BUDGET:
            break
        used += len(content)
        turns.append({"role": "assistant" if own else "user", "content": content})
    out += reversed(turns)
    out.append({"role": "user", "content": f"@{asking['authorHandle']}: {asking['body']}"})
    return out


def revise_messages(*, handle: str, name: str, persona: str, role: str, artifact: dict[str, Any],
                    request: dict[str, Any] | None, instruction: str | None = None) -> list[dict[str, str]]:
    """Chat messages for a revision: the agent returns the artifact's complete new content."""
    system = _system(handle, name, persona, role) + (
        f"\nYou are revising the artifact #{artifact['slug']}. Output ONLY its complete new content, "
        "ready to save as the next version: no preface, no explanation, no fences around the whole.")
    ask = instruction or (request["body"] if request else "Improve it.")
    who = f"@{request['authorHandle']}" if request else "The team"
    user = (f"Current content of #{artifact['slug']} ({artifact['title']}, version {artifact['version']}):\n\n"
            f"{_clip(artifact['content'], ARTIFACT_BUDGET * 2)}\n\n{who} asks: {ask}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
