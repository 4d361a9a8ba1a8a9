// Small helpers shared by the modules: audit rows, notifications, slugs, message parsing, and
// the Python string semantics the twin modules rely on (backend/model/_util.py).
//
// Text lengths and offsets are counted in Unicode code points, as Python's `len()` and slices
// do, never in UTF-16 units: the worker computes `base` offsets in Python, and a stream's tail
// must be cut at the same place on both backends (an emoji is 1 in Python, 2 in `.length`).
import type { Value } from "convex/values";
import type { Doc, Id, TableNames } from "./_generated/dataModel";
import type { DatabaseReader, MutationCtx } from "./_generated/server";
import { invalid } from "./_errors";

const SURROGATE = /[\ud800-\udfff]/;

/** Python `len(s)`: the number of code points. */
export function cpLen(s: string): number {
  if (!SURROGATE.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Python `s[start:end]` with 0 <= start <= end, in code points (`end` omitted: to the end). */
export function cpSlice(s: string, start: number, end?: number): string {
  if (!SURROGATE.test(s)) return s.slice(start, end);
  return Array.from(s).slice(start, end).join("");
}

/** Python `repr(s)` of a str, for messages that quote a user value (`{name!r}`). */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += "\\" + quote;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + quote;
}

/** Python `format(x, "g")` (`f"{x:g}"`): 6 significant digits, fixed notation for exponents
 * -4..5 and scientific otherwise, trailing zeros dropped (`2.0` -> `"2"`, `1e-05`, `1.5e+07`).
 * A tie in the 7th digit of an exactly representable number rounds up here and to even in
 * Python. */
export function pyG(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mantissa, e] = x.toExponential(5).split("e") as [string, string];
  const exp = Number(e);
  const trim = (digits: string) => (digits.includes(".") ? digits.replace(/0+$/, "").replace(/\.$/, "") : digits);
  if (exp >= -4 && exp < 6) return trim(x.toFixed(5 - exp));
  return `${trim(mantissa)}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

/** Python `format(x, f".{digits}f")` (`f"{x:.2f}"`): fixed notation, the exact binary value
 * rounded half to even (JS `toFixed` rounds an exact tie up, and drops the sign of `-0`). */
export function pyFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const a = Math.abs(x);
  let out = a.toFixed(digits);
  // A tie has the exact expansion ...5000 after `digits` places (toFixed(100) is exact there).
  const exact = a.toFixed(100);
  const dot = exact.indexOf(".");
  if (/^50*$/.test(exact.slice(dot + 1 + digits))) {
    const down = digits === 0 ? exact.slice(0, dot) : exact.slice(0, dot + 1 + digits);
    if (Number(down[down.length - 1]) % 2 === 0) out = down;
  }
  return sign + out;
}

/** Python `bool(value)` of a Convex value: empty strings, arrays, objects and bytes, zero and
 * null are false; NaN is true (JS truthiness differs on `[]`, `{}` and NaN). */
export function pyTruthy(value: Value | undefined): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "bigint") return value !== 0n;
  if (typeof value === "boolean") return value;
  if (typeof value === "string") return value.length > 0;
  if (Array.isArray(value)) return value.length > 0;
  if (value instanceof ArrayBuffer) return value.byteLength > 0;
  return Object.keys(value).length > 0;
}

// What Python's `str.isspace()` accepts (JS `\s` also takes U+FEFF and not U+001C-U+001F, U+0085).
const PY_SPACE =
  /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Python `str.strip()`: whitespace as Python's `str.isspace()` defines it. */
export function pyStrip(s: string): string {
  return s.replace(PY_SPACE, "");
}

function stripChars(s: string, chars: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && chars.includes(s[a]!)) a++;
  while (b > a && chars.includes(s[b - 1]!)) b--;
  return s.slice(a, b);
}

function rstripChars(s: string, chars: string): string {
  let b = s.length;
  while (b > 0 && chars.includes(s[b - 1]!)) b--;
  return s.slice(0, b);
}

// `@` / `#` not preceded by a word character (Python's Unicode `\w`: letters, digits, `_`).
const HANDLE_RE = /(?<![\p{L}\p{N}_@])@([A-Za-z0-9][A-Za-z0-9_.-]*)/gu;
const REF_RE = /(?<![\p{L}\p{N}_#&])#([A-Za-z0-9][A-Za-z0-9_./-]*)/gu;
const TRAILING = ".-/_";

export async function audit(
  ctx: MutationCtx,
  spaceId: Id<"spaces">,
  type: string,
  data: Value,
  opts: { artifactId?: Id<"artifacts">; actorId?: Id<"actors"> } = {},
): Promise<Id<"audit">> {
  return await ctx.db.insert("audit", {
    spaceId,
    type,
    data,
    at: Date.now(),
    ...(opts.artifactId !== undefined ? { artifactId: opts.artifactId } : {}),
    ...(opts.actorId !== undefined ? { actorId: opts.actorId } : {}),
  });
}

export async function notify(
  ctx: MutationCtx,
  actorId: Id<"actors">,
  spaceId: Id<"spaces">,
  kind: string,
  text: string,
  extra: { messageId?: Id<"messages">; artifactId?: Id<"artifacts">; data?: Value | null } = {},
): Promise<Id<"notifications">> {
  return await ctx.db.insert("notifications", {
    actorId,
    spaceId,
    kind,
    read: false,
    text,
    at: Date.now(),
    ...(extra.messageId != null ? { messageId: extra.messageId } : {}),
    ...(extra.artifactId != null ? { artifactId: extra.artifactId } : {}),
    ...(extra.data != null ? { data: extra.data } : {}),
  });
}

/** `"Test plan (v2)"` -> `"test-plan-v2"`: what `#test-plan-v2` refers to. */
export function slugify(title: string): string {
  const slug = stripChars(title.toLowerCase().replace(/[^a-z0-9_./]+/g, "-"), "-./_");
  return slug.slice(0, 60) || "artifact";
}

export function checkSlug(slug: string): string {
  if (!/^[a-z0-9][a-z0-9_./-]*$/.test(slug) || TRAILING.includes(slug[slug.length - 1]!)) {
    invalid(`slug ${pyRepr(slug)} must be lowercase letters, digits and - _ . / (not at the end)`);
  }
  return slug;
}

/** `@handle` tokens in order, without duplicates. A trailing `.`/`-` ends the sentence, not
 * the handle (`@edwin.` mentions `edwin`); e-mail addresses don't count. */
export function parseMentions(body: string): string[] {
  const seen: string[] = [];
  for (const m of body.matchAll(HANDLE_RE)) {
    const handle = rstripChars(m[1]!, TRAILING);
    if (handle && !seen.includes(handle)) seen.push(handle);
  }
  return seen;
}

/** `#slug` tokens (lowercased) in order, without duplicates; trailing punctuation is not part
 * of the slug (`#test-plan?` refers to `test-plan`). */
export function parseRefs(body: string): string[] {
  const seen: string[] = [];
  for (const m of body.matchAll(REF_RE)) {
    const slug = rstripChars(m[1]!, TRAILING).toLowerCase();
    if (slug && !seen.includes(slug)) seen.push(slug);
  }
  return seen;
}

export function actorSummary(actor: Doc<"actors"> | null) {
  if (actor === null) return null;
  return { actorId: actor._id, handle: actor.handle, name: actor.name, kind: actor.kind };
}

/** `ctx.db.get` restricted to one table: an id of another table reads as "not found". */
export async function getIn<T extends TableNames>(
  db: DatabaseReader,
  table: T,
  id: string,
): Promise<Doc<T> | null> {
  const normalized = db.normalizeId(table, id);
  if (normalized === null) return null;
  return (await db.get(normalized)) as Doc<T> | null;
}

/** Unpredictable text for capabilities (invite codes): `crypto.getRandomValues`, which Convex
 * allows in mutations (a generator seeded per execution). base64url without padding, like
 * Python's `secrets.token_urlsafe(nbytes)`; the embedded backend's `ctx.random_bytes` twin. */
export function randomToken(nbytes: number): string {
  const bytes = new Uint8Array(nbytes);
  crypto.getRandomValues(bytes);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
