"""How many rows a list or page query returns: validated, and capped.

A query re-runs on every write to what it read, so one asking for a million rows would make
every write in its space pay for them. Every ``limit`` and ``numItems`` is therefore a positive
integer, and anything above :data:`MAX_ROWS` is served as :data:`MAX_ROWS` (a client that wants
more pages on; docs/API.md "Limits").
"""

from __future__ import annotations

import math
from typing import Any

from collab.backend.model._errors import invalid

MAX_ROWS = 1000


def row_limit(args: dict[str, Any], default: int, *, field: str = "limit") -> int:
    """``args[field]`` (or ``default`` when absent) as a row count: INVALID_ARGUMENT unless it
    is a positive integer; at most MAX_ROWS."""
    if field not in args:
        return min(default, MAX_ROWS)
    value = args[field]
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value == int(value) and value >= 1):
        invalid(f"{field} must be a positive integer", field=field)
    return min(int(value), MAX_ROWS)
