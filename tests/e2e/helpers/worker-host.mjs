// @ts-check
/**
 * Child process that hosts the built Worker in Miniflare with persisted state, driven over IPC by
 * tests/e2e/helpers/worker-process.ts. It exists so a test can SIGKILL the whole process group (this process
 * and workerd) and start a new one on the same state: a real crash, with no graceful shutdown.
 *
 * Options arrive as JSON in $WORKER_HOST_OPTIONS (see `HostOptions` in worker-process.ts).
 * Messages in:  { id, op: "call", binding, name, method, args } → a JS RPC call on the object `name` of `binding`
 *               { id, op: "d1", sql, params }                      → D1 `prepare(sql).bind(...params).all()`
 *               { id, op: "fetch", path, method?, headers?, body? } → the Worker's fetch handler
 * Messages out: { type: "ready", url } once, then { id, ok: true, value } or { id, ok: false, error } per request.
 * Requests are handled concurrently, so N requests sent at once are N concurrent calls into workerd.
 */
import { applyMigrations, localWorker } from "../../../scripts/local-worker.mjs";

/** @typedef {import("../../../scripts/local-worker.mjs").LocalWorkerOptions} HostOptions */

const raw = process.env.WORKER_HOST_OPTIONS;
if (!raw || !process.send) {
  console.error("worker-host.mjs is started by tests/e2e/helpers/worker-process.ts, with an IPC channel");
  process.exit(2);
}
/** @type {HostOptions} */
const options = JSON.parse(raw);
/** @param {unknown} message */
const send = (message) => process.send?.(message);

const mf = localWorker(options);

/**
 * @param {Record<string, unknown>} request
 * @returns {Promise<unknown>}
 */
async function handle(request) {
  switch (request.op) {
    case "call": {
      const namespace = await mf.getDurableObjectNamespace(String(request.binding));
      const stub = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (namespace.get(namespace.idFromName(String(request.name)))));
      const method = stub[String(request.method)];
      if (typeof method !== "function") throw new Error(`${String(request.binding)} has no method ${String(request.method)}`);
      const args = Array.isArray(request.args) ? request.args : [];
      // Results come back as proxies of the workerd values; JSON makes them plain data for IPC.
      return JSON.parse(JSON.stringify((await method.apply(stub, args)) ?? null));
    }
    case "d1": {
      const db = await mf.getD1Database("DB");
      const params = Array.isArray(request.params) ? request.params : [];
      const result = await db.prepare(String(request.sql)).bind(...params).all();
      return JSON.parse(JSON.stringify(result.results));
    }
    case "fetch": {
      const init = /** @type {{ method?: string, headers?: Record<string, string>, body?: string }} */ (request);
      const response = await mf.dispatchFetch(`http://localhost${String(request.path)}`, {
        method: init.method ?? "GET",
        headers: init.headers ?? {},
        body: init.body ?? null,
        redirect: "manual",
      });
      return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
    }
    default:
      throw new Error(`unknown op ${String(request.op)}`);
  }
}

process.on("message", (message) => {
  const request = /** @type {Record<string, unknown>} */ (message);
  handle(request).then(
    (value) => send({ id: request.id, ok: true, value }),
    (error) => send({ id: request.id, ok: false, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
  );
});

/** A graceful stop (the tests' crash path is SIGKILL of the whole group, which never reaches this). */
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
  send({ type: "ready", url: url.href });
} catch (error) {
  console.error(error);
  await mf.dispose().catch(() => {});
  process.exit(1);
}
