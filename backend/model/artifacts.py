"""Artifacts (documents, code, notes...) and their immutable versions.

Content changes only through ``save`` / ``restore``, which carry the fencing token of a live
lock hold: fence check, new version, release, grant to the queue head and audit happen in one
transaction (DESIGN 2.4).
"""

from __future__ import annotations

from typing import Any

from collab.backend.functions import internal_mutation
from collab.backend.model import _live
from collab.backend.model import _lockcore as lk
from collab.backend.model._auth import mutation, query
from collab.backend.model._errors import fail, invalid
from collab.backend.model._limits import row_limit
from collab.backend.model._util import audit, check_slug, slugify
from collab.backend.model._versions import MAX_CONTENT, check_content, commit_version
from collab.backend.model.runs import finish_run
from collab.backend.validators import v

# A deleted artifact's versions, lock holds and drafts go in batches, each its own transaction,
# so deleting an artifact with a long history stays within a transaction's limits.
PURGE_BATCH = 16


def _unique_slug(ctx: Any, space_id: str, wanted: str) -> str:
    slug, n = wanted, 2
    while ctx.db.query("artifacts").with_index(
            "by_space_slug", lambda q, s=slug: q.eq("spaceId", space_id).eq("slug", s)).first() is not None:
        slug, n = f"{wanted}-{n}", n + 1
    return slug


@mutation(args={"spaceId": v.id("spaces"), "title": v.string(), "kind": v.string(), "content": v.string(),
                "language": v.optional(v.string()), "tags": v.optional(v.array(v.string())),
                "slug": v.optional(v.string()), "message": v.optional(v.string())},
          policy="editor", scope="space")
def create(ctx: Any, args: dict[str, Any]) -> str:
    """A new artifact at version 1 (with its free lock). Returns the artifactId."""
    title = args["title"].strip()
    if not title or len(title) > 200:
        invalid("title must be 1-200 characters")
    check_content(args["content"])
    actor, now = ctx.caller.actor, ctx.now()
    slug = _unique_slug(ctx, args["spaceId"], check_slug(args["slug"]) if "slug" in args else slugify(title))
    row: dict[str, Any] = {"spaceId": args["spaceId"], "slug": slug, "title": title, "kind": args["kind"],
                           "content": args["content"], "version": 1, "tags": args.get("tags", []),
                           "createdBy": actor["_id"], "updatedBy": actor["_id"], "updatedAt": now}
    if "language" in args:
        row["language"] = args["language"]
    artifact_id = ctx.db.insert("artifacts", row)
    version: dict[str, Any] = {"artifactId": artifact_id, "spaceId": args["spaceId"], "version": 1,
                               "content": args["content"], "authorId": actor["_id"], "source": actor["kind"],
                               "at": now}
    if "message" in args:
        version["message"] = args["message"]
    ctx.db.insert("versions", version)
    ctx.db.insert("locks", {"artifactId": artifact_id, "spaceId": args["spaceId"], "epoch": 0})
    audit(ctx, args["spaceId"], "artifact.created", {"title": title, "slug": slug, "kind": args["kind"]},
          artifact_id=artifact_id, actor_id=actor["_id"])
    return str(artifact_id)


@query(args={"artifactId": v.id("artifacts")}, policy="viewer", scope="artifact")
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The artifact with its lock state (holder, human or agent, since, expiresAt, queue);
    never the token."""
    return {**ctx.caller.target, "lock": lk.lock_state(ctx, lk.lock_of(ctx, args["artifactId"]))}


@query(args={"spaceId": v.id("spaces"), "kind": v.optional(v.string()), "tag": v.optional(v.string())},
       policy="viewer", scope="space")
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Artifacts of a space without their content (tree view); lock badges: ``locks:list``."""
    q = ctx.db.query("artifacts").with_index("by_space", lambda r: r.eq("spaceId", args["spaceId"]))
    if "kind" in args:
        q = q.filter(lambda f: f.eq(f.field("kind"), args["kind"]))
    out = []
    for a in q.collect():
        if "tag" in args and args["tag"] not in a["tags"]:
            continue
        out.append({k: val for k, val in a.items() if k != "content"})
    return out


@query(args={"artifactId": v.id("artifacts"), "limit": v.optional(v.number()),
             "includeContent": v.optional(v.boolean())}, policy="viewer", scope="artifact")
def history(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Versions, newest first (content only with ``includeContent``): the newest ``limit``
    (default and at most 1000; older ones: ``artifacts:historyPage``)."""
    q = ctx.db.query("versions").with_index(
        "by_artifact_version", lambda r: r.eq("artifactId", args["artifactId"])).order("desc")
    rows = q.take(row_limit(args, 1000))
    if args.get("includeContent"):
        return rows
    return [{k: val for k, val in r.items() if k != "content"} for r in rows]


@query(args={"artifactId": v.id("artifacts"), "numItems": v.number(), "cursor": v.union(v.string(), v.null()),
             "includeContent": v.optional(v.boolean())}, policy="viewer", scope="artifact")
def historyPage(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Every version, newest first, in pages (``{page, isDone, continueCursor}``; content only
    with ``includeContent``). ``numItems`` at most 1000."""
    result = ctx.db.query("versions").with_index(
        "by_artifact_version", lambda r: r.eq("artifactId", args["artifactId"])).order("desc").paginate(
        {"numItems": row_limit(args, 0, field="numItems"), "cursor": args["cursor"]})
    if not args.get("includeContent"):
        result["page"] = [{k: val for k, val in r.items() if k != "content"} for r in result["page"]]
    return result


def _version_row(ctx: Any, artifact_id: str, version: float) -> dict[str, Any]:
    row = ctx.db.query("versions").with_index(
        "by_artifact_version", lambda r: r.eq("artifactId", artifact_id).eq("version", version)).unique()
    if row is None:
        fail("NOT_FOUND", f"version {version} does not exist", what="version", id=str(version))
    return row


@query(args={"artifactId": v.id("artifacts"), "version": v.number()}, policy="viewer", scope="artifact")
def version(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One version with its content (for diffs)."""
    return _version_row(ctx, args["artifactId"], args["version"])


@mutation(args={"artifactId": v.id("artifacts"), "token": v.number(), "content": v.string(),
                "message": v.optional(v.string()), "idempotencyKey": v.optional(v.string()),
                "source": v.optional(v.literal("merge"))}, policy="editor", scope="artifact")
def save(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Save under the lock: new version, then the lock is released and granted to the queue head.
    Returns ``{version, versionId, grantedTo}``."""
    return commit_version(ctx, ctx.caller.target, args, "artifacts:save", args["content"],
                          args.get("source", ctx.caller.kind))


@mutation(args={"artifactId": v.id("artifacts"), "token": v.number(), "version": v.number(),
                "message": v.optional(v.string()), "idempotencyKey": v.optional(v.string())},
          policy="editor", scope="artifact")
def restore(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Make an old version the next one (a new version; history is never rewritten)."""
    old = _version_row(ctx, args["artifactId"], args["version"])
    msg = {**args, "message": args.get("message") or f"restore version {args['version']:g}"}
    return commit_version(ctx, ctx.caller.target, msg, "artifacts:restore", old["content"], ctx.caller.kind,
                          restored_from=args["version"])


@mutation(args={"artifactId": v.id("artifacts"), "title": v.optional(v.string()),
                "tags": v.optional(v.array(v.string())), "language": v.optional(v.string()),
                "kind": v.optional(v.string())}, policy="editor", scope="artifact")
def update(ctx: Any, args: dict[str, Any]) -> None:
    """Metadata only (title, tags, language, kind): no lock, content is untouched."""
    fields = {k: args[k] for k in ("title", "tags", "language", "kind") if k in args}
    if "title" in fields and not fields["title"].strip():
        invalid("title must not be empty")
    if fields:
        ctx.db.patch(args["artifactId"], fields)
        audit(ctx, ctx.caller.space["_id"], "artifact.updated", fields, artifact_id=args["artifactId"],
              actor_id=ctx.caller.actor_id)


# In TypeScript ``delete`` is a reserved word: the port declares ``const remove`` and exports it
# ``as delete`` so the udfPath stays ``artifacts:delete``.
@mutation(args={"artifactId": v.id("artifacts")}, policy="editor", scope="artifact")
def delete(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Delete the artifact. Refused with ``LOCKED`` while someone else holds its lock (a lease
    that already ended does not count); the caller's own hold ends with it. Its waiters leave
    the queue, its unfinished runs are cancelled, its live tails end, and an
    ``artifact.deleted`` audit row keeps its title, slug and last version. Its versions, lock
    holds, drafts, proposals and variation rounds are purged after the commit
    (``artifacts:purge``, in batches); nothing lists them once the artifact is gone. Returns
    ``{deleted: true, title, slug, version}``."""
    art, caller = ctx.caller.target, ctx.caller
    lock = lk.expire_if_due(ctx, lk.lock_of(ctx, args["artifactId"]))
    holder = lk.holder_info(lock)
    if holder is not None and holder["actorId"] != caller.actor_id:
        fail("LOCKED", f"@{holder['handle']} is editing {art['title']!r}: it can be deleted once the lock is free",
             holder=holder, queueLength=len(lk.waiters(ctx, args["artifactId"])))
    if holder is not None:
        lock = lk.end_hold(ctx, lock, "released", by=caller.actor)
    for waiter in lk.waiters(ctx, args["artifactId"]):
        ctx.db.delete(waiter["_id"])
        lk.update_remembered(ctx, waiter["actorId"], waiter.get("idempotencyKey"), {"status": "cancelled"})
    if lock.get("expiryJobId"):
        ctx.scheduler.cancel(lock["expiryJobId"])
    ctx.db.delete(lock["_id"])
    reason = f"the artifact was deleted by @{caller.handle}"
    for status in ("queued", "claimed", "streaming"):
        # first: a cancelled run closes its streams keeping their text (replies, proposals)
        for run in ctx.db.query("runs").with_index(
                "by_space_status", lambda q, s=status: q.eq("spaceId", art["spaceId"]).eq("status", s)
        ).filter(lambda f: f.eq(f.field("artifactId"), args["artifactId"])).collect():
            finish_run(ctx, run, "cancelled", {"error": reason})
    for row in ctx.db.query("liveStreams").with_index(
            "by_artifact", lambda q: q.eq("artifactId", args["artifactId"])).collect():
        _live.close_row(ctx, row, reason, "cancelled")
    ctx.db.delete(art["_id"])
    facts = {"title": art["title"], "slug": art["slug"], "version": art["version"]}
    audit(ctx, art["spaceId"], "artifact.deleted", facts, artifact_id=art["_id"], actor_id=caller.actor_id)
    ctx.scheduler.run_after(0, "artifacts:purge", {"artifactId": art["_id"]})
    return {"deleted": True, **facts}


@internal_mutation(args={"artifactId": v.id("artifacts")})
def purge(ctx: Any, args: dict[str, Any]) -> int:
    """One batch of a deleted artifact's rows: variation rounds (with their variations),
    proposals, versions, lock holds, drafts. Schedules the next batch while any may remain.
    Returns how many rows it deleted."""
    aid = args["artifactId"]
    if ctx.db.get(aid) is not None:
        return 0  # not deleted (never scheduled so; a guard for a hand-made call)
    left = PURGE_BATCH
    for rnd in ctx.db.query("variationRounds").with_index("by_artifact", lambda q: q.eq("artifactId", aid)).take(left):
        for row in ctx.db.query("variations").with_index(
                "by_round", lambda q, r=rnd["_id"]: q.eq("roundId", r)).take(left):
            ctx.db.delete(row["_id"])
            left -= 1
        if left == 0:
            break
        ctx.db.delete(rnd["_id"])
        left -= 1
        if left == 0:
            break
    for table, index in (("proposals", "by_artifact"), ("versions", "by_artifact_version"),
                         ("lockHolds", "by_artifact_epoch"), ("drafts", "by_artifact_epoch")):
        if left == 0:
            break
        for row in ctx.db.query(table).with_index(index, lambda q: q.eq("artifactId", aid)).take(left):
            ctx.db.delete(row["_id"])
            left -= 1
    if left == 0:
        ctx.scheduler.run_after(0, "artifacts:purge", {"artifactId": aid})
    return PURGE_BATCH - left
