import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig, type Plugin } from "vitest/config";

/**
 * A dependency whose published source map names sources it does not ship (oauth4webapi's build/index.js.map points
 * at ../src/index.ts) makes Vite warn "Sourcemap … points to missing source files" on every run. Such a map maps to
 * nothing, so it is not loaded: the dependency's stack frames show its published JavaScript, which is what runs.
 */
function skipDependencyMapsWithMissingSources(): Plugin {
  return {
    name: "skip-dependency-maps-with-missing-sources",
    enforce: "pre",
    load(id) {
      if (!id.includes("/node_modules/") || !/\.m?js$/.test(id) || !existsSync(id)) return null;
      const code = readFileSync(id, "utf8");
      const ref = /\n\/\/# sourceMappingURL=([^\s]+\.map)\s*$/.exec(code);
      if (ref === null || ref[1]!.includes(":")) return null;
      const mapFile = path.resolve(path.dirname(id), ref[1]!);
      try {
        const map = JSON.parse(readFileSync(mapFile, "utf8")) as { sources?: string[]; sourcesContent?: unknown[]; sourceRoot?: string };
        const root = path.resolve(path.dirname(mapFile), map.sourceRoot ?? "");
        const missing = (map.sources ?? []).some((source, i) => map.sourcesContent?.[i] == null && !existsSync(path.resolve(root, source)));
        return missing ? { code: code.slice(0, ref.index + 1), map: null } : null;
      } catch {
        return null;
      }
    },
  };
}

// Two projects: `workers` runs inside workerd against real Durable Objects and D1;
// `e2e` runs in Node and drives `wrangler dev` over HTTP on 127.0.0.1 with real clients and a real browser.
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          skipDependencyMapsWithMissingSources(),
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.jsonc" },
            miniflare: {
              bindings: { TEST_MIGRATIONS: await readD1Migrations(path.join(import.meta.dirname, "drizzle")), ADMIN_TOKEN: "test-admin-token-0123456789abcdefghij" },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/e2e/**"],
          setupFiles: ["./tests/apply-migrations.ts"],
          // A loopback RP receiver in Node for back-channel logout (the Worker POSTs Logout Tokens to it for real).
          globalSetup: ["./tests/e2e/helpers/rp-receiver-setup.ts"],
          // The concurrency tests send hundreds of requests through real objects: on a loaded 2-core machine they
          // take seconds, which says nothing about correctness (timings are the bench's, never the tests').
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "e2e",
          environment: "node",
          include: ["tests/e2e/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
