"""Every frame and HTTP body the server writes, parsed as strictly as the official clients do.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``"\\ud800"``; serde_json (the PyPI client) and
jiter (pydantic, our client) refuse them, and a client that cannot parse a frame reconnects and
gets it again. ``audit_server_output`` (an autouse fixture in tests/backend and tests/client)
checks everything the server sends during a test and fails the test at teardown if anything
was not strict JSON or not a valid protocol message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp import web

from collab.backend.sync import SyncSession
from collab.wire.messages import server_message_adapter

# Independent of the code under test (wire/validity.py): any surrogate code point in a str.
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotStrictJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise NotStrictJson(f"{name} is not JSON")


def _check_parsed(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise NotStrictJson(f"string with a lone surrogate: {item!r:.80}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise NotStrictJson(f"non-finite number {item!r}")
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.extend((key, child))
        elif isinstance(item, list):
            stack.extend(item)


def strict_loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses what strict parsers refuse: NaN/Infinity literals, numbers
    that overflow to infinity (``1e999``), and escapes that decode to lone surrogates."""
    parsed = json.loads(text, parse_constant=_no_constant)
    _check_parsed(parsed)
    return parsed


class ServerOutputAudit:
    def __init__(self) -> None:
        self.frames = 0
        self.bodies = 0
        self.violations: list[str] = []

    def frame(self, frame: str) -> None:
        self.frames += 1
        try:
            strict_loads(frame)
            server_message_adapter.validate_json(frame)
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            self.violations.append(f"ws frame: {exc}: {frame[:300]!r}")

    def body(self, data: bytes) -> None:
        self.bodies += 1
        try:
            strict_loads(data)
        except Exception as exc:  # noqa: BLE001
            self.violations.append(f"http body: {exc}: {data[:300]!r}")


@contextmanager
def audited(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerOutputAudit]:
    audit = ServerOutputAudit()
    send_now = SyncSession._send_now
    json_response = web.json_response

    async def checked_send(self: SyncSession, frame: str) -> None:
        audit.frame(frame)
        await send_now(self, frame)

    def checked_json_response(*args: Any, **kwargs: Any) -> web.Response:
        response = json_response(*args, **kwargs)
        audit.body(response.body if isinstance(response.body, bytes) else b"")
        return response

    monkeypatch.setattr(SyncSession, "_send_now", checked_send)
    monkeypatch.setattr(web, "json_response", checked_json_response)
    yield audit


@pytest.fixture(autouse=True)
def audit_server_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerOutputAudit]:
    with audited(monkeypatch) as audit:
        yield audit
    assert not audit.violations, "the server wrote output a strict client cannot read:\n" + "\n".join(audit.violations)
