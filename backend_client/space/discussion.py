"""The discussion facade: the space's messages with their live tails, the outline, posting
(with composer commands such as ``/revise``), decisions, and stopping the agents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collab.backend_client.api import api
from collab.backend_client.live_query import LiveQuery
from collab.backend_client.space.variations import parse_vary
from collab.wire.text import parse_mentions

if TYPE_CHECKING:
    from collab.backend_client.space.session import SpaceSession

__all__ = ["COMMANDS", "PAGE", "DiscussionView", "MessagePage", "Sent", "split_command"]

PAGE = 100  # messages a page of the log holds (``messages:list``'s live tail is as long)

# Composer commands: "/revise @edwin #test-plan tighten the intro" asks the mentioned agents to
# revise the artifact (under its lock) instead of replying in the thread; "/vary 5 #test-plan
# make it shorter" starts a round of variations of it; "/pipeline writing #test-plan" sends it
# through a flow's pipeline (docs/PIPELINE.md).
COMMANDS = {"/revise": "revise", "/edit": "revise", "/vary": "vary", "/pipeline": "pipeline"}


@dataclass
class Sent:
    """What the composer's text became: a message, a round of variations, a pipeline."""

    kind: str  # "message", "variations" or "pipeline"
    id: str  # the messageId, the roundId or the pipelineId
    artifact_id: str | None = None


@dataclass(frozen=True)
class MessagePage:
    """One page of a long discussion, for the log that pages it in (``messages:page``):
    ``messages`` oldest first; ``cursor`` continues an ``order: "asc"`` walk; ``done`` when
    nothing lies beyond it (no older message for :meth:`DiscussionView.older`, no newer one
    for :meth:`DiscussionView.from_start`)."""

    messages: list[dict[str, Any]]
    cursor: str
    done: bool


def split_command(body: str) -> tuple[str, str]:
    """(task, message body) of what was typed; ValueError names the commands for a typo."""
    if not body.startswith("/"):
        return "reply", body
    head, _, rest = body.partition(" ")
    task = COMMANDS.get(head.lower())
    if task is None:
        raise ValueError(f"Unknown command {head}: try /revise @agent #artifact what to change, "
                         "/vary 3 #artifact what to change, or /pipeline <flow> #artifact")
    if task == "pipeline":
        if not rest.strip() or rest.strip().startswith("#"):
            raise ValueError(f"{head} needs a flow, e.g. {head} writing #test-plan")
        return task, rest.strip()
    if task == "revise" and "@" not in rest:
        raise ValueError(f"{head} needs an @agent to do it, e.g. {head} @edwin #test-plan make it shorter")
    if task == "vary" and not rest.strip():
        raise ValueError("/vary needs an #artifact and what to change, e.g. /vary 3 #test-plan make it shorter")
    return task, rest.strip()


class DiscussionView:
    def __init__(self, session: SpaceSession) -> None:
        self.session = session
        self.client = session.client

    # ------------------------------------------------------------------ live queries

    def watch_messages(self, limit: int = PAGE) -> LiveQuery[Any]:
        """The live tail: the newest ``limit`` messages, oldest first."""
        return self.client.watch(api.messages.list, {"spaceId": self.session.space_id, "limit": limit})

    def watch_streams(self) -> LiveQuery[Any]:
        """Live tails of every stream in the space (changes every ~30 ms while agents write)."""
        return self.client.watch(api.streams.forSpace, {"spaceId": self.session.space_id})

    def watch_outline(self) -> LiveQuery[Any]:
        return self.client.watch(api.messages.outline, {"spaceId": self.session.space_id})

    async def all_messages(self, page_size: int = 100) -> list[dict[str, Any]]:
        """Every message of the space, oldest first (``messages:page`` until done): what an
        export writes, however long the discussion."""
        newest_first: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            got = await self.client.query(api.messages.page, {"spaceId": self.session.space_id,
                                                              "numItems": page_size, "cursor": cursor})
            newest_first += got["page"]
            if got["isDone"]:
                return newest_first[::-1]
            cursor = got["continueCursor"]

    async def older(self, before: float, n: int = PAGE) -> MessagePage:
        """The ``n`` messages just older than ``before`` (a ``_creationTime``), oldest first:
        the page above the oldest one the log holds. Asked again with the same arguments it is
        the same page (pages are keyed by creation time; new messages never shift them)."""
        got = await self.client.query(api.messages.page, {"spaceId": self.session.space_id, "numItems": n,
                                                          "cursor": None, "before": before})
        return MessagePage(got["page"][::-1], str(got["continueCursor"]), bool(got["isDone"]))

    async def from_start(self, cursor: str | None = None, n: int = PAGE) -> MessagePage:
        """The first ``n`` messages of the discussion (``cursor`` None: where ``Home`` goes),
        or the ``n`` after a page of this walk (``cursor`` = that page's ``cursor``)."""
        got = await self.client.query(api.messages.page, {"spaceId": self.session.space_id, "numItems": n,
                                                          "cursor": cursor, "order": "asc"})
        return MessagePage(got["page"], str(got["continueCursor"]), bool(got["isDone"]))

    # ------------------------------------------------------------------ writes

    async def post(self, body: str, artifact_id: str | None = None, task: str = "reply") -> str:
        """Post to the space's discussion. ``task="revise"`` asks the mentioned agents to revise
        the first ``#artifact`` of the body (or ``artifact_id``) under its lock."""
        args: dict[str, Any] = {"spaceId": self.session.space_id, "body": body}
        if artifact_id:
            args["artifactId"] = artifact_id
        if task != "reply":
            args["task"] = task
        return str(await self.client.mutation(api.messages.post, args))

    async def send(self, typed: str) -> Sent:
        """What the composer sends: a plain message, or a command (``/revise @agent ...``; with
        no ``#artifact`` it revises the artifact this terminal shows; ``/vary [N] #artifact
        ...`` starts a round of variations; ``/pipeline <flow> [#artifact]`` starts a
        pipeline). ValueError for a bad command, before anything is sent."""
        task, text = split_command(typed.strip())
        if task == "vary":
            n, slug, instruction = parse_vary(text)
            views = self.session.variations
            got = await views.start_by_slug(slug, instruction, views.plan(n=n))
            return Sent("variations", str(got["roundId"]), str(got["artifactId"]))
        if task == "pipeline":
            pid, artifact = await self.session.pipeline.start_command(text, self.session.presence.artifact_id)
            return Sent("pipeline", pid, str(artifact["_id"]))
        target = self.session.presence.artifact_id if task == "revise" and "#" not in text else None
        return Sent("message", await self.post(text, artifact_id=target, task=task))

    def unanswerable(self, body: str) -> list[str]:
        """One sentence per mentioned agent whose model needs an API key that is not set: it
        cannot answer, and the user should hear it now rather than wait."""
        cfg = self.session.config
        agents = {a.handle: a for a in cfg.enabled_agents()}
        handles = {m.lower() for m in parse_mentions(body)}
        targets = list(agents) if "all" in handles else [h for h in handles if h in agents]
        out = []
        for h in targets:
            problem = cfg.model_for(agents[h]).missing_key()
            if problem:
                out.append(f"@{h} cannot reply: {problem}")
        return out

    async def mark_decision(self, message_id: str, decision: bool) -> None:
        await self.client.mutation(api.messages.markDecision, {"messageId": message_id, "decision": decision})

    async def cancel_runs(self) -> list[str]:
        """Cancel the space's unfinished agent runs (one mutation); the reason (who stopped
        them) becomes the text of their streaming replies. Returns the handles stopped."""
        stopped = await self.client.mutation(api.runs.cancelAll, {"spaceId": self.session.space_id})
        return [str(r["agentHandle"]) for r in stopped]
