// What the shared scenarios cannot reach: `spaces:redeem` is internal (the embedded backend's
// code exchange calls it; scenarios call public functions only), and codes are random, so the
// forgiving of case, spaces and dashes needs a code typed differently. The same cases as
// tests/model/test_teams.py on the Python side.
import { makeFunctionReference } from "convex/server";
import { ConvexError, type Value } from "convex/values";
import { convexTest } from "convex-test";
import { expect, test } from "vitest";
import schema from "../schema";
import { codeHash, normalizeCode } from "../spaces";

const modules = import.meta.glob(["../*.ts", "../_generated/*.js", "!../*.*.ts"]);
const OLGA = { subject: "human:olga", preferredUsername: "olga", name: "olga", collab_kind: "human" };
const BOB = { subject: "human:bob", preferredUsername: "bob", name: "bob", collab_kind: "human" };

const mutation = (path: string) => makeFunctionReference<"mutation">(path);
const query = (path: string) => makeFunctionReference<"query">(path);

async function errorOf(p: Promise<unknown>): Promise<Record<string, Value>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConvexError) return e.data as Record<string, Value>;
    throw e;
  }
  throw new Error("expected a ConvexError");
}

test("codes are hashed as Python hashes them, after dropping case, spaces and dashes", async () => {
  // hashlib.sha256(normalize_code(" ABCDE-fghjk mnpqr_stuvw\n").encode()).hexdigest()
  expect(normalizeCode(" ABCDE-fghjk mnpqr_stuvw\n")).toBe("abcdefghjkmnpqrstuvw");
  expect(await codeHash(" ABCDE-fghjk mnpqr_stuvw\n")).toBe(
    "8817c65dd6c5327687200bb9d63bfbfa026e05bbf201b7b3c96609a5b22ac459",
  );
  // str.isalnum() of any script: letters, digits and numbers stay
  expect(normalizeCode("Ünï-çødé ½ ٣")).toBe("ünïçødé½٣");
});

test("a code typed in capitals, with spaces for dashes, joins", async () => {
  const t = convexTest({ schema, modules });
  const olga = t.withIdentity(OLGA);
  const space = await olga.mutation(mutation("spaces:create"), { name: "main" });
  const { code } = await olga.mutation(mutation("spaces:invite"), { spaceId: space });
  expect(code).toMatch(/^[a-hjkmnp-z2-9]{5}(-[a-hjkmnp-z2-9]{5}){3}$/);
  const typed = " " + String(code).toUpperCase().replace(/-/g, " ") + " ";
  const joined = await t.withIdentity(BOB).mutation(mutation("spaces:join"), { code: typed });
  expect(joined).toEqual({ spaceId: space, spaceName: "main", role: "editor", handle: "bob" });
  const rows = await t.run(async (ctx) => await ctx.db.query("invites").collect());
  expect(rows.map((r) => Object.keys(r).includes("code"))).toEqual([false]);
  expect(rows[0]!.codeHash).toBe(await codeHash(String(code)));
  expect(rows[0]!.hint).toBe(String(code).slice(0, 5));
});

test("redeem refuses a handle that is someone else's", async () => {
  const t = convexTest({ schema, modules });
  const olga = t.withIdentity(OLGA);
  const space = await olga.mutation(mutation("spaces:create"), { name: "main" });
  const { code } = await olga.mutation(mutation("spaces:invite"), { spaceId: space, maxUses: 5 });
  const redeem = (handle: string, name?: string) =>
    t.mutation(mutation("spaces:redeem"), { code, handle, ...(name !== undefined ? { name } : {}) });
  // the owner's own handle: a token for it would be the owner's
  expect(await errorOf(redeem("olga"))).toMatchObject({ code: "HANDLE_TAKEN", handle: "olga" });
  expect(await errorOf(redeem("All"))).toMatchObject({ code: "INVALID_HANDLE" });
  expect(await errorOf(redeem("all"))).toMatchObject({
    code: "INVALID_HANDLE",
    message: "@all is reserved (it has a meaning in messages); choose another",
  });
  expect(await errorOf(redeem("bob", " ".repeat(3) + "x".repeat(81)))).toMatchObject({
    code: "INVALID_ARGUMENT",
    message: "name must be 1-80 characters",
  });
  expect(await redeem(" bob ", " Bob B. ")).toEqual({ spaceId: space, spaceName: "main", role: "editor", handle: "bob" });
  const bob = await t.run(
    async (ctx) =>
      await ctx.db
        .query("actors")
        .withIndex("by_subject", (q) => q.eq("subject", "human:bob"))
        .unique(),
  );
  expect(bob).toMatchObject({ kind: "human", handle: "bob", name: "Bob B." });
  expect(await errorOf(redeem("bob"))).toMatchObject({
    code: "HANDLE_TAKEN",
    message: "@bob is already someone's handle on this backend: choose another one",
  });
  // an agent member's handle is taken in the space too (mentions would be ambiguous)
  await olga.mutation(mutation("spaces:addMember"), { spaceId: space, handle: "edwin", kind: "agent", role: "editor" });
  expect(await errorOf(redeem("edwin"))).toMatchObject({
    code: "HANDLE_TAKEN",
    message: "@edwin is already a member of this space: choose another handle",
  });
  for (const handle of ["carol", "dan", "eve", "fay"]) await redeem(handle);
  expect(await errorOf(redeem("gus"))).toMatchObject({
    code: "INVITE_USED_UP",
    maxUses: 5,
    message: "this invite was for 5 uses and has been used up: ask an owner of the space for a new one",
  });
  const invites = (await olga.query(query("spaces:invites"), { spaceId: space })) as { uses: number }[];
  expect(invites.map((i) => i.uses)).toEqual([5]);
  const joined = (await olga.query(query("notifications:list"), {})) as { kind: string; text: string }[];
  expect(joined.filter((n) => n.kind === "memberJoined").length).toBe(5);
  expect(joined[0]!.text).toBe(`@fay joined main as editor with your invite ${String(code).slice(0, 5)}\u2026`);
});
