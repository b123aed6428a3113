import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/**
 * The built Worker, hosted by Miniflare in a child process with persisted state (tests/e2e/helpers/worker-host.mjs),
 * so that a test can crash it for real — SIGKILL to the whole process group, workerd included — and start it again
 * on the same state.
 */

const root = path.resolve(import.meta.dirname, "../../..");
const hostScript = path.join(import.meta.dirname, "worker-host.mjs");

/** Offline and quiet wrangler (TOOLCHAIN.md). */
export const quietEnv: NodeJS.ProcessEnv = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

export interface WorkerBundle {
  /** Temporary directory holding the bundle; remove it with `removeDir` when done. */
  dir: string;
  scriptPath: string;
  /** The wrangler.jsonc bindings and compatibility settings, as Miniflare worker options. */
  worker: Record<string, unknown>;
}

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: quietEnv, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${path.basename(args[0] ?? command)} ${args.slice(1).join(" ")} exited ${code}:\n${output}`));
    });
  });
}

/** Builds the Worker exactly as `wrangler deploy` would (`--dry-run --outdir`) and reads its bindings from wrangler.jsonc. */
export async function buildWorkerBundle(): Promise<WorkerBundle> {
  const dir = mkdtempSync(path.join(tmpdir(), "oidc-bundle-"));
  const wranglerBin = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  const [, options] = await Promise.all([
    run(process.execPath, [wranglerBin, "deploy", "--dry-run", "--outdir", dir], 60_000),
    (async () => {
      // wrangler's own translation of wrangler.jsonc into Miniflare options: the bindings are not duplicated here.
      const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
      return unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.jsonc")).workerOptions as unknown as Record<string, unknown>;
    })(),
  ]);
  const keep = ["compatibilityDate", "compatibilityFlags", "bindings", "d1Databases", "durableObjects", "kvNamespaces", "r2Buckets"];
  const worker = Object.fromEntries(keep.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]));
  const scriptPath = path.join(dir, "index.js");
  readFileSync(scriptPath); // fails loudly when the build wrote nothing
  return { dir, scriptPath, worker };
}

export function newTempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Live (not zombie) processes whose process group is `pgid` — the host and its workerd. Linux /proc. */
export function liveProcessesInGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the parenthesised command: state ppid pgrp …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z" && state !== "X") pids.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return pids;
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

const running = new Set<WorkerProcess>();

/** One Miniflare host process. Every call goes over IPC to real JS RPC stubs in workerd. */
export class WorkerProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<void>;
  private output = "";

  private constructor(
    private readonly child: ChildProcess,
    readonly stateDir: string,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    child.stdout?.on("data", (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-20_000)));
    child.stderr?.on("data", (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-20_000)));
    child.on("message", (message: Reply) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new Error(message.error ?? "failed"));
    });
    child.once("exit", (code, signal) => {
      running.delete(this);
      for (const waiter of this.pending.values()) waiter.reject(new Error(`worker host exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  /** Starts a host on `stateDir` (created by the caller, reused across restarts) and waits until it serves. */
  static async start(bundle: WorkerBundle, stateDir: string, timeoutMs = 30_000): Promise<WorkerProcess> {
    const child = spawn(process.execPath, [hostScript], {
      cwd: root,
      // Its own process group, so one signal reaches the host and workerd together.
      detached: true,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: {
        ...quietEnv,
        WORKER_HOST_OPTIONS: JSON.stringify({
          scriptPath: bundle.scriptPath,
          stateDir,
          migrationsDir: path.join(root, "drizzle"),
          worker: bundle.worker,
        }),
      },
    });
    const host = new WorkerProcess(child, stateDir);
    running.add(host);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker host not ready in ${timeoutMs} ms:\n${host.output}`)), timeoutMs);
      child.on("message", (message: { type?: string }) => {
        if (message.type === "ready") {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`worker host exited during start (${signal ?? code}):\n${host.output}`));
      });
    }).catch(async (error: unknown) => {
      await host.kill();
      throw error;
    });
    return host;
  }

  get pid(): number {
    return this.child.pid!;
  }

  private request<T>(message: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...message, id }, (error) => {
        if (error) {
          this.pending.delete(id);
          reject(error);
        }
      });
    });
  }

  /** A JS RPC call on the Durable Object named `name` of namespace `binding`. Arguments and result are plain data. */
  call<T = unknown>(binding: string, name: string, method: string, ...args: unknown[]): Promise<T> {
    return this.request<T>({ op: "call", binding, name, method, args });
  }

  /** A D1 query on the DB binding; returns the rows. */
  d1<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]> {
    return this.request<T[]>({ op: "d1", sql, params });
  }

  /** A request to the Worker's fetch handler. */
  fetch(
    pathAndQuery: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    return this.request({ op: "fetch", path: pathAndQuery, ...init });
  }

  /**
   * A process crash: SIGKILL to the whole group (this host and workerd), no graceful shutdown.
   * Resolves once no live process of the group is left.
   */
  async crash(timeoutMs = 10_000): Promise<void> {
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await this.exited;
    const deadline = Date.now() + timeoutMs;
    while (liveProcessesInGroup(this.pid).length > 0) {
      if (Date.now() > deadline) throw new Error(`processes of group ${this.pid} survived SIGKILL: ${liveProcessesInGroup(this.pid).join(", ")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Cleanup: the same as a crash, without caring how it went. */
  async kill(): Promise<void> {
    await this.crash().catch(() => {});
  }

  /** Every host still running (for afterAll). */
  static async killAll(): Promise<void> {
    await Promise.all([...running].map((host) => host.kill()));
  }
}
