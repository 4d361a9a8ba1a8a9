// Prints the TypeScript registry as JSON: every exported Convex function of convex/ (kind,
// visibility, argument validator as `exportArgs()` gives it, returns validator, policy and
// scope of the policy wrapper) and the schema as `defineSchema(...).export()` gives it.
// tests/typescript/test_parity.py compares it with the Python registry
// (`App.from_package("collab.backend.model")`), so a function on one side only, or a validator
// that differs, fails a test.
//
// The modules are TypeScript with extensionless imports, which Node 20 cannot load: esbuild
// bundles them into one ES module in memory first.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeFileSync, rmSync } from "node:fs";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// The Convex CLI's entry-point rule (see tools/codegen.mjs).
const modules = readdirSync(root)
  .filter((f) => f.endsWith(".ts") && (f.match(/\./g) ?? []).length === 1 && f !== "schema.ts")
  .map((f) => f.slice(0, -3))
  .sort();

const entry = `
${modules.map((m, i) => `import * as m${i} from ${JSON.stringify("./" + m + ".ts")};`).join("\n")}
import schema from "./schema.ts";
const modules = { ${modules.map((m, i) => `${JSON.stringify(m)}: m${i}`).join(", ")} };
const functions = {};
for (const [mod, exports] of Object.entries(modules)) {
  for (const [name, fn] of Object.entries(exports)) {
    if (typeof fn !== "function" || !(fn.isQuery || fn.isMutation || fn.isAction)) continue;
    functions[mod + ":" + name] = {
      kind: fn.isQuery ? "query" : fn.isMutation ? "mutation" : "action",
      visibility: fn.isPublic ? "public" : "internal",
      args: JSON.parse(fn.exportArgs()),
      returns: JSON.parse(fn.exportReturns()),
      policy: fn.policy ?? null,
      scope: fn.scope ?? null,
    };
  }
}
process.stdout.write(JSON.stringify({ functions, schema: JSON.parse(schema.export()) }));
`;

const result = await build({
  stdin: { contents: entry, resolveDir: root, loader: "js", sourcefile: "registry-entry.js" },
  bundle: true,
  platform: "node",
  format: "esm",
  write: false,
  logLevel: "error",
  external: ["convex", "convex/*"],
});
// Written inside node_modules so that `convex` (left external: one copy of its module state)
// resolves from it; removed at once.
const file = join(root, "node_modules", `.collab-registry-${process.pid}.mjs`);
writeFileSync(file, result.outputFiles[0].text);
try {
  await import(pathToFileURL(file).href);
} finally {
  rmSync(file, { force: true });
}
