from typing import Any

from collab.backend.errors import ConvexError
from collab.backend.functions import internal_mutation, mutation, query
from collab.backend.validators import v


def _find(ctx: Any, name: str) -> dict[str, Any] | None:
    return ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()


@query(args={"name": v.string()})
def get(ctx: Any, args: dict[str, Any]) -> float:
    doc = _find(ctx, args["name"])
    return doc["value"] if doc else 0


@mutation(args={"name": v.string(), "by": v.optional(v.number())})
def inc(ctx: Any, args: dict[str, Any]) -> float:
    by = args.get("by", 1)
    doc = _find(ctx, args["name"])
    if doc is None:
        ctx.db.insert("counters", {"name": args["name"], "value": by})
        return by
    ctx.db.patch(doc["_id"], {"value": doc["value"] + by})
    return doc["value"] + by


@mutation(args={"message": v.optional(v.string()), "data": v.optional(v.any())})
def fail(ctx: Any, args: dict[str, Any]) -> None:
    raise ConvexError(args.get("data", args.get("message", "failed")))


@mutation(args={})
def crash(ctx: Any, args: dict[str, Any]) -> None:
    raise RuntimeError("the function crashed")


@mutation(args={"name": v.string(), "by": v.number(), "delayMs": v.number()})
def inc_later(ctx: Any, args: dict[str, Any]) -> str:
    return ctx.scheduler.run_after(args["delayMs"], "counter:inc_internal", {"name": args["name"], "by": args["by"]})


@internal_mutation(args={"name": v.string(), "by": v.number()})
def inc_internal(ctx: Any, args: dict[str, Any]) -> float:
    return inc.handler(ctx, args)


@query(args={"name": v.string(), "size": v.number()})
def padded(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The counter plus ``size`` bytes of padding: large results for backpressure tests."""
    doc = _find(ctx, args["name"])
    return {"value": doc["value"] if doc else 0, "pad": "x" * int(args["size"])}
