"""Short relative times ("12s", "5m", "3h", "2d") for badges and headers. The caller passes
"now" so snapshots can freeze the clock."""

from __future__ import annotations


def ago(ts_ms: float | None, now_s: float) -> str:
    if not ts_ms:
        return "?"
    secs = max(0.0, now_s - float(ts_ms) / 1000.0)
    if secs < 60:
        return f"{int(secs)}s"
    if secs < 3600:
        return f"{int(secs // 60)}m"
    if secs < 86400:
        return f"{int(secs // 3600)}h"
    return f"{int(secs // 86400)}d"


def until(ts: float | None, now_s: float) -> int:
    """Whole seconds until ``ts`` (seconds since epoch), never negative."""
    if not ts:
        return 0
    return max(0, round(ts - now_s))
