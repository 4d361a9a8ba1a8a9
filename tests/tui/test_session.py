"""The core without a terminal: bootstrap (space, default agents, a second local user joining)
and the session's edit cycle, against a real backend process."""

from __future__ import annotations

import asyncio

import pytest

from collab.backend.testing import BackendProcess
from collab.backend_client.api import api
from collab.backend_client.space import LockConflict, LockHold
from collab.tui.bootstrap import connect

from .conftest import make_config

pytestmark = pytest.mark.timeout(60)


async def test_two_users_starting_at_once_share_one_space(backend: BackendProcess) -> None:
    """Two panes started in the same second (seen in tmux: each made its own "main", and bob
    never saw alice): opening-or-creating a local space is one step at a time."""
    alice, bob = await asyncio.gather(connect(make_config(backend.data_dir, "alice"), space_name="twins"),
                                      connect(make_config(backend.data_dir, "bob"), space_name="twins"))
    try:
        assert alice.space_id == bob.space_id
        assert sum(s["name"] == "twins" for s in await alice.client.query(api.spaces.list, {})) == 1
    finally:
        for s in (alice, bob):
            await s.disconnect()


async def test_first_connect_creates_space_with_default_agents_and_bob_joins(backend: BackendProcess) -> None:
    alice = await connect(make_config(backend.data_dir, "alice"), space_name="team")
    bob = await connect(make_config(backend.data_dir, "bob"), space_name="team")
    try:
        assert alice.space_id == bob.space_id  # bob joined alice's space, not a new one
        members = await alice.client.query(api.spaces.members, {"spaceId": alice.space_id})
        agents = sorted(m["handle"] for m in members if m["kind"] == "agent")
        assert agents == ["dara", "edwin", "polly", "quinn", "rhea"]
        assert {"alice", "bob"} <= {m["handle"] for m in members}

        aid = await alice.artifacts.create("Spec", content="v1")
        hold = await alice.artifacts.acquire(aid)
        assert isinstance(hold, LockHold)
        conflict = await bob.artifacts.acquire(aid)
        assert isinstance(conflict, LockConflict) and conflict.handle == "alice" and conflict.kind == "human"
        saved = await alice.artifacts.save("v2 text")
        assert saved["version"] == 2 and alice.artifacts.hold is None
        art = await bob.artifacts.get(aid)
        assert art["content"] == "v2 text" and not art["lock"]["held"]
    finally:
        for s in (alice, bob):
            await s.disconnect()
