"""``[streaming]``: how often a streaming reply is flushed, at two cadences.

* UI cadence (``ui_*``): to the terminal that shows the stream (~30 ms: looks live).
* Persistence cadence (``persist_*``): to the backend, the source of truth everyone else
  subscribes to (~250 ms). Each flush is a mutation that re-runs every subscription reading
  that draft, so this cadence bounds backend writes per stream (at most 1000 / interval_ms per
  second) whatever the token rate. It must stay coarser than the UI cadence: never one
  mutation per token.

A lane flushes at most once per interval (collab.flows.cadence reads these names).
``*_max_chars`` (off by default) flushes a lane early once that much text is waiting: it bounds
payload size at the price of the rate bound, so the persistence one has a floor.

``ui_lane = false`` turns the UI lane off: the worker pushes no ``streams:push`` at all and
readers see the persistence cadence only. ``[streaming.convex]`` overrides the cadences and the
lane when the backend is a Convex deployment (``backend.url`` set), where every mutation and
every query it re-runs is a billed function call (docs/CONVEX.md "Cost").
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import Section, check

MIN_PERSIST_FACTOR = 2
MIN_PERSIST_INTERVAL_MS = 50
MIN_PERSIST_MAX_CHARS = 32


class StreamingProfile(Section):
    """Overrides of ``[streaming]`` for one kind of backend (unset keys inherit)."""

    ui_lane: bool | None = Field(default=None, description="Push live tails at the UI cadence.")
    ui_interval_ms: int | None = Field(default=None, ge=5, le=1000, description="UI cadence.")
    persist_interval_ms: int | None = Field(
        default=None, ge=MIN_PERSIST_INTERVAL_MS, le=5000, description="Persistence cadence."
    )


class StreamingConfig(Section):
    ui_lane: bool = Field(
        default=True,
        description=(
            "Push live tails (streams:push) at the UI cadence; off: no pushes, readers see the "
            "persistence cadence only."
        ),
    )
    ui_interval_ms: int = Field(
        default=30, ge=5, le=1000, description="UI cadence: time between two screen updates."
    )
    persist_interval_ms: int = Field(
        default=250,
        ge=MIN_PERSIST_INTERVAL_MS,
        le=5000,
        description="Persistence cadence: time between two writes to the backend.",
    )
    ui_max_chars: int | None = Field(
        default=None, ge=1, description="Flush the UI early at this much text (unset: never)."
    )
    persist_max_chars: int | None = Field(
        default=None,
        ge=MIN_PERSIST_MAX_CHARS,
        description="Write early at this much text (unset: never; it weakens the rate bound).",
    )

    convex: StreamingProfile | None = Field(
        default=None,
        description="Overrides for a Convex deployment (backend.url set): ui_lane, ui_interval_ms, persist_interval_ms.",
    )

    def for_backend(self, *, embedded: bool) -> "StreamingConfig":
        """The settings in force: these, or with ``[streaming.convex]`` applied on a deployment."""
        if embedded or self.convex is None:
            return self
        merged = {**self.model_dump(exclude={"convex"}), **self.convex.model_dump(exclude_none=True)}
        return StreamingConfig.model_validate(merged)

    @model_validator(mode="after")
    def _coarser(self) -> "StreamingConfig":
        problems = []
        if self.convex is not None:
            ui = self.convex.ui_interval_ms or self.ui_interval_ms
            persist = self.convex.persist_interval_ms or self.persist_interval_ms
            if persist < MIN_PERSIST_FACTOR * ui:
                problems.append(
                    (
                        ("convex", "persist_interval_ms"),
                        f"must be >= {MIN_PERSIST_FACTOR * ui} ({MIN_PERSIST_FACTOR}x the UI "
                        f"interval on a Convex deployment) (got {persist})",
                    )
                )
        floor = MIN_PERSIST_FACTOR * self.ui_interval_ms
        if self.persist_interval_ms < floor:
            problems.append(
                (
                    ("persist_interval_ms",),
                    f"must be >= {floor} ({MIN_PERSIST_FACTOR}x ui_interval_ms): persisting "
                    f"almost every token floods the backend (got {self.persist_interval_ms})",
                )
            )
        if (
            self.persist_max_chars is not None
            and self.ui_max_chars is not None
            and self.persist_max_chars < MIN_PERSIST_FACTOR * self.ui_max_chars
        ):
            problems.append(
                (
                    ("persist_max_chars",),
                    f"must be >= {MIN_PERSIST_FACTOR * self.ui_max_chars} "
                    f"({MIN_PERSIST_FACTOR}x ui_max_chars) (got {self.persist_max_chars})",
                )
            )
        check(problems)
        return self

    @property
    def ui_interval_s(self) -> float:
        return self.ui_interval_ms / 1000

    @property
    def persist_interval_s(self) -> float:
        return self.persist_interval_ms / 1000
