// How many rows a list or page query returns: validated, and capped. Twin of
// backend/model/_limits.py.
//
// A query re-runs on every write to what it read, so one asking for a million rows would make
// every write in its space pay for them. Every `limit` and `numItems` is therefore a positive
// integer, and anything above MAX_ROWS is served as MAX_ROWS (a client that wants more pages
// on; docs/API.md "Limits").
import { invalid } from "./_errors";

export const MAX_ROWS = 1000;

/** `value` (or `fallback` when absent) as a row count: INVALID_ARGUMENT naming `field` unless
 * it is a positive integer; at most MAX_ROWS. */
export function rowLimit(value: number | undefined, fallback: number, field = "limit"): number {
  if (value === undefined) return Math.min(fallback, MAX_ROWS);
  if (!Number.isInteger(value) || value < 1) {
    invalid(`${field} must be a positive integer`, { field });
  }
  return Math.min(value, MAX_ROWS);
}
