"""What an agent is sent: its persona, the thread, the referenced artifacts (DESIGN 1, 2.5).

Pure functions of rows the worker read from the backend, so they are unit-testable and the
same for every provider. Budgets are in characters (~4 per token) and modest, because the
offline default model has a 2k-token window: the newest messages and the start of each
artifact are kept, and the asking message always is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["compose_messages", "discussion_messages", "revise_messages", "variation_messages"]

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


def variation_messages(*, handle: str, name: str, persona: str, role: str, artifact: dict[str, Any], base: str,
                       instruction: str, index: int, n: int, flow_instructions: str | None = None,
                       shortlist: Sequence[tuple[int, str]] = (), note: str | None = None) -> list[dict[str, str]]:
    """Chat messages for one variation of a round: the artifact as it was when the round
    started (``base``), the instruction, and for a later round the shortlisted variations and
    the note to go further in their direction. Each variation is written on its own, so it
    asks for a version of its own, not a copy of another."""
    system = _system(handle, name, persona, role) + (
        f"\nYou are writing variation {index} of {n} of the artifact #{artifact['slug']}. Each variation "
        "is a complete alternative version; make yours distinct. Output ONLY the complete new content, "
        "ready to save as the next version: no preface, no explanation, no fences around the whole.")
    if flow_instructions:
        system += f"\n{flow_instructions}"
    parts = [f"Current content of #{artifact['slug']} ({artifact['title']}, version {artifact['version']}):\n\n"
             f"{_clip(base, ARTIFACT_BUDGET * 2)}"]
    if shortlist:
        budget = max(500, ARTIFACT_BUDGET // max(1, len(shortlist)))
        parts.append("The team shortlisted these variations from the previous round; go further in their "
                     "direction:\n\n" + "\n\n".join(f"--- shortlisted #{i} ---\n{_clip(text, budget)}"
                                                     for i, text in shortlist))
    if note:
        parts.append(f"What to change this time: {note}")
    parts.append(f"Instruction: {instruction}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def compose_messages(*, handle: str, name: str, persona: str, role: str, artifact: dict[str, Any],
                     parts: Sequence[dict[str, Any]], instruction: str) -> list[dict[str, str]]:
    """Chat messages for a composition: the selected parts of several variations, in order,
    merged into one version following the instruction."""
    system = _system(handle, name, persona, role) + (
        f"\nYou are composing a new version of the artifact #{artifact['slug']} from parts of several "
        "variations. Output ONLY the complete new content: no preface, no explanation, no fences around the whole.")
    budget = max(500, ARTIFACT_BUDGET * 2 // max(1, len(parts)))
    shown = "\n\n".join(f"--- part {k + 1}: variation #{p['index']:g}, lines {p['range']['start'] + 1}-"
                         f"{p['range']['end']} ---\n{_clip(str(p['text']), budget)}" for k, p in enumerate(parts))
    user = f"The parts, in the order to use them:\n\n{shown}\n\nInstruction: {instruction}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
