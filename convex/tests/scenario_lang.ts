// The scenario language (tests/scenarios/README.md), TypeScript side: resolving argument values,
// matching results and errors. Its twin is tests/scenarios/_lang.py; keep them in step.
import type { Value } from "convex/values";

export const T0 = 1_700_000_000_000;
// `$now` accepts a value up to this much later than the scenario's clock: while the fake clock
// stands still, convex-test gives each transaction a time 1 ms past the previous commit.
export const CLOCK_DRIFT_MS = 100;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type Step = {
  note?: string;
  as?: string | null;
  call?: string;
  args?: Record<string, Json>;
  expect?: Json;
  save?: string;
  advanceMs?: number;
};

export type Scenario = {
  description: string;
  identities?: Record<string, "human" | "agent">;
  limits?: Record<string, number>;
  steps: Step[];
};

// How convex-test words each limit (node_modules/convex-test/dist: transactionMetrics.js and the
// document size check); the embedded backend uses a Convex deployment's words (see _lang.py).
export const LIMIT_MESSAGES: Record<string, RegExp> = {
  documentSize: /Value is too large/,
  bytesRead: /Read too much data in a single function execution/,
  bytesWritten: /Wrote too much data in a single function execution/,
  documentsRead: /Scanned too many documents in a single function execution/,
  documentsWritten: /Wrote too many documents in a single function execution/,
  databaseQueries: /Too many index ranges read in a single function execution/,
  functionsScheduled: /Scheduled too many functions in a single function execution/,
};
// Limits convex-test does not enforce: a scenario expecting one of them is skipped here.
export const UNENFORCED_LIMITS = ["nesting", "arrayLength", "objectFields", "userTime"];
export const VALIDATION_MESSAGE = /Validator error|ArgumentValidationError/;

export class Mismatch extends Error {}

export type Failure = { message: string; data?: Value; isConvexError: boolean };

export function limitKindsExpected(scenario: Scenario): Set<string> {
  const kinds = new Set<string>();
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x !== null && typeof x === "object") {
      const err = (x as Record<string, unknown>)["$error"];
      if (err !== null && typeof err === "object" && "limit" in (err as object)) {
        kinds.add(String((err as { limit: unknown }).limit));
      }
      Object.values(x).forEach(walk);
    }
  };
  walk(scenario.steps);
  return kinds;
}

function show(x: unknown): string {
  const text = JSON.stringify(x) ?? String(x);
  return text.length <= 300 ? text : text.slice(0, 297) + "...";
}

function typeOf(x: unknown): string {
  if (x === null || x === undefined) return "null";
  if (Array.isArray(x)) return "array";
  if (typeof x === "object") return "object";
  return typeof x; // boolean, number, string (bigint is not used by the scenarios)
}

function sameScalar(a: unknown, b: unknown): boolean {
  return typeOf(a) === typeOf(b) && a === b;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (typeOf(a) === "object" && typeOf(b) === "object") {
    const ka = Object.keys(a as object).sort();
    const kb = Object.keys(b as object).sort();
    return deepEqual(ka, kb) && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return sameScalar(a, b);
}

function isSpecial(x: Json): x is { [key: string]: Json } {
  return x !== null && typeof x === "object" && !Array.isArray(x) && Object.keys(x).some((k) => k.startsWith("$"));
}

export class State {
  saved = new Map<string, unknown>();
  now = T0;
  // handle -> the token subject the runner gives it (`$subject`)
  subjects = new Map<string, string>();

  resolve(value: Json): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== "object") return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const key = keys[0]!;
      const arg = value[key]!;
      if (key === "$ref") return this.ref(String(arg));
      if (key === "$repeat") {
        const [text, times] = arg as [string, number];
        return text.repeat(times);
      }
      if (key === "$nested") {
        const [depth, leaf] = arg as [number, Json];
        let out: unknown = this.resolve(leaf);
        for (let i = 0; i < depth; i++) out = { a: out };
        return out;
      }
      if (key === "$array") {
        const [n, item] = arg as [number, Json];
        return Array.from({ length: n }, () => this.resolve(item));
      }
      if (key === "$object") {
        const [n, item] = arg as [number, Json];
        return Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, this.resolve(item)]));
      }
    }
    if (keys.some((k) => k.startsWith("$"))) throw new Error(`unknown argument form ${show(keys)}`);
    return Object.fromEntries(keys.map((k) => [k, this.resolve(value[k]!)]));
  }

  ref(path: string): unknown {
    const [name, ...rest] = path.split(".");
    if (!this.saved.has(name!)) throw new Error(`$ref ${path}: nothing saved as ${name}`);
    let value = this.saved.get(name!);
    for (const part of rest) {
      value = Array.isArray(value) ? value[Number(part)] : (value as Record<string, unknown>)[part];
    }
    return value;
  }

  match(expected: Json, actual: unknown, where = "result"): void {
    if (isSpecial(expected)) {
      this.matchSpecial(expected, actual, where);
    } else if (Array.isArray(expected)) {
      if (!Array.isArray(actual) || actual.length !== expected.length) {
        throw new Mismatch(`${where}: expected an array of ${expected.length}, got ${show(actual)}`);
      }
      expected.forEach((e, i) => this.match(e, actual[i], `${where}[${i}]`));
    } else if (expected !== null && typeof expected === "object") {
      if (typeOf(actual) !== "object") throw new Mismatch(`${where}: expected an object, got ${show(actual)}`);
      const act = actual as Record<string, unknown>;
      // a field whose value is undefined is absent (as in the Convex value sent to a client)
      const actualKeys = Object.keys(act).filter((k) => act[k] !== undefined);
      const missing = Object.keys(expected).filter((k) => !actualKeys.includes(k));
      const extra = actualKeys.filter((k) => !(k in expected));
      if (missing.length || extra.length) {
        throw new Mismatch(`${where}: fields differ: missing ${show(missing.sort())}, unexpected ${show(extra.sort())}`);
      }
      for (const [k, e] of Object.entries(expected as { [key: string]: Json })) this.match(e, act[k], `${where}.${k}`);
    } else if (!sameScalar(expected, actual)) {
      throw new Mismatch(`${where}: expected ${show(expected)}, got ${show(actual)}`);
    }
  }

  private matchSpecial(expected: { [key: string]: Json }, actual: unknown, where: string): void {
    if ("$save" in expected) {
      if ("$match" in expected) this.match(expected["$match"]!, actual, where);
      this.saved.set(String(expected["$save"]), actual);
    } else if ("$ref" in expected) {
      const want = this.ref(String(expected["$ref"]));
      if (!deepEqual(want, actual)) throw new Mismatch(`${where}: expected $${expected["$ref"]} = ${show(want)}, got ${show(actual)}`);
    } else if ("$partial" in expected) {
      if (typeOf(actual) !== "object") throw new Mismatch(`${where}: expected an object, got ${show(actual)}`);
      const act = actual as Record<string, unknown>;
      for (const [k, e] of Object.entries(expected["$partial"] as Record<string, Json>)) {
        if (act[k] === undefined) throw new Mismatch(`${where}: missing field '${k}' in ${show(actual)}`);
        this.match(e, act[k], `${where}.${k}`);
      }
    } else if ("$type" in expected) {
      if (typeOf(actual) !== expected["$type"]) throw new Mismatch(`${where}: expected a ${expected["$type"]}, got ${show(actual)}`);
    } else if ("$len" in expected) {
      const ok = (Array.isArray(actual) || typeof actual === "string") && actual.length === expected["$len"];
      if (!ok) throw new Mismatch(`${where}: expected length ${expected["$len"]}, got ${show(actual)}`);
    } else if ("$contains" in expected) {
      if (!Array.isArray(actual)) throw new Mismatch(`${where}: expected an array, got ${show(actual)}`);
      for (const item of actual) {
        try {
          this.match(expected["$contains"]!, item, where);
          return;
        } catch (e) {
          if (!(e instanceof Mismatch)) throw e;
        }
      }
      throw new Mismatch(`${where}: no element matches ${show(expected["$contains"])} in ${show(actual)}`);
    } else if ("$subject" in expected) {
      const want = this.subjects.get(String(expected["$subject"]));
      if (actual !== want) throw new Mismatch(`${where}: expected the subject ${show(want)}, got ${show(actual)}`);
    } else if ("$now" in expected) {
      const want = this.now + Number(expected["$now"]);
      const ok = typeof actual === "number" && actual >= want && actual < want + CLOCK_DRIFT_MS;
      if (!ok) throw new Mismatch(`${where}: expected now+${expected["$now"]} = ${want}, got ${show(actual)}`);
    } else if ("$error" in expected) {
      throw new Mismatch(`${where}: expected an error ${show(expected)}, got the value ${show(actual)}`);
    } else {
      throw new Error(`unknown expectation form ${show(Object.keys(expected))}`);
    }
  }

  matchFailure(expected: Json | undefined, failure: Failure, where: string): void {
    if (expected === undefined || !isSpecial(expected) || !("$error" in expected)) {
      throw new Mismatch(`${where}: the call failed: ${failure.message} ${show(failure.data ?? null)}`);
    }
    const want = expected["$error"];
    if (typeof want === "string") {
      const data = failure.data as Record<string, unknown> | undefined;
      if (!failure.isConvexError || typeOf(data) !== "object") {
        throw new Mismatch(`${where}: expected ConvexError ${want}, got: ${failure.message}`);
      }
      if (data!.code !== want) throw new Mismatch(`${where}: expected code ${want}, got ${show(data)}`);
      if ("data" in expected) this.match({ $partial: expected["data"]! }, data, `${where}.errorData`);
      return;
    }
    if (failure.isConvexError) throw new Mismatch(`${where}: expected ${show(want)}, got ConvexError ${show(failure.data)}`);
    const spec = want as { limit?: string; validation?: boolean };
    let pattern: RegExp;
    if (spec.limit !== undefined) {
      const found = LIMIT_MESSAGES[spec.limit];
      if (found === undefined) throw new Error(`convex-test cannot check the ${spec.limit} limit`);
      pattern = found;
    } else if (spec.validation) {
      pattern = VALIDATION_MESSAGE;
    } else {
      throw new Error(`unknown $error form ${show(want)}`);
    }
    if (!pattern.test(failure.message)) {
      throw new Mismatch(`${where}: expected a failure matching ${pattern}, got: ${failure.message}`);
    }
  }
}
