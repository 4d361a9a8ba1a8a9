// The Node runner of the shared scenarios (tests/scenarios.test.ts) and the registry dump run
// in Convex's edge runtime, as convex-test requires.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "edge-runtime",
    server: { deps: { inline: ["convex-test"] } },
    include: ["tests/**/*.test.ts"],
  },
});
