// @ts-check
/**
 * One load generator for every server: autocannon in this process, over loopback, one connection = one request in
 * flight (no pipelining). Each connection gets its own request list (so a refresh chain or a user belongs to one
 * connection). Rounds are measured in a window of steady state (see runRound).
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
 * @property {boolean} closed      the measured window has closed: the round is draining (see `drained`)
 * @property {string[]} samples    the first few failed answers (status and body), to say what went wrong
 */

/** @returns {RoundStats} */
export function newStats() {
  return { ok: 0, failed: 0, statuses: {}, latencies: [], closed: false, samples: [] };
}

/**
 * Counts a failed operation and keeps a sample of the first few answers.
 * @param {RoundStats} stats
 * @param {number} status
 * @param {string} body
 */
export function fail(stats, status, body) {
  stats.failed++;
  if (stats.samples.length < 3) stats.samples.push(`${status} ${body.slice(0, 200)}`);
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
 * @property {number} ops          operations completed in the window (ok + failed)
 * @property {number} ok
 * @property {number} failed
 * @property {number} requests     HTTP responses
 * @property {number} seconds      length of the window
 * @property {number} opsPerSec    ok operations per second
 * @property {number} cpuMs        CPU time of the server's process tree in the window
 * @property {number} cpuMsPerOp
 * @property {Record<string, number>} cpuMsByProcess  by process name (e.g. workerd, node)
 * @property {number} loadgenCpuMs CPU time of this process (the load generator) in the window
 * @property {{ p50: number, p95: number, p99: number, max: number }} latency ms per operation
 * @property {Record<string, number>} statuses
 * @property {number} errors       connection errors and timeouts (autocannon, whole round)
 * @property {string[]} failureSamples  the first failed answers of the round
 * @property {boolean} fromStart   too slow for a window: measured over the whole round from its start
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
 * A snapshot of what a round has done so far.
 * @param {number} pgid
 * @param {RoundStats} stats
 */
function snapshot(pgid, stats) {
  return {
    at: performance.now(),
    cpu: groupCpuMs(pgid),
    procs: cpuByName(groupProcesses(pgid)),
    self: selfCpuMs(),
    ok: stats.ok,
    failed: stats.failed,
    latencies: stats.latencies.length,
    statuses: { ...stats.statuses },
  };
}

/**
 * One round of load against one server, measured in a window of steady state. The connections start; the window
 * opens once every connection has had an answer (at least `rampSec` after the start, at most 2.5 s later): a saturated
 * server that works on all its requests at once answers none of them for a while, and that start is not its rate.
 * The window closes after `durationSec`, or later if fewer operations than connections completed in it (at most
 * 2.5 s later; a server slower than that — a latency of seconds — is measured over the whole round from its start
 * instead, until as many operations as connections are done, at most 20 s). Work in flight when the window opens and when it closes is about the same amount, so the CPU time in
 * the window belongs to the operations completed in it. Then the load stops; a scenario whose state must not be cut
 * off (refresh chains) sends harmless requests once `stats.closed` is set and says when it is `drained`.
 * @param {object} options
 * @param {string} options.url            the server's origin
 * @param {number} options.pgid           its process group (CPU is read from /proc for the whole group)
 * @param {number} options.connections
 * @param {number} options.durationSec    length of the measured window
 * @param {number} [options.rampSec]      least load before the window opens (default 0.2 s)
 * @param {number} options.requestsPerOp  1, or 2 for authorize → token
 * @param {(connection: number, stats: RoundStats) => LoadRequest[]} options.requestsFor
 * @param {boolean} [options.latencyFromResponses]  per-request latency from autocannon (single-request operations)
 * @param {() => boolean} [options.drained]  after the window: whether the load can stop now
 * @returns {Promise<RoundResult>}
 */
export async function runRound(options) {
  const stats = newStats();
  const rampMs = (options.rampSec ?? 0.2) * 1000;
  const windowMs = options.durationSec * 1000;
  const EXTRA_MS = 2500;
  const LONG_MS = 20_000;
  let fromStart = false;
  let connection = 0;
  /** @type {ReturnType<typeof snapshot> | null} */
  let opened = null;
  /** @type {ReturnType<typeof snapshot> | null} */
  let closed = null;
  const begin = snapshot(options.pgid, stats);
  const started = begin.at;
  const opsDone = () => stats.ok + stats.failed;
  /** @type {any} */
  const result = await new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        timeout: 30,
        // The window below stops the round; this is only a backstop.
        duration: (rampMs + windowMs + 3 * EXTRA_MS) / 1000,
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
      if (options.latencyFromResponses && !stats.closed) stats.latencies.push(ms);
    });
    /** @type {number} */
    let closedAt = 0;
    const close = () => {
      closed = snapshot(options.pgid, stats);
      stats.closed = true;
      closedAt = performance.now();
    };
    const tick = setInterval(() => {
      const now = performance.now();
      if (opened === null) {
        if ((now - started >= rampMs && opsDone() >= options.connections) || now - started >= rampMs + EXTRA_MS) opened = snapshot(options.pgid, stats);
      } else if (closed === null) {
        const inWindow = now - opened.at;
        const windowOps = opsDone() - opened.ok - opened.failed;
        if (inWindow >= windowMs && windowOps >= options.connections) {
          close();
        } else if (inWindow >= windowMs + EXTRA_MS) {
          // Too slow for a window (latency of seconds): measure the whole round from its start instead, once
          // as many operations as connections are done (at most LONG_MS after the start).
          if (!fromStart) fromStart = true;
          if (opsDone() >= options.connections || now - started >= LONG_MS) close();
        }
      }
      if (closed !== null && (!options.drained || options.drained() || now - closedAt >= EXTRA_MS)) {
        clearInterval(tick);
        instance.stop();
      }
    }, 20);
  });
  if (opened === null || closed === null) throw new Error("the round ended before its window closed");
  const a = fromStart ? begin : /** @type {ReturnType<typeof snapshot>} */ (opened);
  const b = /** @type {ReturnType<typeof snapshot>} */ (closed);
  const seconds = (b.at - a.at) / 1000;
  const ok = b.ok - a.ok;
  const failedOps = b.failed - a.failed;
  /** @type {Record<string, number>} */
  const statuses = {};
  for (const [status, count] of Object.entries(b.statuses)) {
    const n = count - (a.statuses[status] ?? 0);
    if (n > 0) statuses[status] = n;
  }
  const requests = Object.values(statuses).reduce((x, y) => x + y, 0);
  const ops = ok + failedOps;
  const latencies = stats.latencies.slice(a.latencies, b.latencies);
  const cpuMs = b.cpu - a.cpu;
  /** @type {Record<string, number>} */
  const cpuMsByProcess = {};
  for (const [name, ms] of Object.entries(b.procs)) cpuMsByProcess[name] = ms - (a.procs[name] ?? 0);
  return {
    ops,
    ok,
    failed: ops - ok,
    requests,
    seconds,
    opsPerSec: ok / seconds,
    cpuMs,
    cpuMsPerOp: ops > 0 ? cpuMs / ops : NaN,
    cpuMsByProcess,
    loadgenCpuMs: b.self - a.self,
    latency: {
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
    },
    statuses,
    errors: (result?.errors ?? 0) + (result?.timeouts ?? 0),
    failureSamples: stats.samples,
    fromStart,
  };
}
