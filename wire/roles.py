"""Who fills a pipeline stage's role (DESIGN 1.3), the rule both ends apply: the backend to
let only the stage's actor take the lock and only its approver decide, the app to offer the
approve / reject / work keys to the right person.

A role is an agent handle, ``human`` (any human editor of the space), ``human:<handle>`` (that
person), or for an approver ``auto`` (nobody: the output is approved as soon as it is in).
Pure functions, no I/O.
"""

from __future__ import annotations

__all__ = ["AUTO", "HUMAN", "describe", "is_agent_role", "matches"]

HUMAN = "human"
AUTO = "auto"


def is_agent_role(role: str) -> bool:
    return role not in (HUMAN, AUTO) and not role.startswith(HUMAN + ":")


def matches(role: str, kind: str, handle: str) -> bool:
    """Does an actor of ``kind`` (human / agent) and ``handle`` fill ``role``?"""
    if role == AUTO:
        return False
    if role == HUMAN:
        return kind == "human"
    if role.startswith(HUMAN + ":"):
        return kind == "human" and handle == role.split(":", 1)[1]
    return kind == "agent" and handle == role


def describe(role: str) -> str:
    """``@edwin``, ``@bob``, ``a human editor``, ``nobody (auto-approved)``."""
    if role == HUMAN:
        return "a human editor"
    if role == AUTO:
        return "nobody (auto-approved)"
    return "@" + role.split(":", 1)[-1]
