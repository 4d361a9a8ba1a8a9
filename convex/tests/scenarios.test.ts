// The Node runner of the shared scenarios (tests/scenarios/*.json at the repository root):
// every scenario against convex/ on convex-test, Convex's own mock backend, with vitest's fake
// timers as the clock. The Python runner (tests/scenarios/test_embedded.py) runs the same files
// against the embedded backend.
import { makeFunctionReference } from "convex/server";
import { ConvexError, type Value } from "convex/values";
import { convexTest } from "convex-test";
import { afterEach, expect, test, vi } from "vitest";
import schema from "../schema";
import { type Failure, type Scenario, State, T0, UNENFORCED_LIMITS, limitKindsExpected } from "./scenario_lang";

// The function modules, as the Convex CLI bundles them (top-level files with one dot), plus the
// generated files convex-test locates them by.
const modules = import.meta.glob(["../*.ts", "../_generated/*.js", "!../*.*.ts"]);
const scenarios = import.meta.glob<Scenario>("../../tests/scenarios/*.json", { eager: true, import: "default" });

type Registered = { isQuery?: boolean; isMutation?: boolean; isAction?: boolean; isPublic?: boolean };

async function kindOf(path: string): Promise<"query" | "mutation"> {
  const [module, name] = path.split(":");
  const loader = modules[`../${module}.ts`];
  if (loader === undefined) throw new Error(`no module ${module} in convex/`);
  const fn = ((await loader()) as Record<string, Registered>)[name!];
  if (fn === undefined || !fn.isPublic) throw new Error(`scenario calls ${path}, which is not a public function`);
  if (fn.isQuery) return "query";
  if (fn.isMutation) return "mutation";
  throw new Error(`${path} is neither a query nor a mutation`);
}

type Test = ReturnType<typeof convexTest>;

function identityOf(handle: string, kind: "human" | "agent") {
  // the claims of the embedded backend's tokens (backend/auth.py: Authority.mint)
  return { subject: `${kind}:${handle}`, preferredUsername: handle, name: handle, collab_kind: kind };
}

async function pendingDue(t: Test, until: number): Promise<number | null> {
  // the earliest pending scheduled function due at or before `until`
  const jobs = await t.run(async (ctx) => await ctx.db.system.query("_scheduled_functions").collect());
  const due = jobs
    .filter((j) => j.state.kind === "pending" && j.scheduledTime <= until)
    .map((j) => j.scheduledTime)
    .sort((a, b) => a - b);
  return due.length > 0 ? due[0]! : null;
}

/** Move the clock by `ms`, running each scheduled function at its own time, in time order (and
 * what those schedule in the window), as the embedded runner does. */
async function advance(t: Test, state: State, ms: number): Promise<void> {
  const target = state.now + ms;
  for (let guard = 0; guard < 10_000; guard++) {
    const next = await pendingDue(t, target);
    if (next === null) break;
    const now = Date.now();
    vi.advanceTimersByTime(Math.max(0, next - now));
    await t.finishInProgressScheduledFunctions();
  }
  vi.advanceTimersByTime(Math.max(0, target - Date.now()));
  await t.finishInProgressScheduledFunctions();
  state.now = target;
  expect(Date.now()).toBe(target);
}

async function runScenario(scenario: Scenario): Promise<void> {
  vi.useFakeTimers({ now: T0 });
  // No `limits`: Convex's defaults, enforced (convex-test's `transactionLimits: true`).
  const t = convexTest({ schema, modules, transactionLimits: scenario.limits ?? true });
  const identities = scenario.identities ?? {};
  const state = new State();
  for (const [handle, kind] of Object.entries(identities)) state.subjects.set(handle, identityOf(handle, kind).subject);
  for (const [i, step] of scenario.steps.entries()) {
    let where = `step ${i}` + (step.note ? ` (${step.note})` : "");
    if (step.advanceMs !== undefined) {
      await advance(t, state, step.advanceMs);
      continue;
    }
    if (step.call === undefined) throw new Error(`${where}: a step needs \`call\` or \`advanceMs\``);
    where += ` ${step.call} as ${step.as ?? null}`;
    const who = step.as ?? null;
    const caller = who === null ? t : t.withIdentity(identityOf(who, identities[who]!));
    const args = state.resolve(step.args ?? {}) as Record<string, Value>;
    let value: unknown;
    let failure: Failure | null = null;
    try {
      value =
        (await kindOf(step.call)) === "query"
          ? await caller.query(makeFunctionReference<"query">(step.call), args)
          : await caller.mutation(makeFunctionReference<"mutation">(step.call), args);
    } catch (e) {
      if (e instanceof ConvexError) failure = { message: e.message, data: e.data as Value, isConvexError: true };
      else if (e instanceof Error) failure = { message: e.message, isConvexError: false };
      else throw e;
    }
    if (failure !== null) {
      state.matchFailure(step.expect, failure, where);
      continue;
    }
    if (step.expect !== undefined) state.match(step.expect, value, where);
    if (step.save !== undefined) state.saved.set(step.save, value);
  }
}

afterEach(() => {
  vi.useRealTimers();
});

for (const [path, scenario] of Object.entries(scenarios)) {
  const name = path.split("/").pop()!.replace(/\.json$/, "");
  const unenforced = [...limitKindsExpected(scenario)].filter((k) => UNENFORCED_LIMITS.includes(k));
  if (unenforced.length > 0) {
    test.skip(`${name}: convex-test does not enforce the ${unenforced.join(", ")} limit(s)`, () => {});
  } else {
    test(name, async () => {
      await runScenario(scenario);
    });
  }
}
