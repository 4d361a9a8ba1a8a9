"""Engine-level harness for model tests: a fake clock, identities, and one-line calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collab.backend.database import DatabaseReader
from collab.backend.engine import Engine, Identity
from collab.backend.functions import App
from collab.backend.storage import Storage

T0 = 1_700_000_000_000.0
_APP: App | None = None


def model_app() -> App:
    global _APP
    if _APP is None:
        _APP = App.from_package("collab.backend.model")
    return _APP


def ident(handle: str, kind: str = "human") -> Identity:
    return Identity(claims={"subject": f"{kind}:{handle}", "preferredUsername": handle, "name": handle.title(),
                            "collab_kind": kind, "issuer": "test", "tokenIdentifier": f"test|{kind}:{handle}"})


class CallError(Exception):
    def __init__(self, message: str, data: Any) -> None:
        super().__init__(message)
        self.data = data

    @property
    def code(self) -> str | None:
        return self.data.get("code") if isinstance(self.data, dict) else None


class Harness:
    def __init__(self, db_path: Path | str, now: float = T0) -> None:
        self.app = model_app()
        self.now = now
        self.storage = Storage(db_path, self.app.schema)
        self.engine = Engine(self.storage, self.app, clock=lambda: self.now)

    def call(self, path: str, args: dict[str, Any], who: Identity) -> Any:
        fn = self.app.lookup(path)
        assert fn is not None, path
        runner = self.engine.run_query if fn.kind == "query" else self.engine.run_mutation
        out = runner(path, [args], who)
        if out.success:
            return out.value
        data = json.loads(out.error_data_json) if out.error_data_json else None
        raise CallError(out.error_message, data)

    def advance(self, ms: float) -> None:
        self.now += ms
        self.engine.run_due_jobs()

    def db(self) -> DatabaseReader:
        return DatabaseReader(self.storage, self.app.schema)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.db().query(table).collect()

    def close(self) -> None:
        self.storage.close()


def expect_error(h: Harness, path: str, args: dict[str, Any], who: Identity) -> Any:
    """Call ``path`` expecting a function error; returns its error data."""
    try:
        h.call(path, args, who)
    except CallError as exc:
        return exc.data
    raise AssertionError(f"{path} succeeded; an error was expected")


def space_with(h: Harness, owner: Identity, members: tuple[tuple[Identity, str], ...]) -> tuple[str, str]:
    """A space created by ``owner`` that ``members`` joined by invite with their role, holding
    one artifact "Test plan" (content "v1"): (space id, artifact id)."""
    space = h.call("spaces:create", {"name": "s"}, owner)
    for who, role in members:
        code = h.call("spaces:invite", {"spaceId": space, "role": role}, owner)["code"]
        h.call("spaces:join", {"code": code}, who)
    art = h.call("artifacts:create", {"spaceId": space, "title": "Test plan", "kind": "document",
                                      "content": "v1"}, owner)
    return str(space), str(art)

