"""Discussion messages: mentions (``@handle``, ``@all``), artifact refs (``#slug``), threads,
streamed agent replies, decisions and open questions.

Parsing rule (also in docs/API.md): ``@handle`` = ``@`` not preceded by a word character,
then ``[A-Za-z0-9][A-Za-z0-9_.-]*`` minus trailing ``. - _ /``; it counts when a member of
the space has that handle (``@all`` = every member but the author). ``#slug`` = ``#`` not
preceded by a word character, then ``[A-Za-z0-9][A-Za-z0-9_./-]*`` minus trailing
punctuation, lowercased; it counts when an artifact of the space has that slug. Anything else
stays plain text.
"""

from __future__ import annotations

from typing import Any

from collab.backend.model import _live
from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import fail, invalid
from collab.backend.model._util import get_in, notify, parse_mentions, parse_refs
from collab.backend.model import _usage
from collab.backend.model.runs import insert_run
from collab.backend.validators import v

MAX_BODY = 200_000
MAX_AGENT_RUNS = 5  # agents one message sets to work (DESIGN: up to 5 agents)
TASK = v.union(v.literal("reply"), v.literal("revise"))
DEFAULT_LIMIT = 100


def _resolve(ctx: Any, space_id: str, body: str, author_id: str) -> tuple[list[str], bool, list[str]]:
    mentions: list[str] = []
    mentions_all = False
    for handle in parse_mentions(body):
        if handle.lower() == "all":
            mentions_all = True
            continue
        for m in ctx.db.query("members").with_index(
                "by_space_handle", lambda q, h=handle: q.eq("spaceId", space_id).eq("handle", h)).collect():
            if m["actorId"] not in mentions:
                mentions.append(m["actorId"])
    refs: list[str] = []
    for slug in parse_refs(body):
        a = ctx.db.query("artifacts").with_index(
            "by_space_slug", lambda q, s=slug: q.eq("spaceId", space_id).eq("slug", s)).first()
        if a is not None and a["_id"] not in refs:
            refs.append(a["_id"])
    return mentions, mentions_all, refs


def _notify_mentions(ctx: Any, msg: dict[str, Any]) -> None:
    targets = [a for a in msg["mentions"] if a != msg["authorId"]]
    if msg["mentionsAll"]:
        for m in ctx.db.query("members").with_index("by_space", lambda q: q.eq("spaceId", msg["spaceId"])).collect():
            if m["actorId"] != msg["authorId"] and m["actorId"] not in targets:
                targets.append(m["actorId"])
    preview = msg["body"][:140]
    for actor_id in targets:
        notify(ctx, actor_id, msg["spaceId"], "mention", f"@{msg['authorHandle']}: {preview}",
               messageId=msg["_id"])


def _checked_refs(ctx: Any, args: dict[str, Any], space_id: str) -> None:
    """``threadId`` / ``artifactId`` / ``runId`` arguments must name documents of this space."""
    for key, table in (("threadId", "messages"), ("artifactId", "artifacts"), ("runId", "runs")):
        if key in args:
            doc = get_in(ctx, table, args[key])
            if doc is None or doc["spaceId"] != space_id:
                fail("NOT_FOUND", f"{table[:-1]} {args[key]} is not in this space", what=table[:-1], id=args[key])


def _row(ctx: Any, args: dict[str, Any], body: str, state: str) -> dict[str, Any]:
    """A new message of the caller in ``args["spaceId"]``, mentions and refs parsed."""
    caller, space_id = ctx.caller, args["spaceId"]
    mentions, mentions_all, refs = _resolve(ctx, space_id, body, caller.actor_id)
    row: dict[str, Any] = {"spaceId": space_id, "authorId": caller.actor_id, "authorKind": caller.kind,
                           "authorHandle": caller.handle, "body": body, "mentions": mentions,
                           "mentionsAll": mentions_all, "refs": refs, "state": state,
                           "decision": False, "openQuestion": False}
    if "threadId" in args:
        thread = ctx.db.get(args["threadId"])
        row["threadId"] = thread.get("threadId", thread["_id"])  # replies to replies join the root
    for key in ("artifactId", "runId"):
        if key in args:
            row[key] = args[key]
    return row


@mutation(args={"spaceId": v.id("spaces"), "body": v.string(), "threadId": v.optional(v.id("messages")),
                "artifactId": v.optional(v.id("artifacts")), "streaming": v.optional(v.boolean()),
                "runId": v.optional(v.id("runs")), "task": v.optional(TASK)}, policy="editor", scope="space")
def post(ctx: Any, args: dict[str, Any]) -> str:
    """Post a message (``streaming: true`` opens an agent reply to fill with ``messages:append``;
    ``messages:openReply`` does that and opens its live stream in one step). Mentions and refs
    are parsed from the body. A human's message that mentions agents (``@handle``, ``@all``)
    queues one run per mentioned agent (at most 5), in this transaction: ``task: "reply"``
    (default) answers in the thread, ``task: "revise"`` revises the first ``#artifact`` (or the
    message's topic artifact). Returns the messageId."""
    caller, space_id = ctx.caller, args["spaceId"]
    if len(args["body"]) > MAX_BODY:
        invalid(f"message body is longer than {MAX_BODY} characters")
    if not args.get("streaming") and not args["body"].strip():
        invalid("message body is empty")
    _checked_refs(ctx, args, space_id)
    row = _row(ctx, args, args["body"], "streaming" if args.get("streaming") else "done")
    task = args.get("task", "reply")
    target = row["refs"][0] if row["refs"] else args.get("artifactId")
    if task == "revise" and target is None:
        invalid("a revise request needs an #artifact reference (or a topic artifact)")
    msg_id = ctx.db.insert("messages", row)
    if row["state"] == "done":
        _notify_mentions(ctx, {**row, "_id": msg_id})
        if caller.kind == "human":  # agents mentioning agents never start runs: no reply loops
            _queue_runs(ctx, {**row, "_id": msg_id}, task, target)
    return str(msg_id)


@mutation(args={"spaceId": v.id("spaces"), "key": v.string(), "threadId": v.optional(v.id("messages")),
                "artifactId": v.optional(v.id("artifacts")), "runId": v.optional(v.id("runs"))},
          policy="editor", scope="space")
def openReply(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Open an (agent's) streaming reply and its live stream in one transaction: readers see
    the empty reply and its tail row appear together, and a failure leaves neither. ``key`` is
    the stream's write capability for ``streams:push``. Fill it with ``messages:append`` (the
    persistence cadence) and end it with ``messages:finish``. Returns ``{messageId, streamId}``."""
    caller, space_id, now = ctx.caller, args["spaceId"], ctx.now()
    if len(args["key"]) < _live.MIN_KEY:
        invalid(f"key must be at least {_live.MIN_KEY} characters")
    _checked_refs(ctx, args, space_id)
    msg_id = ctx.db.insert("messages", _row(ctx, args, "", "streaming"))
    stream: dict[str, Any] = {"spaceId": space_id, "actorId": caller.actor_id, "actorHandle": caller.handle,
                              "kind": "message", "messageId": msg_id, "base": 0, "text": "", "seq": 0,
                              "key": args["key"], "startedAt": now, "updatedAt": now}
    if "runId" in args:
        stream["runId"] = args["runId"]
    return {"messageId": str(msg_id), "streamId": _live.open_row(ctx, stream)}


def _queue_runs(ctx: Any, msg: dict[str, Any], task: str, target: str | None) -> list[str]:
    """One run per agent the message addresses (mentioned, or every agent for ``@all``)."""
    agents = [m for m in ctx.db.query("members").with_index(
        "by_space", lambda q: q.eq("spaceId", msg["spaceId"])).collect()
        if m["kind"] == "agent" and m["role"] != "viewer" and m["actorId"] != msg["authorId"]]
    order = {a: i for i, a in enumerate(msg["mentions"])}
    chosen = sorted((m for m in agents if msg["mentionsAll"] or m["actorId"] in order),
                    key=lambda m: order.get(m["actorId"], len(order)))[:MAX_AGENT_RUNS]
    if chosen:  # asking agents costs money: refused (and nothing posted) past the budget
        _usage.check_budget(ctx, ctx.caller.space)
    thread = msg.get("threadId", msg["_id"])
    runs = []
    for m in chosen:
        kind, artifact = ("revise", target) if task == "revise" else ("discussion", None)
        runs.append(insert_run(ctx, msg["spaceId"], m["actorId"], kind,
                               {"task": task, "threadId": thread, "body": msg["body"]},
                               artifact_id=artifact, message_id=msg["_id"], max_attempts=1))
    return runs


def _own_streaming(ctx: Any) -> dict[str, Any]:
    msg = ctx.caller.target
    if msg["authorId"] != ctx.caller.actor_id:
        fail("NOT_AUTHOR", "only the author streams into this message")
    if msg["state"] != "streaming":
        fail("NOT_STREAMING", f"this message is {msg['state']}, not streaming", state=msg["state"])
    return msg


@mutation(args={"messageId": v.id("messages"), "text": v.string()}, policy="editor", scope="message")
def append(ctx: Any, args: dict[str, Any]) -> None:
    """Append streamed text (at the persistence cadence, never per token)."""
    msg = _own_streaming(ctx)
    if len(msg["body"]) + len(args["text"]) > MAX_BODY:
        invalid(f"message body is longer than {MAX_BODY} characters")
    ctx.db.patch(msg["_id"], {"body": msg["body"] + args["text"]})


@mutation(args={"messageId": v.id("messages"), "state": v.union(v.literal("done"), v.literal("failed")),
                "body": v.optional(v.string()), "error": v.optional(v.string())},
          policy="editor", scope="message")
def finish(ctx: Any, args: dict[str, Any]) -> None:
    """End a streamed message (optionally with its final body); mentions and refs of the final
    text are parsed and notified now."""
    msg = _own_streaming(ctx)
    body = args.get("body", msg["body"])
    mentions, mentions_all, refs = _resolve(ctx, msg["spaceId"], body, msg["authorId"])
    fields: dict[str, Any] = {"state": args["state"], "body": body, "mentions": mentions,
                              "mentionsAll": mentions_all, "refs": refs}
    if "error" in args:
        fields["error"] = args["error"]
    ctx.db.patch(msg["_id"], fields)
    _live.end_message(ctx, msg["_id"])  # final body and the end of the live tail: one commit
    if args["state"] == "done":
        _notify_mentions(ctx, {**msg, **fields})


@query(args={"spaceId": v.id("spaces"), "threadId": v.optional(v.id("messages")),
             "limit": v.optional(v.number())}, policy="viewer", scope="space")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest ``limit`` (default 100) messages of the space, or of a thread (its root
    first), oldest first. Older pages: ``messages:page``."""
    limit = int(args.get("limit", DEFAULT_LIMIT))
    if "threadId" in args:
        root = get_in(ctx, "messages", args["threadId"])
        if root is None or root["spaceId"] != args["spaceId"]:
            fail("NOT_FOUND", "no such thread in this space", what="message", id=args["threadId"])
        replies = ctx.db.query("messages").with_index(
            "by_thread", lambda q: q.eq("threadId", args["threadId"])).order("desc").take(limit)
        return [root] + replies[::-1]
    rows = ctx.db.query("messages").with_index(
        "by_space", lambda q: q.eq("spaceId", args["spaceId"])).order("desc").take(limit)
    return rows[::-1]


@query(args={"spaceId": v.id("spaces"), "numItems": v.number(), "cursor": v.union(v.string(), v.null())},
       policy="viewer", scope="space")
def page(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Newest-first pages for a virtualised log: ``{page, isDone, continueCursor}``."""
    return ctx.db.query("messages").with_index(
        "by_space", lambda q: q.eq("spaceId", args["spaceId"])).order("desc").paginate(
        {"numItems": args["numItems"], "cursor": args["cursor"]})


@mutation(args={"messageId": v.id("messages"), "decision": v.boolean()}, policy="editor", scope="message")
def markDecision(ctx: Any, args: dict[str, Any]) -> None:
    ctx.db.patch(args["messageId"], {"decision": args["decision"], "markedBy": ctx.caller.actor_id})


@mutation(args={"messageId": v.id("messages"), "open": v.boolean()}, policy="editor", scope="message")
def markQuestion(ctx: Any, args: dict[str, Any]) -> None:
    """Mark (``open: true``) or resolve an open question."""
    ctx.db.patch(args["messageId"], {"openQuestion": args["open"], "markedBy": ctx.caller.actor_id})


@query(args={"spaceId": v.id("spaces")}, policy="viewer", scope="space")
def outline(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """What is listed beside the thread: ``{decisions, openQuestions}``, oldest first."""
    decisions = ctx.db.query("messages").with_index(
        "by_space_decision", lambda q: q.eq("spaceId", args["spaceId"]).eq("decision", True)).collect()
    questions = ctx.db.query("messages").with_index(
        "by_space_question", lambda q: q.eq("spaceId", args["spaceId"]).eq("openQuestion", True)).collect()
    return {"decisions": decisions, "openQuestions": questions}
