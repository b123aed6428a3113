// @ts-check
/**
 * The built Worker in Miniflare with persisted local state (real SQLite-backed Durable Objects and D1), and the D1
 * migrations of drizzle/ applied on start: what the end-to-end tests' host (tests/e2e/helpers/worker-host.mjs) and the
 * bench's (bench/op-host.mjs) both run, each in a child process of its own.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";

/**
 * @typedef {object} LocalWorkerOptions
 * @property {string} scriptPath   the bundle written by `wrangler deploy --dry-run --outdir`
 * @property {string} stateDir     persisted Durable Object, D1 and KV storage
 * @property {string} migrationsDir  D1 migrations (drizzle/), applied on start like `wrangler d1 migrations apply`
 * @property {Record<string, unknown>} worker  the wrangler.jsonc bindings as Miniflare worker options
 */

/** @param {LocalWorkerOptions} options */
export function localWorker(options) {
  return new Miniflare({
    ...options.worker,
    scriptPath: options.scriptPath,
    modulesRoot: path.dirname(options.scriptPath),
    modules: true,
    cf: false,
    host: "127.0.0.1",
    port: 0,
    durableObjectsPersist: path.join(options.stateDir, "do"),
    d1Persist: path.join(options.stateDir, "d1"),
    kvPersist: path.join(options.stateDir, "kv"),
  });
}

/**
 * Applies the migrations not yet applied, each in one batch with its row in the `d1_migrations` table wrangler uses.
 * @param {Miniflare} mf
 * @param {string} migrationsDir
 */
export async function applyMigrations(mf, migrationsDir) {
  const db = await mf.getD1Database("DB");
  await db.exec("CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
  const applied = new Set((await db.prepare("SELECT name FROM d1_migrations").all()).results.map((r) => String(r.name)));
  for (const file of readdirSync(migrationsDir).filter((f) => f.endsWith(".sql")).sort()) {
    if (applied.has(file)) continue;
    const statements = readFileSync(path.join(migrationsDir, file), "utf8")
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    await db.batch([...statements.map((s) => db.prepare(s)), db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(file)]);
  }
}
