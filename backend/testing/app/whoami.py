from typing import Any

from collab.backend.functions import query


@query(args={})
def get(ctx: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.auth.get_user_identity()
