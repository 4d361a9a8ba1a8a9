"""The facade (``collab.backend_client.space``) against a real backend over real sockets: the
lock hold humans and agents share, opening a space in one call, the discussion's composer
rules, and the pure helpers (diff, kinds)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from collab.backend.testing import RunningBackend, running_backend
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.backend_client.space import (
    LeasePolicy,
    LockConflict,
    LockHold,
    Queued,
    SpaceSession,
    diff_lines,
    error_code,
    kind_for_title,
    open_session,
    side_by_side,
    split_command,
)
from collab.config import load_config_text
from tests.live import until

pytestmark = pytest.mark.timeout(120)
FAST = LeasePolicy(ttl_s=3.0, renew_every_s=0.5, stop_margin_s=0.5)


@asynccontextmanager
async def backend(tmp: Path) -> AsyncIterator[RunningBackend]:
    async with running_backend(tmp / "data", functions="collab.backend.model") as b:
        yield b


@asynccontextmanager
async def client(b: RunningBackend, handle: str, agent: bool = False) -> AsyncIterator[ConvexClient]:
    async with ConvexClient(b.url, auth=b.mint_token(handle, agent=agent)) as c:
        await c.mutation(api.actors.ensure, {})
        yield c


async def _space(owner: ConvexClient, *others: str) -> tuple[str, str]:
    space = str(await owner.mutation(api.spaces.create, {"name": "s"}))
    for h in others:
        await owner.mutation(api.spaces.addMember, {"spaceId": space, "handle": h, "kind": "human", "role": "editor"})
    art = str(await owner.mutation(api.artifacts.create, {"spaceId": space, "title": "Doc", "kind": "markdown",
                                                         "content": "v1"}))
    return space, art


async def test_hold_conflict_queue_grant_and_save(tmp_path: Path) -> None:
    async with backend(tmp_path) as b, client(b, "ann") as ann, client(b, "bo") as bo:
        _, art = await _space(ann, "bo")
        me_bo = (await bo.query(api.actors.me, {}))["_id"]
        first = LockHold(ann, art, FAST)
        assert await first.acquire() is first and first.held and first.token == 1
        second = LockHold(bo, art, FAST, me_actor_id=me_bo, key_prefix="bo-edit")
        conflict = await second.acquire()
        assert isinstance(conflict, LockConflict) and conflict.handle == "ann" and conflict.kind == "human"
        queued = await second.acquire(wait=True)
        assert isinstance(queued, Queued) and queued.position == 1
        waiting = asyncio.ensure_future(second.wait_granted())
        saved = await first.save("v2")
        assert saved["version"] == 2 and first.ended and not first.held
        assert await waiting is True and second.held and second.token == 2
        again = await second.save("v3")  # the same key: a retry would not save twice
        assert again["version"] == 3
        assert (await ann.query(api.artifacts.get, {"artifactId": art}))["content"] == "v3"


async def test_a_refused_renewal_loses_the_hold_and_says_who(tmp_path: Path) -> None:
    async with backend(tmp_path) as b, client(b, "ann") as ann, client(b, "bo") as bo:
        _, art = await _space(ann, "bo")
        hold = LockHold(bo, art, FAST)
        lost: list[LockHold] = []
        hold.on_lost.append(lost.append)
        assert await hold.acquire() is hold
        await ann.mutation(api.locks.forceRelease, {"artifactId": art, "reason": "lunch"})
        await asyncio.wait_for(until_lost(hold), 30)
        assert lost == [hold] and not hold.held and hold.lost_reason == "forceReleased"
        await hold.release()  # nothing to release: no error
        with pytest.raises(Exception) as caught:
            await hold.save("late")
        assert error_code(caught.value) == "STALE_TOKEN"


async def until_lost(hold: LockHold) -> None:
    while hold.lost_reason is None:
        await asyncio.sleep(0.05)


async def test_a_holder_cut_off_stops_before_its_lease_ends(tmp_path: Path) -> None:
    """A partitioned holder: renewals never get through, so the hold counts as lost on the
    holder's own clock (before the lease can end on the backend), and the writer stops."""
    async with running_backend(tmp_path / "data", functions="collab.backend.model") as b, client(b, "ann") as ann:
        _, art = await _space(ann)
        hold = LockHold(ann, art, FAST)
        assert await hold.acquire() is hold
        await b.backend.stop()  # nothing answers any more: the renewal hangs until its deadline
        await asyncio.wait_for(until_lost(hold), 30)
        # Lost on its own clock (no answer could have said so), so the writer stops.
        assert hold.lost_reason == "expired (no renewal got through)" and not hold.held


async def test_open_session_creates_then_finds_and_joins_local(tmp_path: Path) -> None:
    config = load_config_text('[identity]\nhandle = "ann"\ndisplay_name = "Ann A."\n')
    async with backend(tmp_path) as b, client(b, "ann") as ann, client(b, "bo") as bo:
        s1 = await open_session(ann, config, handle="ann", space_name="team")
        assert s1.created and s1.role == "owner" and s1.me["name"] == "Ann A."
        agents = {m["handle"] for m in await ann.query(api.spaces.members, {"spaceId": s1.space_id})
                  if m["kind"] == "agent"}
        assert agents == {a.handle for a in config.enabled_agents()}
        s2 = await open_session(ann, config, handle="ann", space_name="team")
        assert s2.space_id == s1.space_id and not s2.created
        joined: list[str] = []

        async def join(name: str) -> bool:  # what the embedded backend's local trust does
            joined.append(name)
            await ann.mutation(api.spaces.addMember, {"spaceId": s1.space_id, "handle": "bo", "kind": "human",
                                                      "role": "editor"})
            return True

        s3 = await open_session(bo, config, handle="bo", space_name="team", join_local=join)
        assert joined == ["team"] and s3.space_id == s1.space_id and s3.role == "editor" and not s3.created


async def test_discussion_send_revises_the_artifact_on_screen(tmp_path: Path) -> None:
    config = load_config_text('[identity]\nhandle = "ann"\n')
    async with backend(tmp_path) as b, client(b, "ann") as ann:
        session = await open_session(ann, config, handle="ann", space_name="s")
        art = await session.artifacts.create("notes.py")
        assert (await session.artifacts.get(art))["kind"] == "code"
        session.set_presence(artifact_id=art)
        await session.discussion.send("/revise @edwin make it shorter")
        runs = await ann.query(api.runs.list, {"spaceId": session.space_id})
        assert [(r["kind"], r["artifactId"]) for r in runs] == [("revise", art)]
        with pytest.raises(ValueError, match="Unknown command"):
            await session.discussion.send("/frobnicate @edwin")
        stopped = await session.discussion.cancel_runs()
        assert stopped == ["edwin"]
        await session.close()


async def test_discussion_pages_older_messages_and_from_the_start(tmp_path: Path) -> None:
    """The log's paging: ``older(before)`` is the page just above a message (the same page
    whenever asked), ``from_start`` walks from the first message by cursor."""
    config = load_config_text('[identity]\nhandle = "ann"\n')
    async with backend(tmp_path) as b, client(b, "ann") as ann:
        session = await open_session(ann, config, handle="ann", space_name="s")
        view = session.discussion
        for start in range(1, 251, 50):
            await asyncio.gather(*(view.post(f"m{n}") for n in range(start, start + 50)))
        tail = await ann.query(api.messages.list, {"spaceId": session.space_id})
        assert [m["body"] for m in tail] == [f"m{n}" for n in range(151, 251)]

        above = await view.older(tail[0]["_creationTime"])
        assert [m["body"] for m in above.messages] == [f"m{n}" for n in range(51, 151)] and not above.done
        assert await view.older(tail[0]["_creationTime"]) == above  # the same page again
        top = await view.older(above.messages[0]["_creationTime"])
        assert [m["body"] for m in top.messages] == [f"m{n}" for n in range(1, 51)] and top.done
        assert (await view.older(top.messages[0]["_creationTime"], 10)).messages == []
        await view.post("m251")  # a new message shifts no page
        assert await view.older(tail[0]["_creationTime"]) == above

        first = await view.from_start()
        assert [m["body"] for m in first.messages] == [f"m{n}" for n in range(1, 101)] and not first.done
        second = await view.from_start(first.cursor)
        assert [m["body"] for m in second.messages] == [f"m{n}" for n in range(101, 201)] and not second.done
        last = await view.from_start(second.cursor, 60)
        assert [m["body"] for m in last.messages] == [f"m{n}" for n in range(201, 252)] and last.done
        await session.close()


def test_session_facades_share_the_session() -> None:
    config = load_config_text("")
    fake: Any = type("C", (), {"state": None})()
    s = SpaceSession(fake, config, space_id="s1", space_name="main", me={"_id": "a1", "handle": "ann"})
    assert s.artifacts.session is s and s.discussion.session is s and s.handle == "ann" and s.actor_id == "a1"


def test_composer_commands() -> None:
    assert split_command("hello @edwin") == ("reply", "hello @edwin")
    assert split_command("/revise @edwin #doc tighten") == ("revise", "@edwin #doc tighten")
    with pytest.raises(ValueError, match="needs an @agent"):
        split_command("/edit #doc")


def test_diffs_as_data() -> None:
    lines = diff_lines("a\nb\nc\n", "a\nB\nc\n", "v1", "v2")
    assert [(d.kind, d.text) for d in lines] == [("head", "--- v1"), ("head", "+++ v2"), ("hunk", "@@ -1,3 +1,3 @@"),
                                                 ("same", " a"), ("del", "-b"), ("add", "+B"), ("same", " c")]
    assert diff_lines("same", "same", "a", "b") == []
    rows = side_by_side("a\nb\nc", "a\nx\ny\nc")
    assert [(l.kind if l else None, r.kind if r else None) for l, r in rows] == [
        ("same", "same"), ("del", "add"), (None, "add"), ("same", "same")]


def test_kind_for_title() -> None:
    assert kind_for_title("main.py") == ("code", "python")
    assert kind_for_title("Test plan") == ("markdown", None)
    assert kind_for_title("notes.v2") == ("markdown", None)
