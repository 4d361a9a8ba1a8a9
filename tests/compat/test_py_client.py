"""The official Python client (PyPI `convex`) against the embedded backend."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import convex
import pytest

from collab.backend.testing import BackendProcess


def test_subscribe_update_error_data_and_auth(tmp_path: Path) -> None:
    with BackendProcess(tmp_path / "data") as backend:
        watcher = convex.ConvexClient(backend.url)
        writer = convex.ConvexClient(backend.url)
        seen: list[Any] = []
        got_three = threading.Event()

        def watch() -> None:
            sub = watcher.subscribe("counter:get", {"name": "py"})
            for value in sub:
                seen.append(value)
                if value == 3:
                    got_three.set()
                    sub.unsubscribe()
                    return

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        assert writer.mutation("counter:inc", {"name": "py", "by": 3}) == 3
        assert got_three.wait(15), seen
        assert seen[-1] == 3

        with pytest.raises(convex.ConvexError) as info:
            writer.mutation("counter:fail", {"data": {"code": "NOPE"}})
        assert info.value.data == {"code": "NOPE"}

        with pytest.raises(Exception, match="crashed"):
            writer.mutation("counter:crash", {})

        writer.set_auth(backend.mint_token("quinn", agent=True))
        who = writer.query("whoami:get", {})
        assert who["subject"] == "agent:quinn" and who["collab_kind"] == "agent"
        assert writer.action("slow:sleep", {"ms": 10}) == 10
