// @ts-check
/**
 * Child process of the bench that serves our OP: the `wrangler deploy --dry-run` bundle in Miniflare, with persisted
 * local state (real SQLite-backed Durable Objects and D1), D1 migrations from drizzle/ applied on start — the way
 * tests/e2e/helpers/worker-host.mjs hosts the Worker for the end-to-end tests. It runs in its own process group so
 * the bench can read the CPU time and memory of this process and its workerd together.
 *
 * Options arrive as JSON in $BENCH_OP_OPTIONS: { scriptPath, stateDir, migrationsDir, worker }.
 * IPC out: { type: "ready", url } once serving, or { type: "error", error }.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";

const raw = process.env.BENCH_OP_OPTIONS;
if (!raw || !process.send) {
  console.error("bench/op-host.mjs is started by bench/run.mjs, with an IPC channel");
  process.exit(2);
}
/** @type {{ scriptPath: string, stateDir: string, migrationsDir: string, worker: Record<string, unknown> }} */
const options = JSON.parse(raw);

const mf = new Miniflare({
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

/** The migrations not yet applied, recorded in the `d1_migrations` table as `wrangler d1 migrations apply` does. */
async function applyMigrations() {
  const db = await mf.getD1Database("DB");
  await db.exec("CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
  const applied = new Set((await db.prepare("SELECT name FROM d1_migrations").all()).results.map((r) => String(r.name)));
  for (const file of readdirSync(options.migrationsDir).filter((f) => f.endsWith(".sql")).sort()) {
    if (applied.has(file)) continue;
    const statements = readFileSync(path.join(options.migrationsDir, file), "utf8")
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    await db.batch([...statements.map((s) => db.prepare(s)), db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(file)]);
  }
}

async function shutdown() {
  try {
    await mf.dispose();
  } finally {
    process.exit(0);
  }
}
process.on("disconnect", () => void shutdown());
process.on("SIGTERM", () => void shutdown());

try {
  const url = await mf.ready;
  await applyMigrations();
  process.send({ type: "ready", url: url.href.replace(/\/$/, "") });
} catch (error) {
  process.send({ type: "error", error: error instanceof Error ? error.stack : String(error) });
  await mf.dispose().catch(() => {});
  process.exit(1);
}
