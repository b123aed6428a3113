// @ts-check
/**
 * Child process of the bench that serves our OP: the `wrangler deploy --dry-run` bundle in Miniflare, with persisted
 * local state (real SQLite-backed Durable Objects and D1), D1 migrations from drizzle/ applied on start — the way
 * tests/e2e/helpers/worker-host.mjs hosts the Worker for the end-to-end tests (both through scripts/local-worker.mjs). It runs in its own process group so
 * the bench can read the CPU time and memory of this process and its workerd together.
 *
 * Options arrive as JSON in $BENCH_OP_OPTIONS: { scriptPath, stateDir, migrationsDir, worker }.
 * IPC out: { type: "ready", url } once serving, or { type: "error", error }.
 */
import { applyMigrations, localWorker } from "../scripts/local-worker.mjs";

const raw = process.env.BENCH_OP_OPTIONS;
if (!raw || !process.send) {
  console.error("bench/op-host.mjs is started by bench/run.mjs, with an IPC channel");
  process.exit(2);
}
/** @type {import("../scripts/local-worker.mjs").LocalWorkerOptions} */
const options = JSON.parse(raw);

const mf = localWorker(options);

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
  await applyMigrations(mf, options.migrationsDir);
  process.send({ type: "ready", url: url.href.replace(/\/$/, "") });
} catch (error) {
  process.send({ type: "error", error: error instanceof Error ? error.stack : String(error) });
  await mf.dispose().catch(() => {});
  process.exit(1);
}
