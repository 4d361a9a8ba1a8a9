// One authorization wrapper for every public function: the twin of backend/model/_auth.py.
//
// `query({ args, policy: "viewer", scope: "artifact", handler })` reads like Python's
// `@query(args=..., policy="viewer", scope="artifact")` (and like convex-helpers'
// `customQuery`): before the handler runs, the wrapper resolves the caller (identity -> actor
// -> membership of the space the arguments point at) and checks the role; the handler gets
// `ctx.caller` (a `Caller`). The policy and scope stay on the registered function, so the
// parity test compares them with the Python registry's.
//
// Policies: `authenticated` (any signed-in human or agent), `viewer` < `editor` < `owner` (a
// member of the scoped space with at least that role). Scopes say where the space comes from:
// `space` (`args.spaceId`), `artifact` / `message` / `run` / `proposal` / `round` / `variation` /
// `pipeline` (the space of that document), or none (only `authenticated` makes sense).
import type { UserIdentity } from "convex/server";
import type { ObjectType, PropertyValidators } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import {
  mutation as rawMutation,
  query as rawQuery,
  type DatabaseReader,
  type MutationCtx,
  type QueryCtx,
} from "./_generated/server";
import { fail, notFound } from "./_errors";
import { pyRepr } from "./_util";

export type Policy = "authenticated" | "viewer" | "editor" | "owner";
export type Scope = "space" | "artifact" | "message" | "run" | "proposal" | "round" | "variation" | "pipeline" | null;
export type Role = "viewer" | "editor" | "owner";
export const POLICIES: readonly Policy[] = ["authenticated", "viewer", "editor", "owner"];
export const ROLE_RANK: Record<Role, number> = { viewer: 1, editor: 2, owner: 3 };
// Which argument names the scoped document, and which table it is in.
const SCOPE_ARG = {
  space: ["spaceId", "spaces"],
  artifact: ["artifactId", "artifacts"],
  message: ["messageId", "messages"],
  run: ["runId", "runs"],
  proposal: ["proposalId", "proposals"],
  round: ["roundId", "variationRounds"],
  variation: ["variationId", "variations"],
  pipeline: ["pipelineId", "pipelines"],
} as const;
// What a NOT_FOUND calls a scoped document of a table (the table's name without its "s").
const WHAT: Partial<Record<string, string>> = { variationRounds: "round" };

export type ScopedDoc =
  | Doc<"artifacts">
  | Doc<"messages">
  | Doc<"runs">
  | Doc<"proposals">
  | Doc<"variationRounds">
  | Doc<"variations">
  | Doc<"pipelines">;

export class Caller {
  space: Doc<"spaces"> | null = null;
  member: Doc<"members"> | null = null;
  target: ScopedDoc | null = null; // the scoped document (artifact, message, run, proposal, ...)

  constructor(
    readonly identity: UserIdentity,
    public actor: Doc<"actors"> | null, // null only in queries, for an identity never seen before
  ) {}

  get actorId(): Id<"actors"> {
    if (this.actor === null) throw new Error("the caller has no actor row yet");
    return this.actor._id;
  }

  get kind(): "human" | "agent" {
    return kindOf(this.identity);
  }

  get handle(): string {
    return handleOf(this.identity);
  }

  get role(): Role | null {
    return this.member ? this.member.role : null;
  }

  isAtLeast(role: Role): boolean {
    return this.role !== null && ROLE_RANK[this.role] >= ROLE_RANK[role];
  }

  /** The scoped document of an `artifact` / `message` / `run` / `proposal` / `round` /
   * `variation` scope. */
  artifact(): Doc<"artifacts"> {
    return this.target as Doc<"artifacts">;
  }

  message(): Doc<"messages"> {
    return this.target as Doc<"messages">;
  }

  run(): Doc<"runs"> {
    return this.target as Doc<"runs">;
  }

  proposal(): Doc<"proposals"> {
    return this.target as Doc<"proposals">;
  }

  round(): Doc<"variationRounds"> {
    return this.target as Doc<"variationRounds">;
  }

  variation(): Doc<"variations"> {
    return this.target as Doc<"variations">;
  }

  pipeline(): Doc<"pipelines"> {
    return this.target as Doc<"pipelines">;
  }

  /** The space of a scoped function (the wrapper resolved it). */
  spaceDoc(): Doc<"spaces"> {
    return this.space as Doc<"spaces">;
  }
}

export function kindOf(identity: UserIdentity): "human" | "agent" {
  const kind = identity["collab_kind"];
  if (kind === "human" || kind === "agent") return kind;
  return String(identity.subject ?? "").startsWith("agent:") ? "agent" : "human";
}

export function handleOf(identity: UserIdentity): string {
  const handle = identity.preferredUsername;
  if (typeof handle === "string" && handle) return handle;
  const subject = String(identity.subject ?? "");
  const colon = subject.indexOf(":");
  return colon >= 0 ? subject.slice(colon + 1) : subject;
}

export async function actorBySubject(db: DatabaseReader, subject: string): Promise<Doc<"actors"> | null> {
  return await db
    .query("actors")
    .withIndex("by_subject", (q) => q.eq("subject", subject))
    .unique();
}

/** The caller's actor row, created on first use (mutations only). */
export async function ensureActor(ctx: MutationCtx, identity: UserIdentity): Promise<Doc<"actors">> {
  const subject = String(identity.subject);
  const actor = await actorBySubject(ctx.db, subject);
  if (actor !== null) return actor;
  const handle = handleOf(identity);
  const name = identity.name;
  const actorId = await ctx.db.insert("actors", {
    subject,
    kind: kindOf(identity),
    handle,
    name: typeof name === "string" && name ? name : handle,
  });
  return (await ctx.db.get(actorId))!;
}

export async function membership(
  db: DatabaseReader,
  spaceId: Id<"spaces">,
  actorId: Id<"actors">,
): Promise<Doc<"members"> | null> {
  return await db
    .query("members")
    .withIndex("by_space_actor", (q) => q.eq("spaceId", spaceId).eq("actorId", actorId))
    .unique();
}

async function resolve(
  ctx: QueryCtx | MutationCtx,
  args: Record<string, unknown>,
  policy: Policy,
  scope: Scope,
  writable: boolean,
): Promise<Caller> {
  const identity = await ctx.auth.getUserIdentity();
  if (identity === null || !identity.subject) {
    fail("UNAUTHENTICATED", "sign in first: this function needs a user or agent token");
  }
  const actor = writable
    ? await ensureActor(ctx as MutationCtx, identity)
    : await actorBySubject(ctx.db, String(identity.subject));
  const caller = new Caller(identity, actor);
  if (scope === null) return caller;
  const [arg, table] = SCOPE_ARG[scope];
  const rawId = args[arg];
  const docId = typeof rawId === "string" ? ctx.db.normalizeId(table, rawId) : null;
  const doc = docId !== null ? await ctx.db.get(docId) : null;
  if (doc === null) notFound(WHAT[table] ?? table.slice(0, -1), String(rawId));
  caller.target = scope !== "space" ? (doc as ScopedDoc) : null;
  caller.space = scope === "space" ? (doc as Doc<"spaces">) : await ctx.db.get((doc as ScopedDoc).spaceId);
  if (caller.space === null) notFound("space", String((doc as ScopedDoc).spaceId));
  if (actor !== null) caller.member = await membership(ctx.db, caller.space._id, actor._id);
  if (policy === "authenticated") return caller;
  if (caller.member === null) {
    fail("NOT_A_MEMBER", `you are not a member of space ${pyRepr(caller.space.name)}`, {
      spaceId: caller.space._id,
      required: policy,
    });
  }
  if (!caller.isAtLeast(policy)) {
    fail("INSUFFICIENT_ROLE", `this needs the ${policy} role; you are ${caller.role}`, {
      spaceId: caller.space._id,
      required: policy,
      role: caller.role,
    });
  }
  return caller;
}

export type GuardedQueryCtx = QueryCtx & { caller: Caller };
export type GuardedMutationCtx = MutationCtx & { caller: Caller };

interface Declaration<V extends PropertyValidators, C, R> {
  args: V;
  policy: Policy;
  scope?: Scope;
  handler: (ctx: C, args: ObjectType<V>) => Promise<R>;
}

function checkDeclaration(policy: Policy, scope: Scope): void {
  if (!POLICIES.includes(policy)) throw new Error(`unknown policy ${policy}`);
  if (policy !== "authenticated" && scope === null) {
    throw new Error("a role policy needs a scope that names the space");
  }
}

/** A public query behind the policy wrapper. */
export function query<V extends PropertyValidators, R>(def: Declaration<V, GuardedQueryCtx, R>) {
  const scope = def.scope ?? null;
  checkDeclaration(def.policy, scope);
  const registered = rawQuery({
    args: def.args,
    handler: async (ctx: QueryCtx, args: ObjectType<V>): Promise<R> => {
      const caller = await resolve(ctx, args, def.policy, scope, false);
      return await def.handler({ ...ctx, caller }, args);
    },
  });
  return Object.assign(registered, { policy: def.policy, scope, guarded: true as const });
}

/** A public mutation behind the policy wrapper (it creates the caller's actor row). */
export function mutation<V extends PropertyValidators, R>(def: Declaration<V, GuardedMutationCtx, R>) {
  const scope = def.scope ?? null;
  checkDeclaration(def.policy, scope);
  const registered = rawMutation({
    args: def.args,
    handler: async (ctx: MutationCtx, args: ObjectType<V>): Promise<R> => {
      const caller = await resolve(ctx, args, def.policy, scope, true);
      return await def.handler({ ...ctx, caller }, args);
    },
  });
  return Object.assign(registered, { policy: def.policy, scope, guarded: true as const });
}
