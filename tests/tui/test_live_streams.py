"""Agents' output at the UI cadence: the discussion and the document show the live tail of a
stream (``streams:push``, ~30 ms) before the durable text (``messages:append`` /
``drafts:append``, ~250 ms) has it. Real backend, an agent's own token, real pushes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from collab.backend.model._live import merge as backend_merge
from collab.backend.testing import BackendProcess
from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.widgets.document_view import DocumentView
from collab.widgets.message_log import MessageLog
from collab.backend_client.space import draft_row_matches, merge

from .conftest import add_doc, seed_space, space_ready, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("durable,row", [
    ("", None), ("abc", None), ("", {"base": 0, "text": "hel"}), ("hel", {"base": 0, "text": "hello"}),
    ("hello", {"base": 0, "text": "hel"}), ("hello", {"base": 5, "text": " world"}),
    ("hello wo", {"base": 5, "text": " world"}), ("hi", {"base": 5, "text": " world"}),
    ("hello world!!", {"base": 5, "text": " world"}),
])
def test_merge_is_the_backends_rule(durable: str, row: dict[str, Any] | None) -> None:
    assert merge(durable, row) == backend_merge(durable, row)


def test_a_tail_of_another_hold_is_not_the_drafts() -> None:
    assert draft_row_matches({"epoch": 3}, {"epoch": 3})
    assert not draft_row_matches({"epoch": 3}, {"epoch": 2})
    assert not draft_row_matches(None, {"epoch": 3})


@asynccontextmanager
async def _agent(backend: BackendProcess, handle: str) -> AsyncIterator[ConvexClient]:
    """A connected client acting as the agent ``handle`` (its actor row ensured)."""
    async with ConvexClient(backend.url, auth=backend.mint_token(handle, agent=True)) as agent:
        await agent.mutation(api.actors.ensure, {})
        yield agent


async def _agent_member(c: ConvexClient, space_id: str, ids: dict[str, str], backend: Any) -> None:
    ids["doc"] = await add_doc(c, space_id, "Plan", "old text\n")
    await c.mutation(api.spaces.addMember, {"spaceId": space_id, "handle": "quinn", "kind": "agent",
                                            "role": "editor", "name": "Quinn"})


def _log_text(log: MessageLog, index: int) -> str:
    return log.message_text(index)


async def test_reply_tail_shows_before_the_durable_append(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _agent_member)
    app = seeded.app()
    async with _agent(backend, "quinn") as agent:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False))
            log = app.screen.query_one(MessageLog)
            mid = await agent.mutation(api.messages.post, {"spaceId": seeded.space_id, "body": "",
                                                           "streaming": True})
            key = secrets.token_urlsafe(18)
            sid = await agent.mutation(api.streams.open, {"spaceId": seeded.space_id, "kind": "message",
                                                          "key": key, "messageId": mid})
            await wait_for(pilot, lambda: len(log.messages) == 1)
            # Only the UI lane so far: nothing durable, the pane shows the tail with a cursor.
            await agent.mutation(api.streams.push, {"chunks": [{"streamId": sid, "key": key, "text": "Two gaps",
                                                                "seq": 1}]})
            await wait_for(pilot, lambda: "Two gaps▌" in _log_text(log, 0))
            assert log.messages[0]["body"] == "" and "replying" in _log_text(log, 0)
            await agent.mutation(api.streams.push, {"chunks": [{"streamId": sid, "key": key, "text": ": lease",
                                                                "seq": 2}]})
            await wait_for(pilot, lambda: "Two gaps: lease▌" in _log_text(log, 0))
            # The persistence lane catches up and the writer raises base: same text on screen.
            await agent.mutation(api.messages.append, {"messageId": mid, "text": "Two gaps: lease"})
            await agent.mutation(api.streams.push, {"chunks": [{"streamId": sid, "key": key, "text": " expiry",
                                                                "seq": 3, "base": 15}]})
            await wait_for(pilot, lambda: "Two gaps: lease expiry▌" in _log_text(log, 0))
            await agent.mutation(api.messages.finish, {"messageId": mid, "state": "done",
                                                       "body": "Two gaps: lease expiry."})
            await wait_for(pilot, lambda: "Two gaps: lease expiry." in _log_text(log, 0))
            text = _log_text(log, 0)
            assert "▌" not in text and "replying" not in text  # finished: no cursor


async def test_agent_draft_grows_in_the_document(backend: BackendProcess) -> None:
    seeded = await asyncio.to_thread(seed_space, backend, _agent_member)
    app = seeded.app()
    async with _agent(backend, "quinn") as agent:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: space_ready(app, presence=False))
            doc = app.screen.query_one(DocumentView)
            aid = seeded.ids["doc"]
            grant = await agent.mutation(api.locks.acquire, {"artifactId": aid, "ttlMs": 60_000})
            key = secrets.token_urlsafe(18)
            sid = await agent.mutation(api.streams.open, {"spaceId": seeded.space_id, "kind": "draft", "key": key,
                                                          "artifactId": aid, "token": grant["token"]})
            await agent.mutation(api.streams.push, {"chunks": [{"streamId": sid, "key": key, "text": "# New",
                                                                "seq": 1}]})
            await wait_for(pilot, lambda: doc.draft_text == "# New")  # no drafts:append yet
            body = str(doc.query_one("#doc-body").render())
            header = str(doc.query_one("#doc-header").render())
            assert "# New▌" in body and "@quinn is writing a draft" in header
            await agent.mutation(api.drafts.append, {"artifactId": aid, "token": grant["token"], "text": "# New",
                                                     "seq": 1})
            await agent.mutation(api.streams.push, {"chunks": [{"streamId": sid, "key": key, "text": " plan",
                                                                "seq": 2, "base": 5}]})
            await wait_for(pilot, lambda: doc.draft_text == "# New plan")
            await agent.mutation(api.artifacts.save, {"artifactId": aid, "token": grant["token"],
                                                      "content": "# New plan\n"})
            await wait_for(pilot, lambda: doc.draft_text is None and (doc.artifact or {}).get("version") == 2)
            assert "is writing" not in str(doc.query_one("#doc-header").render())
