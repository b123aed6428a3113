// @ts-check
/**
 * One load generator for every server: autocannon in this process, over loopback, one connection = one request in
 * flight (no pipelining). Each connection gets its own request list (so a refresh chain or a user belongs to one
 * connection). A measured round sends a fixed number of operations (`amount`), so it ends with nothing in flight:
 * no request is cut off half-way (a cut-off refresh would leave its chain unknown), and the server's CPU time read
 * after the round belongs to exactly the requests counted.
 */
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import { groupCpuMs, groupProcesses, selfCpuMs } from "./procs.mjs";
import { sleep } from "./http.mjs";

/**
 * @typedef {object} RoundStats
 * @property {number} ok           operations that did what they should (e.g. 200 with a new refresh token)
 * @property {number} failed       operations that got any other answer (or none)
 * @property {Record<string, number>} statuses  HTTP status → count, over every response
 * @property {number[]} latencies  ms per operation (an authorize → token round trip counts as one)
 */

/** @returns {RoundStats} */
export function newStats() {
  return { ok: 0, failed: 0, statuses: {}, latencies: [] };
}

/**
 * @typedef {object} LoadRequest  one entry of autocannon's `requests`
 * @property {string} [method]
 * @property {string} [path]
 * @property {Record<string, string>} [headers]
 * @property {string} [body]
 * @property {(req: any, context: any) => any} [setupRequest]
 * @property {(status: number, body: string, context: any, headers: Record<string, any>) => void} [onResponse]
 */

/**
 * @typedef {object} RoundResult
 * @property {number} ops          operations completed (ok + failed)
 * @property {number} ok
 * @property {number} failed
 * @property {number} requests     HTTP responses
 * @property {number} seconds      wall time of the round
 * @property {number} opsPerSec    ok operations per second
 * @property {number} cpuMs        CPU time of the server's process tree during the round (and its short tail)
 * @property {number} cpuMsPerOp
 * @property {Record<string, number>} cpuMsByProcess  by process name (e.g. workerd, node)
 * @property {number} loadgenCpuMs CPU time of this process (the load generator) during the round
 * @property {{ p50: number, p95: number, p99: number, max: number }} latency ms per operation
 * @property {Record<string, number>} statuses
 * @property {boolean} truncated   stopped by the time guard before all operations were done
 * @property {number} errors       connection errors and timeouts (autocannon)
 * @property {number} settleMs     how long the server took to fall quiet after the round (its CPU meanwhile is counted)
 */

/**
 * @param {number[]} values
 * @param {number} p 0..100
 */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/**
 * Per-process CPU of a group, by process name.
 * @param {import("./procs.mjs").ProcInfo[]} procs
 */
function cpuByName(procs) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const p of procs) out[p.comm] = (out[p.comm] ?? 0) + p.cpuMs;
  return out;
}

/**
 * Waits until the process group has been idle for a moment (in-flight work and what the requests set off — alarms,
 * outbox deliveries — done), at most `maxMs`.
 * @param {number} pgid
 * @param {number} maxMs
 */
export async function settle(pgid, maxMs = 1000) {
  const started = performance.now();
  let last = groupCpuMs(pgid);
  while (performance.now() - started < maxMs) {
    await sleep(50);
    const now = groupCpuMs(pgid);
    if (now - last < 10) break; // not one clock tick (10 ms) in 50 ms
    last = now;
  }
  return performance.now() - started;
}

/**
 * One round of load against one server.
 * @param {object} options
 * @param {string} options.url            the server's origin
 * @param {number} options.pgid           its process group (CPU is read from /proc for the whole group)
 * @param {number} options.connections
 * @param {number} [options.amount]       HTTP requests to send in all (measured rounds)
 * @param {number} [options.durationSec]  or: run for this long (warm-up; ends with requests in flight)
 * @param {number} options.requestsPerOp  1, or 2 for authorize → token
 * @param {(connection: number, stats: RoundStats) => LoadRequest[]} options.requestsFor
 * @param {boolean} [options.latencyFromResponses]  per-request latency from autocannon (single-request operations)
 * @param {number} [options.timeoutMs]    time guard for an `amount` round
 * @returns {Promise<RoundResult>}
 */
export async function runRound(options) {
  const stats = newStats();
  let connection = 0;
  const before = { cpu: groupCpuMs(options.pgid), procs: cpuByName(groupProcesses(options.pgid)), self: selfCpuMs() };
  const started = performance.now();
  let truncated = false;
  /** @type {any} */
  const result = await new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        timeout: 30,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationSec ?? 1 }),
        // A harmless first list, replaced for each connection in setupClient before it sends anything.
        requests: [{ method: "GET", path: "/" }],
        setupClient(/** @type {any} */ client) {
          client.setRequests(options.requestsFor(connection++, stats));
        },
      },
      (/** @type {Error | null} */ error, /** @type {any} */ res) => (error ? reject(error) : resolve(res)),
    );
    instance.on("response", (/** @type {any} */ _client, /** @type {number} */ status, /** @type {number} */ _bytes, /** @type {number} */ ms) => {
      stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
      if (options.latencyFromResponses) stats.latencies.push(ms);
    });
    if (options.amount !== undefined && options.timeoutMs !== undefined) {
      const guard = setTimeout(() => {
        truncated = true;
        instance.stop();
      }, options.timeoutMs);
      instance.on("done", () => clearTimeout(guard));
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const settleMs = await settle(options.pgid);
  const afterProcs = cpuByName(groupProcesses(options.pgid));
  const cpuMs = groupCpuMs(options.pgid) - before.cpu;
  const loadgenCpuMs = selfCpuMs() - before.self;
  const requests = Object.values(stats.statuses).reduce((a, b) => a + b, 0);
  const ops = Math.max(stats.ok + stats.failed, Math.floor(requests / options.requestsPerOp));
  /** @type {Record<string, number>} */
  const cpuMsByProcess = {};
  for (const [name, ms] of Object.entries(afterProcs)) cpuMsByProcess[name] = ms - (before.procs[name] ?? 0);
  return {
    ops,
    ok: stats.ok,
    failed: ops - stats.ok,
    requests,
    seconds,
    opsPerSec: stats.ok / seconds,
    cpuMs,
    cpuMsPerOp: ops > 0 ? cpuMs / ops : NaN,
    cpuMsByProcess,
    loadgenCpuMs,
    latency: {
      p50: percentile(stats.latencies, 50),
      p95: percentile(stats.latencies, 95),
      p99: percentile(stats.latencies, 99),
      max: percentile(stats.latencies, 100),
    },
    statuses: stats.statuses,
    truncated,
    errors: (result?.errors ?? 0) + (result?.timeouts ?? 0),
    settleMs,
  };
}
