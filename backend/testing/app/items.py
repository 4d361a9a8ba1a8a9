from typing import Any

from collab.backend.functions import mutation, query
from collab.backend.validators import v


@mutation(args={"group": v.string(), "rank": v.number(), "label": v.string()})
def add(ctx: Any, args: dict[str, Any]) -> str:
    return ctx.db.insert("items", dict(args))


@mutation(args={"id": v.id("items"), "label": v.string()})
def relabel(ctx: Any, args: dict[str, Any]) -> None:
    ctx.db.patch(args["id"], {"label": args["label"]})


@query(args={"group": v.string(), "below": v.number()})
def below(ctx: Any, args: dict[str, Any]) -> list[str]:
    rows = ctx.db.query("items").with_index(
        "by_group_rank", lambda q: q.eq("group", args["group"]).lt("rank", args["below"])
    )
    return [r["label"] for r in rows.collect()]


@query(args={"id": v.id("items")})
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["id"])
