// Errors are data: every failure a client should act on is a `ConvexError` whose data has a
// `code` and a human `message` plus the facts needed to show it (who holds the lock, ...).
// The twin of backend/model/_errors.py: same codes, same messages, same fields.
import { ConvexError, type Value } from "convex/values";

export type ErrorFacts = Record<string, Value | undefined>;

export function fail(code: string, message: string, facts: ErrorFacts = {}): never {
  const data: Record<string, Value> = { code, message };
  for (const [key, value] of Object.entries(facts)) {
    // Python sends `None` as null; an absent fact stays absent on both sides.
    if (value !== undefined) data[key] = value;
  }
  throw new ConvexError(data);
}

export function notFound(what: string, ident: string): never {
  return fail("NOT_FOUND", `${what} ${ident} does not exist`, { what, id: ident });
}

export function invalid(message: string, facts: ErrorFacts = {}): never {
  return fail("INVALID_ARGUMENT", message, facts);
}
