#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench`: our OP (the `wrangler deploy --dry-run` bundle in Miniflare, persisted state) and
 * node-oidc-provider (default in-memory adapter, and a durable SQLite adapter) on this machine, driven by one load
 * generator through the same scenarios in interleaved rounds. Prints one table and writes bench/results/latest.json.
 * `npm run bench -- --phases`: the per-request cost report of our OP instead (bench/lib/phases.mjs).
 * See bench/README.md for how to read the numbers and what they cannot show.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { buildBundle, root } from "./lib/bundle.mjs";
import { runRound } from "./lib/load.mjs";
import { startOurs } from "./lib/ours.mjs";
import { startPeer } from "./lib/peer.mjs";
import { groupRssBytes, rssSampler } from "./lib/procs.mjs";
import { markdownTable, memoryRows, textTable, throughputRows } from "./lib/report.mjs";
import { SCENARIOS } from "./lib/scenarios.mjs";
import { sleep } from "./lib/http.mjs";
import { runPhases } from "./lib/phases.mjs";

const USAGE = `npm run bench [-- options]

  --quick               one short round per cell (1.5–3 minutes, depending on how busy the machine is)
  --phases              the per-request cost report of our OP instead (round trips, signatures, time in each), then
                        the building blocks (an empty request, a D1 read, an object call, a signature …) each under
                        load, and the floor each hot endpoint's guarantees put under its CPU time
  --no-blocks           with --phases: the per-request report only
  --rounds N            measured rounds per server and cell, best one reported (default 3; quick 1)
  --duration S          seconds per measured window (default 1)
  --warmup S            seconds of warm-up per scenario and server, not reported (default 0.5; quick 0.3)
  --ramp S              least seconds of load before each measured window opens (default 0.2)
  --connections 10,50   concurrent connections (default 10,50)
  --scenarios a,b       some of: ${SCENARIOS.map((s) => s.id).join(", ")}
  --servers a,b         some of: ours, peer-memory, peer-sqlite (default all)
  --users N             signed-in users per server, connection i acting for user i mod N (default 20)
  --state-dir DIR       where the servers keep their state (default the system temp dir; try /dev/shm)
  --sync FULL|NORMAL    synchronous pragma of the peer's SQLite adapter (default FULL: fsync on every commit)
  --keep-state          do not delete the state and bundle directories at the end
  --budget S            seconds the measuring should take at most (default 260): once the rounds so far say the rest
                        would not fit, the remaining cells get one round each (the table says so)
  --set NAME=VALUE      one of our OP's settings (src/config.ts) for the run, repeatable; e.g.
                        --set ACCESS_TOKEN_SIGNING_ALG=ES256 to measure ES256 access tokens against RS256
  --out FILE            JSON results (default bench/results/latest.json, or phases.json with --phases)
`;

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    phases: { type: "boolean", default: false },
    "no-blocks": { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    ramp: { type: "string" },
    connections: { type: "string", default: "10,50" },
    scenarios: { type: "string" },
    servers: { type: "string", default: "ours,peer-memory,peer-sqlite" },
    users: { type: "string" },
    "state-dir": { type: "string" },
    sync: { type: "string", default: "FULL" },
    "keep-state": { type: "boolean", default: false },
    out: { type: "string" },
    budget: { type: "string" },
    set: { type: "string", multiple: true, default: [] },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

/**
 * @param {string | undefined} value
 * @param {number} fallback
 * @param {string} name
 */
function positive(value, fallback, name) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(n > 0)) throw new Error(`--${name} must be a positive number`);
  return n;
}

const rounds = Math.round(positive(args.rounds, args.quick ? 1 : 3, "rounds"));
const durationSec = positive(args.duration, 1, "duration");
const warmupSec = positive(args.warmup, args.quick ? 0.3 : 0.5, "warmup");
const rampSec = positive(args.ramp, 0.2, "ramp");
const connectionLevels = String(args.connections).split(",").map((c) => Math.round(positive(c, 10, "connections")));
const maxConnections = Math.max(...connectionLevels);
const users = Math.round(positive(args.users, Math.min(20, maxConnections), "users"));
const budgetSec = positive(args.budget, 260, "budget");
const scenarioIds = args.scenarios ? String(args.scenarios).split(",") : SCENARIOS.map((s) => s.id);
const scenarios = scenarioIds.map((id) => {
  const found = SCENARIOS.find((s) => s.id === id);
  if (!found) throw new Error(`unknown scenario ${id}; known: ${SCENARIOS.map((s) => s.id).join(", ")}`);
  return found;
});
const serverNames = String(args.servers).split(",");
for (const s of serverNames) if (!["ours", "peer-memory", "peer-sqlite"].includes(s)) throw new Error(`unknown server ${s}`);
if (args.sync !== "FULL" && args.sync !== "NORMAL") throw new Error("--sync must be FULL or NORMAL");
const synchronous = /** @type {"FULL" | "NORMAL"} */ (args.sync);

/** Our OP's settings from `--set`. @type {Record<string, string>} */
const opSettings = {};
for (const pair of /** @type {string[]} */ (args.set)) {
  const eq = pair.indexOf("=");
  if (eq <= 0) throw new Error(`--set ${pair}: expected NAME=VALUE`);
  opSettings[pair.slice(0, eq)] = pair.slice(eq + 1);
}

const stateRoot = path.resolve(args["state-dir"] ?? tmpdir());
mkdirSync(stateRoot, { recursive: true });
const resultsDir = path.join(root, "bench", "results");
const t0 = performance.now();
/** @param {string} message */
const progress = (message) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${message}\n`);

/** The filesystem a directory is on, from /proc/mounts (longest mount point that contains it). */
function diskOf(/** @type {string} */ dir) {
  let best = { mount: "/", device: "?", type: "?" };
  try {
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [device, mount, type] = line.split(" ");
      if (!device || !mount || !type) continue;
      if ((dir === mount || dir.startsWith(mount.endsWith("/") ? mount : `${mount}/`)) && mount.length >= best.mount.length) best = { mount, device, type };
    }
  } catch {
    // not Linux
  }
  return best;
}

/** @type {string[]} */
const toRemove = [];
function cleanup() {
  if (args["keep-state"]) {
    if (toRemove.length > 0) progress(`kept: ${toRemove.join(" ")}`);
  } else {
    for (const dir of toRemove) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // a server killed a moment ago may still be letting go of a file; the temp dir is the system's to clean
      }
    }
  }
  toRemove.length = 0;
}
// Also on Ctrl-C: bench/lib/procs.mjs kills the servers first (its exit handler was installed before this one).
process.on("exit", cleanup);

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "?",
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  stateDir: stateRoot,
  disk: diskOf(stateRoot),
};

async function throughput() {
  progress(`building the Worker bundle (wrangler deploy --dry-run)`);
  const bundle = await buildBundle();
  toRemove.push(bundle.dir);
  progress(`bundle ${(bundle.bytes / 1024).toFixed(0)} KiB; state in ${stateRoot} (${machine.disk.device}, ${machine.disk.type})`);

  /** @type {import("./lib/scenarios.mjs").Target[]} */
  const targets = [];
  for (const name of serverNames) {
    const stateDir = mkdtempSync(path.join(stateRoot, `bench-${name}-`));
    toRemove.push(stateDir);
    const target =
      name === "ours"
        ? await startOurs({ bundle, stateDir, settings: opSettings })
        : await startPeer({ adapter: name === "peer-memory" ? "memory" : "sqlite", stateDir, name, synchronous });
    await target.signInUsers(users);
    progress(`${name} up at ${target.issuer}, ${users} users signed in`);
    targets.push(target);
  }
  await sleep(1000);
  /** @type {Record<string, { idle: number, peak: number }>} */
  const memory = Object.fromEntries(targets.map((t) => [t.name, { idle: groupRssBytes(t.proc.pgid), peak: 0 }]));
  const sampler = rssSampler(Object.fromEntries(targets.map((t) => [t.name, t.proc.pgid])), 250);

  /** @type {import("./lib/report.mjs").Cell[]} */
  const cells = [];
  const totalCells = scenarios.length * connectionLevels.length;
  const measureStart = performance.now();
  let reducedCells = 0;
  try {
    for (const scenario of scenarios) {
      /** @type {Map<string, any>} */
      const states = new Map();
      for (const target of targets) states.set(target.name, scenario.prepare ? await scenario.prepare(target, maxConnections) : null);
      for (const connections of connectionLevels) {
        /** @type {import("./lib/report.mjs").Cell} */
        const cell = { scenario: scenario.id, title: scenario.title, unit: scenario.unit, connections, servers: {} };
        // Warm-up once per scenario and server, at the first connection level, not reported.
        if (connections === connectionLevels[0]) {
          for (const target of targets) {
            const state = states.get(target.name);
            if (scenario.beforeRound) await scenario.beforeRound(target, state, connections);
            await runRound({
              url: target.issuer,
              pgid: target.proc.pgid,
              connections,
              rampSec: 0,
              durationSec: warmupSec,
              requestsPerOp: scenario.requestsPerOp,
              ...(scenario.drained ? { drained: () => /** @type {(s: any) => boolean} */ (scenario.drained)(state) } : {}),
              requestsFor: (i, stats) => scenario.requestsFor(target, state, i, stats),
            });
          }
        }
        // The time budget: from the cells so far, would the rest fit? If not, one round per cell from here on.
        let cellRounds = rounds;
        if (cells.length > 0) {
          const perCell = (performance.now() - measureStart) / cells.length;
          const projected = (performance.now() - t0 + perCell * (totalCells - cells.length)) / 1000;
          if (projected > budgetSec && rounds > 1) {
            cellRounds = 1;
            reducedCells++;
          }
        }
        for (let round = 1; round <= cellRounds; round++) {
          for (const target of targets) {
            const state = states.get(target.name);
            if (scenario.beforeRound) await scenario.beforeRound(target, state, connections);
            const result = await runRound({
              url: target.issuer,
              pgid: target.proc.pgid,
              connections,
              rampSec,
              durationSec,
              requestsPerOp: scenario.requestsPerOp,
              latencyFromResponses: scenario.requestsPerOp === 1,
              ...(scenario.drained ? { drained: () => /** @type {(s: any) => boolean} */ (scenario.drained)(state) } : {}),
              requestsFor: (i, stats) => scenario.requestsFor(target, state, i, stats),
            });
            const entry = (cell.servers[target.name] ??= { best: result, rounds: [] });
            entry.rounds.push(result);
            if (result.opsPerSec > entry.best.opsPerSec) entry.best = result;
            const loadgen = result.loadgenCpuMs / (result.seconds * 1000);
            progress(
              `${scenario.id} c=${connections} ${target.name} round ${round}: ${result.opsPerSec.toFixed(0)} ops/s, ` +
                `${result.cpuMsPerOp.toFixed(2)} CPU ms/op, p50 ${result.latency.p50.toFixed(1)} ms, ${result.ops} ops in ${result.seconds.toFixed(2)} s` +
                (result.failed > 0 ? `, ${result.failed} failed ${JSON.stringify(result.statuses)}: ${result.failureSamples.join(" | ")}` : "") +
                (result.fromStart ? ", too slow for a window: whole round" : "") +
                (loadgen > 0.9 ? `, load generator at ${(loadgen * 100).toFixed(0)}% of a core` : ""),
            );
          }
        }
        cells.push(cell);
      }
    }
  } finally {
    sampler.stop();
    for (const t of targets) memory[t.name] = { idle: memory[t.name]?.idle ?? 0, peak: sampler.peak[t.name] ?? 0 };
    for (const target of targets) await target.stop();
  }

  const seconds = (performance.now() - t0) / 1000;
  const rows = throughputRows(cells, targets.map((t) => t.name));
  const mem = memoryRows(memory);
  const settings = { rounds, durationSec, rampSec, warmupSec, connections: connectionLevels, users, budgetSec, reducedCells, peerSqliteSynchronous: synchronous, ours: opSettings };
  const out = args.out ? path.resolve(String(args.out)) : path.join(resultsDir, "latest.json");
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ kind: "throughput", date: new Date().toISOString(), seconds, machine, settings, bundleBytes: bundle.bytes, memory, cells, table: rows, memoryTable: mem }, null, 2)}\n`,
  );
  writeFileSync(path.join(path.dirname(out), "latest.md"), `${markdownTable(rows)}\n\n${markdownTable(mem)}\n`);

  process.stdout.write(
    `\nOIDC bench — ${new Date().toISOString().slice(0, 16)}Z, ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, ` +
      `state on ${machine.disk.device} (${machine.disk.type}); best of ${rounds} × ${durationSec} s per cell, interleaved` +
      (reducedCells > 0 ? ` (${reducedCells} of ${totalCells} cells with 1 round, to fit the ${budgetSec} s budget)` : "") +
      `; ` +
      `ops/s = successful operations per second (authorize → token: round trips, 2 requests each)\n\n` +
      `${textTable(rows, rows[0]?.map((_, c) => (c === 0 ? "l" : "r")) ?? [])}\n\n` +
      `memory (RSS of each server's process tree)\n${textTable(mem, ["l", "r", "r"])}\n\n` +
      `whole run ${seconds.toFixed(0)} s; JSON in ${path.relative(root, out)}, markdown in ${path.relative(root, path.join(path.dirname(out), "latest.md"))}\n`,
  );
}

try {
  if (args.phases) {
    await runPhases({
      progress,
      stateRoot,
      toRemove,
      machine,
      scenarios: scenarioIds,
      settings: opSettings,
      blocks: !args["no-blocks"],
      out: args.out ? path.resolve(String(args.out)) : path.join(resultsDir, "phases.json"),
    });
  } else {
    await throughput();
  }
} catch (error) {
  process.stderr.write(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
}
