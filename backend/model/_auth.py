"""One authorization wrapper for every public function.

``@query(args=..., policy="viewer", scope="artifact")`` reads like Convex's ``customQuery``
from convex-helpers: before the handler runs, the wrapper resolves the caller (identity ->
actor -> membership of the space the arguments point at) and checks the role; the handler
gets ``ctx.caller`` (a :class:`Caller`). The policy is also kept in ``FunctionDef.meta`` so a
test can assert that no public function of the package is registered without one.

Policies: ``authenticated`` (any signed-in human or agent), ``viewer`` < ``editor`` <
``owner`` (a member of the scoped space with at least that role). Scopes say where the space
comes from: ``space`` (``args.spaceId``), ``artifact`` / ``message`` / ``run`` / ``proposal`` /
``round`` / ``variation`` / ``pipeline`` (the space of that document), or ``None`` (no space: only ``authenticated`` makes sense).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from collab.backend import functions as base
from collab.backend.functions import FunctionDef
from collab.backend.model._errors import fail, not_found
from collab.backend.validators import Validator

Policy = Literal["authenticated", "viewer", "editor", "owner"]
Scope = Literal["space", "artifact", "message", "run", "proposal", "round", "variation", "pipeline"] | None
POLICIES: tuple[str, ...] = ("authenticated", "viewer", "editor", "owner")
ROLE_RANK = {"viewer": 1, "editor": 2, "owner": 3}
# Which argument names the scoped document, and which table it is in.
SCOPE_ARG = {"space": ("spaceId", "spaces"), "artifact": ("artifactId", "artifacts"),
             "message": ("messageId", "messages"), "run": ("runId", "runs"),
             "proposal": ("proposalId", "proposals"), "round": ("roundId", "variationRounds"),
             "variation": ("variationId", "variations"), "pipeline": ("pipelineId", "pipelines")}


@dataclass
class Caller:
    identity: dict[str, Any]
    actor: dict[str, Any] | None  # None only in queries, for an identity never seen before
    space: dict[str, Any] | None = None
    member: dict[str, Any] | None = None
    target: dict[str, Any] | None = None  # the scoped document (artifact, message, run)

    @property
    def actor_id(self) -> str:
        assert self.actor is not None
        return str(self.actor["_id"])

    @property
    def kind(self) -> str:
        return kind_of(self.identity)

    @property
    def handle(self) -> str:
        return handle_of(self.identity)

    @property
    def role(self) -> str | None:
        return self.member["role"] if self.member else None

    def is_at_least(self, role: str) -> bool:
        return self.role is not None and ROLE_RANK[self.role] >= ROLE_RANK[role]


def kind_of(identity: dict[str, Any]) -> str:
    kind = identity.get("collab_kind")
    if kind in ("human", "agent"):
        return str(kind)
    return "agent" if str(identity.get("subject", "")).startswith("agent:") else "human"


def handle_of(identity: dict[str, Any]) -> str:
    handle = identity.get("preferredUsername")
    if isinstance(handle, str) and handle:
        return handle
    subject = str(identity.get("subject", ""))
    return subject.split(":", 1)[1] if ":" in subject else subject


def actor_by_subject(ctx: Any, subject: str) -> dict[str, Any] | None:
    return ctx.db.query("actors").with_index("by_subject", lambda q: q.eq("subject", subject)).unique()


def ensure_actor(ctx: Any, identity: dict[str, Any]) -> dict[str, Any]:
    """The caller's actor row, created on first use (mutations only)."""
    subject = str(identity["subject"])
    actor = actor_by_subject(ctx, subject)
    if actor is not None:
        return actor
    handle = handle_of(identity)
    actor_id = ctx.db.insert("actors", {"subject": subject, "kind": kind_of(identity), "handle": handle,
                                        "name": str(identity.get("name") or handle)})
    return ctx.db.get(actor_id)


def membership(ctx: Any, space_id: str, actor_id: str) -> dict[str, Any] | None:
    return ctx.db.query("members").with_index(
        "by_space_actor", lambda q: q.eq("spaceId", space_id).eq("actorId", actor_id)).unique()


def resolve(ctx: Any, args: dict[str, Any], policy: str, scope: Scope, *, writable: bool) -> Caller:
    identity = ctx.auth.get_user_identity()
    if identity is None or not identity.get("subject"):
        fail("UNAUTHENTICATED", "sign in first: this function needs a user or agent token")
    actor = ensure_actor(ctx, identity) if writable else actor_by_subject(ctx, str(identity["subject"]))
    caller = Caller(identity=identity, actor=actor)
    if scope is None:
        return caller
    arg, table = SCOPE_ARG[scope]
    doc_id = args.get(arg)
    doc = ctx.db.get(doc_id) if isinstance(doc_id, str) else None
    if doc is None or ctx.db.normalize_id(table, doc_id) is None:
        not_found({"variationRounds": "round"}.get(table, table[:-1]), str(doc_id))
    caller.target = doc if scope != "space" else None
    caller.space = doc if scope == "space" else ctx.db.get(doc["spaceId"])
    if caller.space is None:
        not_found("space", str(doc.get("spaceId")))
    if actor is not None:
        caller.member = membership(ctx, caller.space["_id"], actor["_id"])
    if policy == "authenticated":
        return caller
    if caller.member is None:
        fail("NOT_A_MEMBER", f"you are not a member of space {caller.space['name']!r}",
             spaceId=caller.space["_id"], required=policy)
    if not caller.is_at_least(policy):
        fail("INSUFFICIENT_ROLE", f"this needs the {policy} role; you are {caller.role}",
             spaceId=caller.space["_id"], required=policy, role=caller.role)
    return caller


def _guarded(kind: str) -> Callable[..., Callable[[Callable[..., Any]], FunctionDef]]:
    declare = {"query": base.query, "mutation": base.mutation}[kind]

    def factory(args: dict[str, Validator], policy: Policy, scope: Scope = None,
                returns: Validator | None = None) -> Callable[[Callable[..., Any]], FunctionDef]:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}")
        if policy != "authenticated" and scope is None:
            raise ValueError("a role policy needs a scope that names the space")

        def wrap(handler: Callable[..., Any]) -> FunctionDef:
            def guarded(ctx: Any, fn_args: dict[str, Any]) -> Any:
                ctx.caller = resolve(ctx, fn_args, policy, scope, writable=kind == "mutation")
                return handler(ctx, fn_args)

            guarded.__doc__, guarded.__name__ = handler.__doc__, handler.__name__
            fdef = declare(args=args, returns=returns, policy=policy, scope=scope, guarded=True)(guarded)
            return fdef

        return wrap

    return factory


query = _guarded("query")
mutation = _guarded("mutation")
