from typing import Any

from collab.backend.functions import mutation, query
from collab.backend.validators import v


@mutation(args={"channel": v.string(), "body": v.string()})
def send(ctx: Any, args: dict[str, Any]) -> str:
    who = ctx.auth.get_user_identity()
    doc = {"channel": args["channel"], "body": args["body"]}
    if who:
        doc["author"] = who.get("preferredUsername") or who["subject"]
    return ctx.db.insert("messages", doc)


@query(args={"channel": v.string(), "limit": v.optional(v.number())})
def list(ctx: Any, args: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: A001 (Convex name)
    q = ctx.db.query("messages").with_index("by_channel", lambda r: r.eq("channel", args["channel"]))
    if "limit" in args:
        return q.order("desc").take(int(args["limit"]))
    return q.collect()


@query(args={"channel": v.string(), "numItems": v.number(), "cursor": v.union(v.string(), v.null())})
def page(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    q = ctx.db.query("messages").with_index("by_channel", lambda r: r.eq("channel", args["channel"]))
    return q.paginate({"numItems": args["numItems"], "cursor": args["cursor"]})
