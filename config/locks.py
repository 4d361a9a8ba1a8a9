"""``[locks]``: leases on artifact locks. A holder that crashes frees its lock within
``lease_ttl_s`` plus one sweep; a live holder renews every ``renew_every_s`` (every accepted
streamed delta renews too) and stops writing ``stop_margin_s`` before its lease would end
without a renewal (measured on its own monotonic clock)."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import Section, check


class LocksConfig(Section):
    lease_ttl_s: float = Field(default=30.0, ge=5, le=3600, description="Lease length.")
    renew_every_s: float = Field(default=10.0, gt=0, description="Renewal period while held.")
    stop_margin_s: float = Field(
        default=2.0, ge=0, description="Stop writing this long before an unrenewed lease ends."
    )
    sweep_every_s: float = Field(
        default=5.0, gt=0, le=60, description="How often the embedded backend expires leases."
    )
    grant_idle_s: float = Field(
        default=60.0, ge=1, le=3600,
        description=(
            "A lock you queued for reaches you while the artifacts pane is not focused: it is "
            "released (and you are told) if you do not open the editor within this time."
        ),
    )

    @model_validator(mode="after")
    def _timing(self) -> "LocksConfig":
        problems = []
        # Two renewals per lease: one lost renewal (a slow network round) must not lose it.
        if self.renew_every_s > self.lease_ttl_s / 2:
            problems.append(
                (
                    ("renew_every_s",),
                    f"must be <= lease_ttl_s / 2 ({self.lease_ttl_s / 2:g}) so one missed "
                    f"renewal does not lose the lock (got {self.renew_every_s:g})",
                )
            )
        elif self.stop_margin_s >= self.lease_ttl_s - self.renew_every_s:
            problems.append(
                (
                    ("stop_margin_s",),
                    f"must be < lease_ttl_s - renew_every_s "
                    f"({self.lease_ttl_s - self.renew_every_s:g}) (got {self.stop_margin_s:g})",
                )
            )
        check(problems)
        return self
