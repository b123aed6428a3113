import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { liveProcessesInGroup, quietEnv } from "./worker-process.ts";

/**
 * The Worker as a developer runs it: `wrangler dev` on 127.0.0.1, a free port, its own persisted state (D1 migrations
 * applied first with `wrangler d1 migrations apply DB --local --persist-to`), secrets and settings in an env file —
 * never on the command line — exactly like `npm start` (scripts/start.mjs). One server per test file.
 */

const root = path.resolve(import.meta.dirname, "../../..");
const wranglerBin = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");

/** Like scripts/start.mjs: the Worker's vars come from the env file only, never from this process's environment. */
const wranglerEnv: NodeJS.ProcessEnv = { ...quietEnv, CLOUDFLARE_INCLUDE_PROCESS_ENV: "false", CI: "true" };
delete wranglerEnv.ADMIN_TOKEN;

function runWrangler(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin, ...args], { cwd: root, env: wranglerEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`wrangler ${args.slice(0, 3).join(" ")} exited ${code}:\n${stdout}\n${stderr}`));
    });
  });
}

/**
 * A persisted state directory with every D1 migration applied by `wrangler d1 migrations apply DB --local`.
 * Applying them takes wrangler several seconds, so it is done once per set of migrations into a template that each
 * server copies (built in a private directory and renamed into place, so concurrent test runs never see half of it).
 */
async function migratedStateDir(): Promise<string> {
  const migrations = path.join(root, "drizzle");
  const hash = createHash("sha256");
  hash.update(readFileSync(path.join(root, "node_modules", "wrangler", "package.json")));
  for (const file of readdirSync(migrations).filter((f) => f.endsWith(".sql")).sort()) {
    hash.update(file).update(readFileSync(path.join(migrations, file)));
  }
  const template = path.join(tmpdir(), `oidc-e2e-migrated-${hash.digest("hex").slice(0, 16)}`);
  if (!existsSync(template)) {
    const building = mkdtempSync(path.join(tmpdir(), "oidc-e2e-migrating-"));
    await runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", building], 120_000);
    try {
      renameSync(building, template);
    } catch {
      rmSync(building, { recursive: true, force: true }); // another run got there first: use its template
    }
  }
  const stateDir = mkdtempSync(path.join(tmpdir(), "oidc-e2e-state-"));
  cpSync(template, stateDir, { recursive: true });
  return stateDir;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface DevServerOptions {
  /** Settings and secrets for the Worker (written to the env file), e.g. `{ RATE_LIMIT_LOGIN: "1000" }`. */
  vars?: Record<string, string>;
  /**
   * Serve https (wrangler's self-signed certificate): what an ISSUER off loopback needs, since the settings allow
   * http only on a loopback host. Clients of such a server must not check the certificate.
   */
  https?: boolean;
  /**
   * The host name clients use: the Worker still listens on 127.0.0.1, but with `localhost` the issuer (the origin a
   * request arrives on) is http://localhost:PORT — what WebAuthn needs in Chromium (an IP address is not a valid RP ID).
   */
  host?: "127.0.0.1" | "localhost";
}

const running = new Set<DevServer>();

export class DevServer {
  private output = "";
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly stateDir: string,
    readonly adminToken: string,
    private readonly envFile: string,
    private readonly https: boolean,
    private readonly host: string,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-30_000));
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("exit", () => running.delete(this));
  }

  /** The issuer identifier: the origin the Worker is reached on (ISSUER is empty in wrangler.jsonc). */
  get issuer(): string {
    return `${this.https ? "https" : "http"}://${this.host}:${this.port}`;
  }

  /** What wrangler and the Worker printed (the tail), for failure messages. */
  get log(): string {
    return this.output;
  }

  /** A new server on a new state directory. */
  static async start(options: DevServerOptions = {}): Promise<DevServer> {
    const [stateDir, port] = await Promise.all([migratedStateDir(), freePort()]);
    const adminToken = randomBytes(24).toString("base64url");
    const envFile = path.join(stateDir, "worker.env");
    const vars: Record<string, string> = { EMAIL_TRANSPORT: "dev", ...options.vars, ADMIN_TOKEN: adminToken };
    writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
    chmodSync(envFile, 0o600);
    return DevServer.launch(port, stateDir, adminToken, envFile, options.https ?? false, options.host ?? "127.0.0.1");
  }

  /**
   * Stops this server and starts another on the same port, state and settings (tokens issued before stay valid).
   * `whileStopped` runs in between, e.g. to change D1 rows with `queryStoppedD1`.
   */
  async restart(whileStopped?: () => Promise<unknown>): Promise<DevServer> {
    await this.stop();
    await whileStopped?.();
    return DevServer.launch(this.port, this.stateDir, this.adminToken, this.envFile, this.https, this.host);
  }

  private static async launch(port: number, stateDir: string, adminToken: string, envFile: string, https: boolean, host: string): Promise<DevServer> {
    mkdirSync(stateDir, { recursive: true });
    // A devtools port of its own: the default 9229 is taken by whichever other wrangler dev runs on the machine.
    const inspectorPort = await freePort();
    const args = [
      wranglerBin, "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", stateDir,
      "--env-file", envFile, "--show-interactive-dev-session=false", "--inspector-port", String(inspectorPort),
      ...(https ? ["--local-protocol", "https"] : []),
    ];
    // Its own process group: one signal stops wrangler, esbuild and workerd together.
    const child = spawn(process.execPath, args, { cwd: root, env: wranglerEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const server = new DevServer(child, port, stateDir, adminToken, envFile, https, host);
    running.add(server);
    try {
      await server.waitForHealth(90_000);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  private async waitForHealth(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "no answer";
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`wrangler dev exited:\n${this.output}`);
      try {
        if (this.https) {
          // Node's fetch checks certificates and this one is wrangler's self-signed: ask curl, told not to.
          const probe = spawnSync("curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15", `${this.issuer}/health`], { encoding: "utf8" });
          if (probe.stdout === "200") return;
          last = `curl: ${probe.stdout || probe.stderr}`;
        } else {
          const response = await fetch(`${this.issuer}/health`, { signal: AbortSignal.timeout(15_000) });
          if (response.status === 200) return;
          last = `${response.status} ${await response.text()}`;
        }
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`GET ${this.issuer}/health did not answer 200 in ${timeoutMs} ms (last: ${last}):\n${this.output}`);
  }

  /** SIGTERM to the process group (wrangler stops workerd), SIGKILL for whatever is left after a grace period. */
  async stop(graceMs = 10_000): Promise<void> {
    const pgid = this.child.pid;
    if (pgid === undefined) return;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-pgid, s);
      } catch {
        // the group is gone
      }
    };
    signal("SIGTERM");
    const deadline = Date.now() + graceMs;
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, graceMs))]);
    while (liveProcessesInGroup(pgid).length > 0) {
      if (Date.now() > deadline) signal("SIGKILL");
      if (Date.now() > deadline + 5_000) throw new Error(`processes of group ${pgid} survived SIGKILL`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the server and removes its state. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  static async disposeAll(): Promise<void> {
    await Promise.all([...running].map((s) => s.dispose()));
  }

  /** A call to the admin API with the admin token. */
  async admin<T = Record<string, unknown>>(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.issuer}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text === "" ? {} : JSON.parse(text)) as T };
  }

  /** Registers a client through the admin API (POST /admin/clients); the secret is in the answer for client_secret_* clients. */
  async registerClient(metadata: Record<string, unknown>): Promise<RegisteredClient> {
    const { status, body } = await this.admin<RegisteredClient>("POST", "/admin/clients", metadata);
    if (status !== 201) throw new Error(`POST /admin/clients answered ${status}: ${JSON.stringify(body)}`);
    return body;
  }
}

/** What the admin API answers for a new client (RFC 7591 names); a local type, since e2e tests do not import src/. */
export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  scope: string;
  skip_consent: boolean;
}

/**
 * Rows of the local D1 database, read with `wrangler d1 execute DB --local --persist-to` — only while no server runs
 * on `stateDir`, so the read sees exactly what was committed and nothing is in flight. One result set per statement.
 */
export async function queryStoppedD1(stateDir: string, statements: string[]): Promise<Record<string, unknown>[][]> {
  const sql = statements.map((s) => s.replace(/;\s*$/, "")).join(";\n");
  const out = await runWrangler(["d1", "execute", "DB", "--local", "--persist-to", stateDir, "--json", "--command", sql], 120_000);
  const parsed = JSON.parse(out.slice(out.indexOf("["))) as { results: Record<string, unknown>[] }[];
  if (parsed.length !== statements.length) throw new Error(`expected ${statements.length} result sets, got ${parsed.length}`);
  return parsed.map((r) => r.results);
}
