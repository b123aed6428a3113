// @ts-check
/**
 * Child processes of the bench, each in its own process group, and what Linux says about them in /proc:
 * CPU time (utime + stime) and resident memory of a whole group (a Node host and the workerd it started, say).
 * Every group started here is killed when the bench exits, however it exits (Ctrl-C included).
 */
import { spawn, execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (almost always 100). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const PAGE_SIZE = (() => {
  try {
    return Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).trim()) || 4096;
  } catch {
    return 4096;
  }
})();

/** @typedef {{ pid: number, comm: string, cpuMs: number, rssBytes: number }} ProcInfo */

/**
 * /proc/<pid>/stat of one process, if it is alive and in group `pgid`.
 * @param {number} pid
 * @param {number} pgid
 * @returns {ProcInfo | null}
 */
function readStat(pid, pgid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // gone
  }
  const close = stat.lastIndexOf(")");
  const comm = stat.slice(stat.indexOf("(") + 1, close);
  // Fields after "(comm) ": state(3) ppid(4) pgrp(5) … utime(14) stime(15) … rss(24), numbered from 1.
  const fields = stat.slice(close + 2).split(" ");
  if (Number(fields[2]) !== pgid || fields[0] === "Z" || fields[0] === "X") return null;
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { pid, comm, cpuMs: (ticks * 1000) / CLK_TCK, rssBytes: Number(fields[21]) * PAGE_SIZE };
}

/** pgid → its pids and when they were listed: a scan of all of /proc costs milliseconds, so it is done once a second at most. */
const members = new Map();

/**
 * Live processes of process group `pgid`, with their CPU time so far and their RSS.
 * @param {number} pgid
 * @returns {ProcInfo[]}
 */
export function groupProcesses(pgid) {
  const known = members.get(pgid);
  if (known && Date.now() - known.at < 1000) {
    const out = known.pids.map((/** @type {number} */ pid) => readStat(pid, pgid)).filter((/** @type {ProcInfo | null} */ p) => p !== null);
    if (out.length === known.pids.length) return out;
  }
  /** @type {ProcInfo[]} */
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readStat(Number(entry), pgid);
    if (info !== null) out.push(info);
  }
  members.set(pgid, { pids: out.map((p) => p.pid), at: Date.now() });
  return out;
}

/** @param {number} pgid */
export function groupCpuMs(pgid) {
  return groupProcesses(pgid).reduce((sum, p) => sum + p.cpuMs, 0);
}

/** @param {number} pgid */
export function groupRssBytes(pgid) {
  return groupProcesses(pgid).reduce((sum, p) => sum + p.rssBytes, 0);
}

/** CPU ms of this process (the load generator), user + system. */
export function selfCpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** @type {Set<number>} */
const groups = new Set();

function killAllNow() {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  groups.clear();
}

let handlersInstalled = false;
function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", killAllNow);
  for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM", "SIGHUP"])) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping every server it started\n`);
      killAllNow();
      process.exit(130);
    });
  }
}

/**
 * A child in its own process group (so one signal reaches it and everything it starts), with stdout/stderr kept
 * (the last 20,000 characters) for error messages, and an IPC channel.
 * @param {string} command
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv }} [options]
 */
export function spawnGroup(command, args, options = {}) {
  installHandlers();
  const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe", "ipc"] });
  const pgid = /** @type {number} */ (child.pid);
  groups.add(pgid);
  let output = "";
  const keep = (/** @type {Buffer} */ chunk) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(signal ?? code)));
  return {
    child,
    pgid,
    exited,
    output: () => output,
    /**
     * Waits for the child's first IPC message of `type`.
     * @param {string} type
     * @param {number} timeoutMs
     * @returns {Promise<Record<string, unknown>>}
     */
    waitFor(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${command} ${args.join(" ")}: no "${type}" in ${timeoutMs} ms:\n${output}`)), timeoutMs);
        child.on("message", (/** @type {any} */ message) => {
          if (message?.type === type) {
            clearTimeout(timer);
            resolve(message);
          } else if (message?.type === "error") {
            clearTimeout(timer);
            reject(new Error(`${args.join(" ")}: ${message.error}\n${output}`));
          }
        });
        child.once("exit", (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`${command} ${args.join(" ")} exited (${signal ?? code}) before "${type}":\n${output}`));
        });
      });
    },
    /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when no live process of the group is left. */
    async stop(graceMs = 3000) {
      try {
        process.kill(-pgid, "SIGTERM");
      } catch {
        // gone
      }
      const deadline = Date.now() + graceMs;
      while (groupProcesses(pgid).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (groupProcesses(pgid).length > 0) {
        try {
          process.kill(-pgid, "SIGKILL");
        } catch {
          // gone
        }
        while (groupProcesses(pgid).length > 0) await new Promise((r) => setTimeout(r, 20));
      }
      groups.delete(pgid);
    },
  };
}

/** @typedef {ReturnType<typeof spawnGroup>} GroupChild */

/**
 * Samples the RSS of some process groups every `intervalMs` and keeps the peak of each.
 * @param {Record<string, number>} pgids name → pgid
 * @param {number} intervalMs
 */
export function rssSampler(pgids, intervalMs = 100) {
  /** @type {Record<string, number>} */
  const peak = Object.fromEntries(Object.keys(pgids).map((k) => [k, 0]));
  const sample = () => {
    for (const [name, pgid] of Object.entries(pgids)) peak[name] = Math.max(peak[name] ?? 0, groupRssBytes(pgid));
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    peak,
    stop() {
      clearInterval(timer);
      sample();
    },
  };
}
