import asyncio
from typing import Any

from collab.backend.functions import action
from collab.backend.validators import v


@action(args={"ms": v.number()})
async def sleep(ctx: Any, args: dict[str, Any]) -> float:
    await asyncio.sleep(args["ms"] / 1000)
    return args["ms"]


@action(args={"name": v.string()})
async def bump_twice(ctx: Any, args: dict[str, Any]) -> float:
    ctx.run_mutation("counter:inc", {"name": args["name"]})
    return ctx.run_mutation("counter:inc", {"name": args["name"]})
