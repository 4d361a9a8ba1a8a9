"""Limits on every list query, and the pages that reach everything beyond them (issue 14).

Every ``limit`` / ``numItems`` is a positive integer (else ``INVALID_ARGUMENT`` naming it) and
is served at most 1000 rows. Past that, pages: ``messages:page`` (newest first below a given
``_creationTime``, or oldest first for ``Home``), ``runs:page``, ``artifacts:historyPage``,
``audit:page``;
pages are keyed by creation time, so what is written meanwhile never shifts them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.model._harness import Harness, expect_error, ident, space_with

MAX_ROWS = 1000  # the documented cap (docs/API.md, "Limits")
OWNER, AG = ident("olga"), ident("ada", "agent")


@pytest.fixture
def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path / "db.sqlite")
    yield harness
    harness.close()


@pytest.fixture
def world(h: Harness) -> dict[str, str]:
    space, art = space_with(h, OWNER, ((AG, "editor"),))
    return {"space": space, "artifact": art}


def _lists(w: dict[str, str]) -> dict[str, tuple[dict[str, Any], str]]:
    """Every query that takes a row count: (its other arguments, the count's name)."""
    page = {"cursor": None}
    return {
        "messages:list": ({"spaceId": w["space"]}, "limit"),
        "runs:list": ({"spaceId": w["space"]}, "limit"),
        "artifacts:history": ({"artifactId": w["artifact"]}, "limit"),
        "audit:list": ({"spaceId": w["space"]}, "limit"),
        "audit:page": ({"spaceId": w["space"], **page}, "numItems"),
        "notifications:list": ({}, "limit"),
        "variations:forArtifact": ({"artifactId": w["artifact"]}, "limit"),
        "messages:page": ({"spaceId": w["space"], **page}, "numItems"),
        "runs:page": ({"spaceId": w["space"], **page}, "numItems"),
        "artifacts:historyPage": ({"artifactId": w["artifact"], **page}, "numItems"),
    }


@pytest.mark.parametrize("bad", [0, -1, 1.5, float("nan"), float("inf")])
def test_every_row_count_must_be_a_positive_integer(h: Harness, world: dict[str, str], bad: float) -> None:
    for path, (args, field) in _lists(world).items():
        data = expect_error(h, path, {**args, field: bad}, OWNER)
        assert data["code"] == "INVALID_ARGUMENT" and data["field"] == field, (path, data)
        h.call(path, {**args, field: 3}, OWNER)  # and a good one passes


def test_a_huge_limit_is_served_as_the_cap(h: Harness, world: dict[str, str]) -> None:
    for i in range(MAX_ROWS + 5):
        h.call("messages:post", {"spaceId": world["space"], "body": f"m{i}"}, OWNER)
    rows = h.call("messages:list", {"spaceId": world["space"], "limit": 1e9}, OWNER)
    assert len(rows) == MAX_ROWS and rows[-1]["body"] == f"m{MAX_ROWS + 4}"
    page = h.call("messages:page", {"spaceId": world["space"], "numItems": 5000, "cursor": None}, OWNER)
    assert len(page["page"]) == MAX_ROWS and not page["isDone"]
    for path, (args, field) in _lists(world).items():
        h.call(path, {**args, field: 10**12}, OWNER)  # never an error, never more than the cap


def _bodies(page: dict[str, Any]) -> list[str]:
    return [m["body"] for m in page["page"]]


def test_the_whole_discussion_is_reachable_by_pages(h: Harness, world: dict[str, str]) -> None:
    space = world["space"]
    for i in range(25):
        h.call("messages:post", {"spaceId": space, "body": f"m{i}"}, OWNER)
    tail = h.call("messages:list", {"spaceId": space, "limit": 10}, OWNER)
    assert [m["body"] for m in tail] == [f"m{i}" for i in range(15, 25)]
    # Scrolling up: pages strictly older than the oldest message of the live tail.
    args = {"spaceId": space, "numItems": 10, "cursor": None, "before": tail[0]["_creationTime"]}
    first = h.call("messages:page", args, OWNER)
    assert _bodies(first) == [f"m{i}" for i in range(14, 4, -1)] and not first["isDone"]
    h.call("messages:post", {"spaceId": space, "body": "new while scrolling"}, OWNER)
    assert h.call("messages:page", args, OWNER) == first  # new messages do not shift it
    second = h.call("messages:page", {**args, "cursor": first["continueCursor"]}, OWNER)
    assert _bodies(second) == [f"m{i}" for i in range(4, -1, -1)] and second["isDone"]
    # Home: the first messages, oldest first, then onwards to the tail.
    home = h.call("messages:page", {"spaceId": space, "numItems": 10, "cursor": None, "order": "asc"}, OWNER)
    assert _bodies(home) == [f"m{i}" for i in range(10)]
    on = h.call("messages:page", {"spaceId": space, "numItems": 100, "cursor": home["continueCursor"],
                                  "order": "asc"}, OWNER)
    assert _bodies(on) == [f"m{i}" for i in range(10, 25)] + ["new while scrolling"] and on["isDone"]


def test_run_and_version_histories_page_through_everything(h: Harness, world: dict[str, str]) -> None:
    space, art = world["space"], world["artifact"]
    agent = h.call("actors:me", {}, AG)["_id"]
    runs = [h.call("runs:enqueue", {"spaceId": space, "agentId": agent, "kind": f"k{i}"}, OWNER) for i in range(7)]
    first = h.call("runs:page", {"spaceId": space, "numItems": 4, "cursor": None}, OWNER)
    assert [r["_id"] for r in first["page"]] == runs[::-1][:4]
    h.call("runs:cancel", {"runId": runs[1]}, OWNER)  # a status change keeps its place
    rest = h.call("runs:page", {"spaceId": space, "numItems": 4, "cursor": first["continueCursor"]}, OWNER)
    assert [r["_id"] for r in rest["page"]] == runs[::-1][4:] and rest["isDone"]
    assert rest["page"][1]["status"] == "cancelled"

    for i in range(2, 6):
        token = h.call("locks:acquire", {"artifactId": art}, OWNER)["token"]
        h.call("artifacts:save", {"artifactId": art, "token": token, "content": f"v{i}"}, OWNER)
    page = h.call("artifacts:historyPage", {"artifactId": art, "numItems": 3, "cursor": None}, OWNER)
    assert [v["version"] for v in page["page"]] == [5, 4, 3] and "content" not in page["page"][0]
    more = h.call("artifacts:historyPage", {"artifactId": art, "numItems": 3, "cursor": page["continueCursor"],
                                            "includeContent": True}, OWNER)
    assert [(v["version"], v["content"]) for v in more["page"]] == [(2, "v2"), (1, "v1")] and more["isDone"]


def test_the_audit_log_pages_through_everything(h: Harness, world: dict[str, str]) -> None:
    space, art = world["space"], world["artifact"]
    for i in range(3):
        token = h.call("locks:acquire", {"artifactId": art}, OWNER)["token"]
        h.call("artifacts:save", {"artifactId": art, "token": token, "content": f"v{i}"}, OWNER)
    for scope in ({"spaceId": space}, {"spaceId": space, "artifactId": art}):
        whole = h.call("audit:list", scope, OWNER)
        paged, cursor = [], None
        while True:
            got = h.call("audit:page", {**scope, "numItems": 2, "cursor": cursor}, OWNER)
            paged += got["page"]
            if got["isDone"]:
                break
            cursor = got["continueCursor"]
        assert len(whole) > 4 and paged == whole
