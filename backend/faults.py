"""Fault injection for tests and the fault-injection suite: faults the server can be told to
commit on purpose. Off unless configured (``ServerOptions.faults`` or env ``COLLAB_FAULTS``,
a JSON object), so production paths pay one dict lookup at most.

``{"drop_reply_after_commit": {"counter:inc": 1}}``: the next N commits of that mutation
close the client's socket right after the commit, before the MutationResponse is sent —
the case that exactly-once replay exists for.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field


@dataclass
class Faults:
    drop_reply_after_commit: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "Faults":
        raw = os.environ.get("COLLAB_FAULTS")
        if not raw:
            return cls()
        spec = json.loads(raw)
        return cls(drop_reply_after_commit={str(k): int(v) for k, v in spec.get("drop_reply_after_commit", {}).items()})

    def take_drop_reply(self, udf_path: str) -> bool:
        left = self.drop_reply_after_commit.get(udf_path, 0)
        if left <= 0:
            return False
        self.drop_reply_after_commit[udf_path] = left - 1
        return True
