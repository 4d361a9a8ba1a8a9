"""The artifacts facade: what the tree, the document view, the editor and the history need
(live queries of the space's artifacts and locks, the selected artifact with its draft and
live tail, versions), the metadata writes (create, rename, tag, delete, force release) and the
edit cycle of this terminal under the artifact's lock."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from collab.backend_client.api import api
from collab.backend_client.errors import ConvexError
from collab.backend_client.live_query import LiveQuery
from collab.backend_client.space.errors import LockConflict, Queued
from collab.backend_client.space.locks import LeasePolicy, LockHold

if TYPE_CHECKING:
    from collab.backend_client.space.session import SpaceSession

__all__ = ["ArtifactsView", "kind_for_title"]

CODE_SUFFIXES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".rs": "rust", ".go": "go",
                 ".json": "json", ".toml": "toml", ".sh": "bash", ".c": "c"}


def kind_for_title(title: str) -> tuple[str, str | None]:
    """(kind, language) of a new artifact from its title: ``main.py`` is Python code, anything
    without a known code suffix is a Markdown document."""
    language = CODE_SUFFIXES.get(PurePath(title).suffix.lower())
    return ("code", language) if language else ("markdown", None)


class ArtifactsView:
    def __init__(self, session: SpaceSession) -> None:
        self.session = session
        self.client = session.client
        # The hold of the artifact this terminal is editing (one editor per terminal).
        self.hold: LockHold | None = None
        self.on_hold_lost: list[Callable[[LockHold], None]] = []

    # ------------------------------------------------------------------ live queries

    def watch_list(self) -> LiveQuery[Any]:
        return self.client.watch(api.artifacts.list, {"spaceId": self.session.space_id})

    def watch_locks(self) -> LiveQuery[Any]:
        return self.client.watch(api.locks.list, {"spaceId": self.session.space_id})

    def watch(self, artifact_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.artifacts.get, {"artifactId": artifact_id})

    def watch_draft(self, artifact_id: str) -> LiveQuery[Any]:
        return self.client.watch(api.drafts.get, {"artifactId": artifact_id})

    def watch_draft_stream(self, artifact_id: str) -> LiveQuery[Any]:
        """The live tail (~30 ms) of a draft an agent streams into the artifact."""
        return self.client.watch(api.streams.forArtifact, {"artifactId": artifact_id})

    def watch_history(self, artifact_id: str, limit: int = 100) -> LiveQuery[Any]:
        return self.client.watch(api.artifacts.history, {"artifactId": artifact_id, "limit": limit,
                                                         "includeContent": True})

    async def history_page(self, artifact_id: str, cursor: str | None = None,
                           n: int = 100) -> tuple[list[dict[str, Any]], str | None]:
        """One page of versions with their content, newest first (``artifacts:historyPage``), and
        the cursor of the next page (None once v1 is in): what lies past ``watch_history``."""
        got = await self.client.query(api.artifacts.historyPage, {"artifactId": artifact_id, "numItems": n,
                                                                  "cursor": cursor, "includeContent": True})
        return [dict(v) for v in got["page"]], None if got["isDone"] else str(got["continueCursor"])

    # ------------------------------------------------------------------ reads and writes

    async def summaries(self) -> list[dict[str, Any]]:
        """The space's artifacts without their content (one-shot ``artifacts:list``)."""
        return [dict(a) for a in await self.client.query(api.artifacts.list, {"spaceId": self.session.space_id})]

    async def get(self, artifact_id: str) -> dict[str, Any]:
        return dict(await self.client.query(api.artifacts.get, {"artifactId": artifact_id}))

    async def version(self, artifact_id: str, version: int) -> dict[str, Any]:
        return dict(await self.client.query(api.artifacts.version, {"artifactId": artifact_id, "version": version}))

    async def create(self, title: str, kind: str | None = None, content: str = "",
                     language: str | None = None) -> str:
        """A new artifact; ``kind`` (and ``language``) default from the title's suffix."""
        if kind is None:
            kind, language = kind_for_title(title)
        args: dict[str, Any] = {"spaceId": self.session.space_id, "title": title, "kind": kind, "content": content}
        if language:
            args["language"] = language
        return str(await self.client.mutation(api.artifacts.create, args))

    async def update(self, artifact_id: str, **fields: Any) -> None:
        """Title, tags, language or kind (no content: that goes through the lock)."""
        await self.client.mutation(api.artifacts.update, {"artifactId": artifact_id, **fields})

    async def force_release(self, artifact_id: str, reason: str) -> None:
        await self.client.mutation(api.locks.forceRelease, {"artifactId": artifact_id, "reason": reason})

    async def delete(self, artifact_id: str) -> dict[str, Any]:
        """Delete the artifact (``artifacts:delete``): ``{deleted, title, slug, version}``. A lock
        someone else holds refuses it (``LOCKED``, a :class:`ConvexError`)."""
        return dict(await self.client.mutation(api.artifacts.delete, {"artifactId": artifact_id}))

    # ------------------------------------------------------------------ the edit cycle

    def _new_hold(self, artifact_id: str) -> LockHold:
        hold = LockHold(self.client, artifact_id, LeasePolicy.from_config(self.session.config.locks),
                        me_actor_id=self.session.actor_id)
        hold.on_lost.append(self._lost)
        return hold

    def _lost(self, hold: LockHold) -> None:
        for cb in list(self.on_hold_lost):
            cb(hold)

    async def acquire(self, artifact_id: str, *, wait: bool = False) -> LockHold | LockConflict | Queued:
        """Take the lock for editing. ``wait=False``: a held lock is a :class:`LockConflict`
        (who holds it and since when); ``wait=True`` joins the FIFO queue (the lock is handed
        over with a "lock granted" notification; acquiring again then returns the token)."""
        hold = self._new_hold(artifact_id)
        got = await hold.acquire(wait=wait)
        if got is hold:
            await self.adopt(hold)
        return got

    async def queue_for(self, artifact_id: str) -> tuple[LockHold | LockConflict | Queued, LockHold]:
        """Join the lock's FIFO queue (or take it if it is free): ``(answer, hold)``. When the
        answer is :class:`Queued`, ``await hold.wait_granted()`` then :meth:`adopt` it."""
        hold = self._new_hold(artifact_id)
        got = await hold.acquire(wait=True)
        if got is hold:
            await self.adopt(hold)
        return got, hold

    async def adopt(self, hold: LockHold) -> None:
        """``hold`` (granted) is this terminal's edit: the one the editor saves or releases."""
        hold.base_version = int((await self.get(hold.artifact_id)).get("version", 0))
        if self.hold is not None and self.hold is not hold:
            self.hold.end()
        self.hold = hold

    async def leave_queue(self, artifact_id: str) -> None:
        await self.client.mutation(api.locks.leave, {"artifactId": artifact_id})

    def check_lock_row(self, artifact: dict[str, Any]) -> None:
        """Each new ``artifacts:get`` value while editing: a lock row that shows another
        holder (or none) means the hold is lost, before the next renewal says so."""
        if self.hold is not None:
            self.hold.check_row(artifact, self.session.handle)

    async def save(self, content: str, message: str | None = None) -> dict[str, Any]:
        hold = self.hold
        if hold is None:
            raise RuntimeError("not editing")
        result = await hold.save(content, message)
        self.hold = None
        return result

    async def cancel_edit(self, keep_draft: bool = False) -> None:
        """Stop editing: release the lock (unless it is already lost)."""
        hold, self.hold = self.hold, None
        if hold is None:
            return
        with contextlib.suppress(ConvexError):
            await hold.release(keep_draft=keep_draft)

    async def restore(self, artifact_id: str, version: int) -> dict[str, Any]:
        """Restore = lock, restore (a new version with the old content), which releases.
        ``{"conflict": LockConflict}`` when someone else holds the lock."""
        got = await self.acquire(artifact_id)
        if not isinstance(got, LockHold):
            return {"conflict": got}
        try:
            result = await got.restore(version)
        except BaseException:
            await self.cancel_edit()
            raise
        if self.hold is got:
            self.hold = None
        return result
