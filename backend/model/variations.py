"""Variations (DESIGN 1.2): N versions of an artifact streamed side by side, starred onto a
shortlist, one picked as the next version, or parts of several composed; then N more.

A **round** belongs to an artifact: an instruction, N variations (each a proposal written by
one agent's run, at the round's temperature for it), the parent round and the shortlist it
started from. Rounds are kept. ``variations:start`` queues the N runs in its transaction;
``variations:more`` starts the next round from the parent's stars and a note. Stars are the
space's shared shortlist. ``variations:pick`` makes a finished variation the next version
through the lock (the caller holds it: the fenced save of ``artifacts:save``, with the
variation and round recorded on the version). ``variations:compose`` merges line ranges of
several variations into a new one whose provenance lists every part: a plain concatenation
when there is no instruction and the parts do not overlap, otherwise an agent's run.
"""

from __future__ import annotations

from typing import Any

from collab.backend.model import _errors as err
from collab.backend.model._auth import membership, mutation, query
from collab.backend.model._limits import row_limit
from collab.backend.model._util import audit, get_in, whole
from collab.backend.model._versions import commit_version
from collab.backend.model.runs import finish_run, insert_run
from collab.backend.validators import v

MAX_N = 10  # never more variations in a round
DEFAULT_MAX_N = 5  # unless the flow allows more (its ``maxN``, at most MAX_N)
MAX_INSTRUCTION = 4_000
MAX_PARTS = 20
RANGE = v.object({"start": v.number(), "end": v.number()})
PART = v.object({"variationId": v.id("variations"), "range": RANGE})
UNFINISHED = ("queued", "streaming")


# ---------------------------------------------------------------------------- helpers


def _agents(ctx: Any, space_id: str, handles: list[str] | None) -> list[dict[str, Any]]:
    """Agent members (editors) by handle, in the order asked; all of them by default."""
    members = [m for m in ctx.db.query("members").with_index("by_space", lambda q: q.eq("spaceId", space_id)).collect()
               if m["kind"] == "agent" and m["role"] != "viewer"]
    if not handles:
        if not members:
            err.invalid("no agent in this space can write variations: add an agent member first")
        return members
    by_handle = {m["handle"]: m for m in members}
    unknown = [h for h in handles if h not in by_handle]
    if unknown:
        err.invalid(f"not an agent (editor) of this space: {', '.join('@' + h for h in unknown)}", handles=unknown)
    return [by_handle[h] for h in handles]


def _check_n(n: float, max_n: float | None) -> int:
    if max_n is not None and not 1 <= max_n <= MAX_N:  # (NaN fails every comparison)
        err.invalid(f"maxN must be between 1 and {MAX_N}", maxN=max_n)
    limit = min(int(max_n), MAX_N) if max_n is not None else DEFAULT_MAX_N
    if not whole(n) or not 1 <= n <= limit:
        err.invalid(f"N must be a whole number from 1 to {limit}", n=n, max=limit)
    return int(n)


def _new_variation(ctx: Any, rnd: dict[str, Any], index: int, author: dict[str, Any], *, composed: bool,
                   content: str = "", status: str = "queued", temperature: float | None = None,
                   provenance: dict[str, Any] | None = None) -> tuple[str, str]:
    """A proposal and its variation row in the round: (variationId, proposalId)."""
    artifact = ctx.db.get(rnd["artifactId"])
    prop: dict[str, Any] = {"spaceId": rnd["spaceId"], "artifactId": rnd["artifactId"], "authorId": author["actorId"],
                            "authorKind": author["kind"], "authorHandle": author["handle"],
                            "baseVersion": artifact["version"], "content": content, "status": status,
                            "provenance": provenance or {"kind": "variation", "roundId": rnd["_id"], "index": index},
                            "updatedAt": ctx.now()}
    if temperature is not None:
        prop["temperature"] = temperature
    proposal_id = ctx.db.insert("proposals", prop)
    variation_id = ctx.db.insert("variations", {"spaceId": rnd["spaceId"], "artifactId": rnd["artifactId"],
                                                "roundId": rnd["_id"], "index": index, "proposalId": proposal_id,
                                                "composed": composed, "starred": False, "picked": False})
    return str(variation_id), str(proposal_id)


def _queue(ctx: Any, rnd: dict[str, Any], index: int, agent: dict[str, Any], kind: str, temperature: float | None,
           input: dict[str, Any], provenance: dict[str, Any] | None = None) -> str:
    """A variation written by ``agent``'s run (queued in this transaction)."""
    variation_id, proposal_id = _new_variation(ctx, rnd, index, agent, composed=kind == "compose",
                                               temperature=temperature, provenance=provenance)
    run_input = {"roundId": rnd["_id"], "variationId": variation_id, "proposalId": proposal_id, "index": index,
                 **input}
    if temperature is not None:
        run_input["temperature"] = temperature
    run_id = insert_run(ctx, rnd["spaceId"], agent["actorId"], kind, run_input, artifact_id=rnd["artifactId"],
                        max_attempts=1)
    ctx.db.patch(proposal_id, {"runId": run_id})
    return variation_id


def _round(ctx: Any, artifact: dict[str, Any], instruction: str, n: int, agents: list[dict[str, Any]],
           temperatures: list[Any], extra: dict[str, Any]) -> dict[str, Any]:
    last = ctx.db.query("variationRounds").with_index(
        "by_artifact", lambda q: q.eq("artifactId", artifact["_id"])).order("desc").first()
    row: dict[str, Any] = {"spaceId": artifact["spaceId"], "artifactId": artifact["_id"],
                           "number": (last["number"] + 1) if last else 1, "instruction": instruction, "n": n,
                           "agents": [agents[i % len(agents)]["handle"] for i in range(n)],
                           "temperatures": temperatures, "shortlist": [], "createdBy": ctx.caller.actor_id,
                           "createdByHandle": ctx.caller.handle, **extra}
    round_id = ctx.db.insert("variationRounds", row)
    rnd = ctx.db.get(round_id)
    variation_ids = [_queue(ctx, rnd, i + 1, agents[i % len(agents)], "variation", temperatures[i], {})
                     for i in range(n)]
    audit(ctx, artifact["spaceId"], "variations.round", {"roundId": round_id, "number": row["number"], "n": n,
                                                         "parentRoundId": extra.get("parentRoundId")},
          artifact_id=artifact["_id"], actor_id=ctx.caller.actor_id)
    return {"roundId": str(round_id), "number": row["number"], "variationIds": variation_ids}


def _temperatures(temps: list[float] | None, n: int) -> list[float | None]:
    if not temps:
        return [None] * n
    if len(temps) != n:
        err.invalid(f"give one temperature per variation ({n}), or none", temperatures=len(temps))
    for t in temps:
        if not 0 <= t <= 2:
            err.invalid(f"temperatures are between 0 and 2 (got {t:g})")
    return list(temps)


def _instruction(text: str) -> str:
    text = text.strip()
    if not text:
        err.invalid("say what the variations should do (an instruction)")
    if len(text) > MAX_INSTRUCTION:
        err.invalid(f"the instruction is longer than {MAX_INSTRUCTION} characters")
    return text


def _rows(ctx: Any, round_id: str) -> list[dict[str, Any]]:
    return ctx.db.query("variations").with_index("by_round", lambda q: q.eq("roundId", round_id)).collect()


def _lines(text: str) -> list[str]:
    return text.split("\n")


# ---------------------------------------------------------------------------- rounds


@mutation(args={"artifactId": v.id("artifacts"), "instruction": v.string(), "n": v.number(),
                "agents": v.optional(v.array(v.string())), "temperatures": v.optional(v.array(v.number())),
                "flow": v.optional(v.string()), "flowInstructions": v.optional(v.string()),
                "maxN": v.optional(v.number())},
          policy="editor", scope="artifact")
def start(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """A new round of ``n`` variations of the artifact, their runs queued in this transaction.
    ``agents`` (handles) write them in turn (one agent N times with ``temperatures``: one per
    variation, the run's own rather than the agent's); default every agent of the space. A
    ``flow`` passes its name, instructions and ``maxN`` (default 5, at most 10). Returns
    ``{roundId, number, variationIds}``."""
    artifact = ctx.caller.target
    n = _check_n(args["n"], args.get("maxN"))
    agents = _agents(ctx, artifact["spaceId"], args.get("agents"))
    extra = {k: args[k] for k in ("flow", "flowInstructions") if args.get(k)}
    return _round(ctx, artifact, _instruction(args["instruction"]), n, agents,
                  _temperatures(args.get("temperatures"), n), extra)


@mutation(args={"roundId": v.id("variationRounds"), "n": v.optional(v.number()), "note": v.optional(v.string()),
                "maxN": v.optional(v.number())},
          policy="editor", scope="round")
def more(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The next round, in the direction of the shortlist: the parent's starred variations (and
    ``note``, what to change) go into every prompt; same instruction, agents and temperatures
    (cycled to ``n``, default the parent's N). Returns ``{roundId, number, variationIds}``."""
    parent = ctx.caller.target
    n = _check_n(args.get("n", parent["n"]), args.get("maxN", max(parent["n"], DEFAULT_MAX_N)))
    shortlist = [r["_id"] for r in _rows(ctx, parent["_id"]) if r["starred"]]
    note = (args.get("note") or "").strip()
    if not shortlist and not note:
        err.invalid("star the variations to build on, or say in a note what to change")
    agents = _agents(ctx, parent["spaceId"], list(dict.fromkeys(parent["agents"])))
    by_handle = {a["handle"]: a for a in agents}
    order = [by_handle[h] for h in parent["agents"] if h in by_handle] or agents
    temps = [parent["temperatures"][i % len(parent["temperatures"])] for i in range(n)] if parent["temperatures"] \
        else [None] * n
    extra: dict[str, Any] = {"parentRoundId": parent["_id"], "shortlist": shortlist}
    for key in ("flow", "flowInstructions"):
        if parent.get(key):
            extra[key] = parent[key]
    if note:
        extra["note"] = note
    return _round(ctx, ctx.db.get(parent["artifactId"]), parent["instruction"], n, order, temps, extra)


@mutation(args={"roundId": v.id("variationRounds"), "variationId": v.optional(v.id("variations"))},
          policy="editor", scope="round")
def cancel(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Stop one variation of the round, or all that are still queued or streaming; their
    workers stop within a second and each keeps the text it had. Returns ``{cancelled}``."""
    rnd, reason = ctx.caller.target, f"cancelled by @{ctx.caller.handle}"
    rows = _rows(ctx, rnd["_id"])
    if "variationId" in args:
        rows = [r for r in rows if r["_id"] == args["variationId"]]
        if not rows:
            err.fail("NOT_FOUND", "that variation is not in this round", what="variation", id=args["variationId"])
    count = 0
    for row in rows:
        prop = ctx.db.get(row["proposalId"])
        if prop is None or prop["status"] not in UNFINISHED:
            continue
        run = ctx.db.get(prop["runId"]) if prop.get("runId") else None
        if run is not None and run["status"] not in ("done", "failed", "cancelled"):
            finish_run(ctx, run, "cancelled", {"error": reason})  # closes the proposal with its text
        else:
            ctx.db.patch(prop["_id"], {"status": "cancelled", "error": reason, "updatedAt": ctx.now()})
        count += 1
    return {"cancelled": count}


# ---------------------------------------------------------------------------- shortlist and pick


def _set_star(ctx: Any, starred: bool) -> None:
    row = ctx.caller.target
    fields: dict[str, Any] = {"starred": starred}
    if starred:
        fields["starredBy"] = ctx.caller.actor_id
    ctx.db.patch(row["_id"], fields)


@mutation(args={"variationId": v.id("variations")}, policy="editor", scope="variation")
def star(ctx: Any, args: dict[str, Any]) -> None:
    """Put the variation on the round's shortlist (shared by everyone in the space)."""
    _set_star(ctx, True)


@mutation(args={"variationId": v.id("variations")}, policy="editor", scope="variation")
def unstar(ctx: Any, args: dict[str, Any]) -> None:
    _set_star(ctx, False)


@mutation(args={"variationId": v.id("variations"), "token": v.number(), "message": v.optional(v.string()),
                "idempotencyKey": v.optional(v.string())}, policy="editor", scope="variation")
def pick(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Make a finished variation the artifact's next version, under the caller's lock
    (``token``): the fenced save of ``artifacts:save`` (source ``agent``, or ``merge`` for a
    composition), which releases the lock and hands it to the queue. The version records the
    variation and the round. Returns ``{version, versionId, grantedTo}``."""
    row = ctx.caller.target
    prop = ctx.db.get(row["proposalId"])
    if prop["status"] != "done":
        err.fail("NOT_READY", f"variation #{row['index']:g} is {prop['status']}: only a finished variation can be picked",
                 status=prop["status"])
    rnd = ctx.db.get(row["roundId"])
    artifact = ctx.db.get(row["artifactId"])
    provenance = {"kind": "variation", "variationId": row["_id"], "roundId": rnd["_id"], "round": rnd["number"],
                  "index": row["index"], "author": prop["authorHandle"], "baseVersion": prop["baseVersion"]}
    message = args.get("message") or f"picked variation #{row['index']:g} of round {rnd['number']:g} " \
                                     f"(@{prop['authorHandle']})"
    result = commit_version(ctx, artifact, {**args, "message": message}, "variations:pick", prop["content"],
                            "merge" if row["composed"] else "agent", provenance=provenance)
    ctx.db.patch(row["_id"], {"picked": True})
    ctx.db.patch(rnd["_id"], {"picked": {"variationId": row["_id"], "index": row["index"],
                                         "version": result["version"], "by": ctx.caller.handle}})
    return result


# ---------------------------------------------------------------------------- compose


@mutation(args={"roundId": v.id("variationRounds"), "parts": v.array(PART), "instruction": v.optional(v.string()),
                "agent": v.optional(v.string())},
          policy="editor", scope="round")
def compose(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """A new variation in the round made of parts of others: ``parts`` are ``{variationId,
    range: {start, end}}`` (lines ``start`` to ``end``, 0-based, end excluded) of finished
    variations of this artifact, in the order to use them. With no instruction and no two
    parts overlapping it is their concatenation, at once; otherwise ``agent`` (default the
    round's first) merges them following the instruction, streaming like any variation. Its
    provenance lists every part. Returns ``{variationId, proposalId, composed: "concatenated"
    | "agent"}``."""
    rnd = ctx.caller.target
    parts = args["parts"]
    if not 1 <= len(parts) <= MAX_PARTS:
        err.invalid(f"compose takes 1 to {MAX_PARTS} parts", parts=len(parts))
    taken: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        row = get_in(ctx, "variations", part["variationId"])
        if row is None or row["artifactId"] != rnd["artifactId"]:
            err.fail("NOT_FOUND", "a part's variation is not a variation of this artifact", what="variation",
                     id=part["variationId"])
        prop = ctx.db.get(row["proposalId"])
        if prop["status"] != "done":
            err.fail("NOT_READY", f"variation #{row['index']:g} is {prop['status']}: compose finished ones",
                     status=prop["status"])
        lines = _lines(prop["content"])
        start, end = part["range"]["start"], part["range"]["end"]
        if not whole(start) or not whole(end) or not 0 <= start < end <= len(lines):
            err.invalid(f"part {i + 1}: lines {start:g}-{end:g} are outside variation #{row['index']:g} "
                        f"(it has {len(lines)} lines)", part=i, lines=len(lines))
        taken.append({"variationId": row["_id"], "index": row["index"], "roundId": row["roundId"],
                      "range": {"start": int(start), "end": int(end)}, "text": "\n".join(lines[int(start):int(end)])})
    instruction = (args.get("instruction") or "").strip()
    overlap = any(a["variationId"] == b["variationId"] and a["range"]["start"] < b["range"]["end"]
                  and b["range"]["start"] < a["range"]["end"] for i, a in enumerate(taken) for b in taken[i + 1:])
    index = max((r["index"] for r in _rows(ctx, rnd["_id"])), default=0) + 1
    provenance: dict[str, Any] = {"kind": "compose", "roundId": rnd["_id"], "index": index,
                                  "parts": [{k: p[k] for k in ("variationId", "index", "roundId", "range")}
                                            for p in taken]}
    if instruction:
        provenance["instruction"] = instruction
    if not instruction and not overlap:
        me = membership(ctx, rnd["spaceId"], ctx.caller.actor_id)
        author = {"actorId": ctx.caller.actor_id, "kind": ctx.caller.kind, "handle": me["handle"]}
        variation_id, proposal_id = _new_variation(ctx, rnd, index, author, composed=True, status="done",
                                                   content="\n".join(p["text"] for p in taken), provenance=provenance)
        how = "concatenated"
    else:
        handle = args.get("agent") or rnd["agents"][0]
        agent = _agents(ctx, rnd["spaceId"], [handle])[0]
        variation_id = _queue(ctx, rnd, index, agent, "compose", None,
                              {"parts": taken, "instruction": instruction or "Merge these parts into one coherent text."},
                              provenance=provenance)
        proposal_id = ctx.db.get(variation_id)["proposalId"]
        how = "agent"
    audit(ctx, rnd["spaceId"], "variations.composed", {"roundId": rnd["_id"], "variationId": variation_id,
                                                       "parts": len(taken), "how": how},
          artifact_id=rnd["artifactId"], actor_id=ctx.caller.actor_id)
    return {"variationId": variation_id, "proposalId": str(proposal_id), "composed": how}


# ---------------------------------------------------------------------------- queries


def _summary(ctx: Any, rnd: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    stars = 0
    for row in _rows(ctx, rnd["_id"]):
        prop = ctx.db.get(row["proposalId"])
        if prop is not None:
            counts[prop["status"]] = counts.get(prop["status"], 0) + 1
        stars += 1 if row["starred"] else 0
    return {**rnd, "counts": counts, "stars": stars}


@query(args={"artifactId": v.id("artifacts"), "limit": v.optional(v.number())}, policy="viewer", scope="artifact")
def forArtifact(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The artifact's rounds, newest first (at most ``limit``, default 50), each with its
    variations counted by status and its number of stars (no content). ``limit`` is a positive
    integer; above 200 it is served as 200 (each round costs a few reads)."""
    limit = min(row_limit(args, 50), 200)
    rounds = ctx.db.query("variationRounds").with_index(
        "by_artifact", lambda q: q.eq("artifactId", args["artifactId"])).order("desc").take(limit)
    return [_summary(ctx, r) for r in rounds]


@query(args={"roundId": v.id("variationRounds")}, policy="viewer", scope="round")
def round(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One round with its variations in order: each ``{variationId, index, proposalId,
    composed, starred, picked, author, authorKind, temperature, status, content, error, usage,
    costUsd, baseVersion, provenance}`` (content at the persistence cadence: add the live tails
    of ``proposals:live``)."""
    rnd = ctx.caller.target
    out = []
    for row in _rows(ctx, rnd["_id"]):
        prop = ctx.db.get(row["proposalId"]) or {}
        out.append({"variationId": row["_id"], "index": row["index"], "proposalId": row["proposalId"],
                    "composed": row["composed"], "starred": row["starred"], "picked": row["picked"],
                    "author": prop.get("authorHandle"), "authorKind": prop.get("authorKind"),
                    "temperature": prop.get("temperature"), "status": prop.get("status"),
                    "content": prop.get("content", ""), "error": prop.get("error"), "usage": prop.get("usage"),
                    "costUsd": prop.get("costUsd"), "baseVersion": prop.get("baseVersion"),
                    "provenance": prop.get("provenance")})
    return {"round": rnd, "variations": out}
