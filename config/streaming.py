"""``[streaming]``: how often a streaming reply is flushed, at two cadences.

* ``ui``: to the terminal that shows the stream (small chunks, ~30 ms: looks live).
* ``persist``: to the backend, the source of truth everyone else subscribes to (~250 ms).
  Each flush is a mutation that re-runs every subscription reading that draft, so this cadence
  bounds backend writes per stream (1000 / interval_ms per second at most) whatever the token
  rate. It must stay coarser than the UI cadence: never one mutation per token.

A flush happens when ``interval_ms`` has passed since the previous one and at least
``min_chars`` characters are pending, and always when the stream ends.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import Section, check

MIN_PERSIST_FACTOR = 2


class Cadence(Section):
    interval_ms: int = Field(ge=5, le=5000, description="Minimum time between two flushes.")
    min_chars: int = Field(default=1, ge=1, le=4096, description="Minimum text per flush.")

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


class StreamingConfig(Section):
    ui: Cadence = Field(
        default_factory=lambda: Cadence(interval_ms=30, min_chars=1),
        description="Cadence of the terminal showing the stream.",
    )
    persist: Cadence = Field(
        default_factory=lambda: Cadence(interval_ms=250, min_chars=16),
        description="Cadence of writes to the backend (what other terminals see).",
    )

    @model_validator(mode="after")
    def _coarser(self) -> "StreamingConfig":
        problems = []
        floor = MIN_PERSIST_FACTOR * self.ui.interval_ms
        if self.persist.interval_ms < max(floor, 50):
            problems.append(
                (
                    ("persist", "interval_ms"),
                    f"must be >= {max(floor, 50)} ({MIN_PERSIST_FACTOR}x ui.interval_ms and at "
                    "least 50): persisting almost every token floods the backend "
                    f"(got {self.persist.interval_ms})",
                )
            )
        if self.persist.min_chars < self.ui.min_chars:
            problems.append(
                (
                    ("persist", "min_chars"),
                    f"must be >= ui.min_chars ({self.ui.min_chars}) (got {self.persist.min_chars})",
                )
            )
        check(problems)
        return self
