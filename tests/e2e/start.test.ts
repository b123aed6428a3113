import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigModule } from "../../scripts/worker-config.mjs";
import { freePort } from "./helpers/dev-server.ts";
import { UserAgent, authorizeAsUser, uniqueEmail } from "./helpers/user-agent.ts";
import { liveProcessesInGroup, quietEnv } from "./helpers/worker-process.ts";

/**
 * `npm start` as the README tells a developer to use it: it registers the demo app (the public client `demo` whose
 * page the OP serves at /demo) on first start and prints the /demo URL first, then the curl walkthrough; following
 * that walkthrough with openid-client (unmodified, as a public client with PKCE) ends in tokens. A second start on the
 * same state registers nothing new. The demo page itself, in a real browser: demo.test.ts.
 *
 * scripts/start.mjs keeps its state next to itself (`.wrangler/state` under the project root), so it runs from a
 * temporary copy of the project (node_modules linked), never touching a developer's own state.
 */

const repo = path.resolve(import.meta.dirname, "../..");

interface Printout {
  /** The first thing printed after wrangler's own lines: where to open the demo. */
  demoUrl: string;
  issuer: string;
  adminToken: string;
  clientId: string;
  authorizeUrl: URL;
  codeVerifier: string;
  registeredNow: boolean;
}

function parsePrintout(out: string): Printout {
  const grab = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`${re} not in the output of npm start:\n${out}`);
    return m[1]!;
  };
  const ours = out.slice(out.indexOf("Try it: open"));
  return {
    demoUrl: /^Try it: open (\S+) in a browser and press "Sign in"\.$/m.exec(ours.split("\n")[0]!)?.[1] ?? `not first: ${ours.slice(0, 200)}`,
    issuer: grab(/issuer:\s+(\S+)/),
    adminToken: grab(/admin token:\s+(\S+)/),
    clientId: grab(/client_id:\s+(\S+)/),
    authorizeUrl: new URL(grab(/open in a browser:\s+(\S+)/)),
    codeVerifier: grab(/code_verifier of this start: (\S+?)\)/),
    registeredNow: /Demo app \(registered just now\)/.test(out),
  };
}

/** The names of every Worker setting: kept out of the environment npm start gets, unless a test sets one. */
const settingNames = (await loadConfigModule(repo)).SETTINGS.map((s) => s.name);

/** A temporary copy of the project (node_modules linked): npm start keeps its state next to itself. */
function projectCopy(): string {
  const root = mkdtempSync(path.join(tmpdir(), "oidc-npm-start-"));
  for (const entry of ["src", "scripts", "drizzle", "wrangler.jsonc", "package.json", "tsconfig.json"]) {
    cpSync(path.join(repo, entry), path.join(root, entry), { recursive: true });
  }
  symlinkSync(path.join(repo, "node_modules"), path.join(root, "node_modules"), "dir");
  return root;
}

class NpmStart {
  private out = "";
  private stdoutText = "";
  private stderrText = "";
  private readonly exited: Promise<number | null>;
  readonly startedAt = Date.now();
  exitedAt: number | null = null;

  constructor(
    readonly root: string,
    readonly port: number | string,
    vars: Record<string, string> = {},
  ) {
    const env: NodeJS.ProcessEnv = { ...quietEnv, PORT: String(port), ...vars };
    for (const name of settingNames) if (!(name in vars)) delete env[name];
    this.child = spawn(process.execPath, [path.join(root, "scripts", "start.mjs")], { cwd: root, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (c: Buffer) => ((this.out += c.toString()), (this.stdoutText += c.toString())));
    this.child.stderr!.on("data", (c: Buffer) => ((this.out += c.toString()), (this.stderrText += c.toString())));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code) => {
        this.exitedAt = Date.now();
        resolve(code);
      }),
    );
  }

  private readonly child: ChildProcess;

  get pid(): number {
    return this.child.pid!;
  }

  get output(): string {
    return this.out;
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Waits for the process to end by itself (a refusal); its exit code. */
  async exit(timeoutMs = 30_000): Promise<number | null> {
    const code = await Promise.race([this.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs))]);
    if (code === "timeout") throw new Error(`npm start still running after ${timeoutMs} ms:\n${this.out}`);
    // The output pipes may still hold the last lines.
    await new Promise((r) => setTimeout(r, 50));
    return code;
  }

  async ready(timeoutMs = 120_000): Promise<Printout> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.includes("What to do next")) {
      if (this.child.exitCode !== null) throw new Error(`npm start exited ${this.child.exitCode}:\n${this.out}`);
      if (Date.now() > deadline) throw new Error(`npm start not ready in ${timeoutMs} ms:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return parsePrintout(this.out);
  }

  /** Ctrl-C: SIGINT to the script, which stops wrangler; every process of the group must be gone. */
  async stop(): Promise<void> {
    const pgid = this.child.pid!;
    if (this.child.exitCode === null) this.child.kill("SIGINT");
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 15_000))]);
    const deadline = Date.now() + 10_000;
    while (liveProcessesInGroup(pgid).length > 0) {
      if (Date.now() > deadline) {
        process.kill(-pgid, "SIGKILL");
        throw new Error("npm start left processes behind after SIGINT");
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe("npm start seeds a demo app and prints how to sign in with it", () => {
  let root: string;
  let port: number;
  let running: NpmStart | undefined;

  beforeAll(async () => {
    root = projectCopy();
    port = await freePort();
  });

  afterAll(async () => {
    await running?.stop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });

  let first: Printout;

  it("first start: the demo app is registered and its URL printed first; the printed authorize URL and verifier get tokens with openid-client", async () => {
    // A test that failed before its stop must not leave its npm start running (a new one would overwrite the handle).
    await running?.stop().catch(() => {});
    running = new NpmStart(root, port);
    first = await running.ready();
    expect(first.registeredNow).toBe(true);
    // Printed on localhost: passkeys need a domain (scripts/start.mjs).
    expect(first.issuer).toBe(`http://localhost:${port}`);
    expect(first.demoUrl).toBe(`${first.issuer}/demo`);
    expect(first.clientId).toBe("demo");
    expect(running.output).not.toContain("client_secret");

    // The demo page runs with the client npm start registered, on localhost and on 127.0.0.1 (the page names any gap).
    for (const origin of [first.issuer, `http://127.0.0.1:${port}`]) {
      const page = await fetch(`${origin}/demo`, { headers: { accept: "text/html" } });
      const html = await page.text();
      expect(html, origin).toContain(`data-client-id="demo" data-issuer="${origin}"`);
      expect(html, origin).toContain('<script src="/demo/app.js?v=');
    }
    const registered = await fetch(`${first.issuer}/admin/clients/demo`, { headers: { authorization: `Bearer ${first.adminToken}` } });
    expect(await registered.json()).toMatchObject({
      client_name: "Demo app",
      token_endpoint_auth_method: "none",
      redirect_uris: [`${first.issuer}/demo/callback`, `http://127.0.0.1:${port}/demo/callback`],
      post_logout_redirect_uris: [`${first.issuer}/demo`, `http://127.0.0.1:${port}/demo`],
      grant_types: ["authorization_code", "refresh_token"],
    });
    const redirectUri = first.authorizeUrl.searchParams.get("redirect_uri")!;
    expect(first.authorizeUrl.searchParams.get("code_challenge_method")).toBe("S256");

    // The person: opens the printed URL and signs in with the link from the dev mailbox the printout names.
    expect(running.output).toContain(`the sign-in link waits at ${first.issuer}/dev/mailbox`);
    const outcome = await authorizeAsUser(new UserAgent(first.issuer), first.authorizeUrl, { email: uniqueEmail("demo"), redirectUri });
    expect(outcome).toMatchObject({ signedIn: true, consented: true });

    // The app: openid-client as a public client (no secret) with the printed id and verifier.
    const config = await client.discovery(new URL(first.issuer), first.clientId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
    const tokens = await client.authorizationCodeGrant(config, outcome.callback, {
      pkceCodeVerifier: first.codeVerifier,
      expectedState: first.authorizeUrl.searchParams.get("state")!,
      expectedNonce: first.authorizeUrl.searchParams.get("nonce")!,
    });
    expect(tokens.claims()).toMatchObject({ iss: first.issuer, aud: first.clientId });
    expect(tokens.refresh_token).toBeTruthy();
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    expect(info.email).toMatch(/^demo-/);

    // What earlier versions left: a confidential "Demo app" and its secret in demo-client.json (replaced on the next start).
    const legacy = await fetch(`${first.issuer}/admin/clients`, {
      method: "POST",
      headers: { authorization: `Bearer ${first.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ client_name: "Demo app", redirect_uris: [`${first.issuer}/demo/callback`], token_endpoint_auth_method: "client_secret_post" }),
    });
    const { client_id: legacyId, client_secret: legacySecret } = (await legacy.json()) as { client_id: string; client_secret: string };
    writeFileSync(path.join(root, ".wrangler", "state", "demo-client.json"), JSON.stringify({ client_id: legacyId, client_secret: legacySecret }));

    await running.stop();
    running = undefined;
  });

  it("second start on the same state: the same app is printed, nothing new is registered, and the old confidential demo client is gone", async () => {
    // A test that failed before its stop must not leave its npm start running (a new one would overwrite the handle).
    await running?.stop().catch(() => {});
    running = new NpmStart(root, port);
    const second = await running.ready();
    expect(second.registeredNow).toBe(false);
    expect(second).toMatchObject({ adminToken: first.adminToken, clientId: "demo", demoUrl: `${first.issuer}/demo` });
    expect(existsSync(path.join(root, ".wrangler", "state", "demo-client.json"))).toBe(false);
    expect(second.codeVerifier).not.toBe(first.codeVerifier);
    const list = await fetch(`${second.issuer}/admin/clients`, { headers: { authorization: `Bearer ${second.adminToken}` } });
    const { clients } = (await list.json()) as { clients: { client_name: string }[] };
    expect(clients.filter((c) => c.client_name === "Demo app")).toHaveLength(1);
    await running.stop();
    running = undefined;
  });
});

describe("npm start checks every setting with the Worker's own rules before starting anything", () => {
  let root: string;

  beforeAll(() => {
    root = projectCopy();
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** Runs npm start to its refusal: exit code, the lines on stderr, stdout, and how long it took. */
  async function refusal(vars: Record<string, string>, port: number | string = 8787) {
    const run = new NpmStart(root, port, vars);
    const code = await run.exit(10_000);
    return { code, lines: run.stderr.split("\n").filter((l) => l !== ""), stdout: run.stdout, ms: run.exitedAt! - run.startedAt };
  }

  it("a bad setting in the environment: exit code 2 within a second, with the one line, and nothing started or written", async () => {
    const result = await refusal({ AUTH_CODE_TTL: "abc" });
    expect(result).toMatchObject({ code: 2, lines: ["AUTH_CODE_TTL=abc: must be a whole number of seconds between 10 and 600"], stdout: "" });
    expect(result.ms).toBeLessThan(1000);
    expect(existsSync(path.join(root, ".wrangler"))).toBe(false);
  });

  it("a bad ISSUER in .dev.vars: the same, and the line says what to write instead", async () => {
    writeFileSync(path.join(root, ".dev.vars"), "# mine\nISSUER=https://id.example.com/\n");
    try {
      const result = await refusal({});
      expect(result).toMatchObject({
        code: 2,
        lines: ["ISSUER=https://id.example.com/: must be written as its bare origin, https://id.example.com (no trailing /, default port or capitals)"],
      });
      expect(result.ms).toBeLessThan(1000);
    } finally {
      rmSync(path.join(root, ".dev.vars"));
    }
  });

  it("a secret is named, never shown", async () => {
    const result = await refusal({ ADMIN_TOKEN: "short-secret" });
    expect(result).toMatchObject({
      code: 2,
      lines: ["ADMIN_TOKEN=(hidden, 12 characters): must be empty (admin API off) or 32 to 512 characters of A-Z a-z 0-9 - . _ ~ + / ="],
    });
  });

  it("PORT: a bad one is refused the same way; PORT= (empty) means the default", async () => {
    expect(await refusal({}, "abc")).toMatchObject({ code: 2, lines: ["PORT=abc: must be a TCP port number between 1 and 65535"] });
    expect(await refusal({}, "70000")).toMatchObject({ code: 2, lines: ["PORT=70000: must be a TCP port number between 1 and 65535"] });
    // With PORT empty the only complaint is the bad setting: the empty port was taken as 8787.
    expect(await refusal({ EMAIL_TRANSPORT: "smtp" }, "")).toMatchObject({ code: 2, lines: ["EMAIL_TRANSPORT=smtp: must be dev or http"] });
  });

  it("cross-setting rules and wrangler.jsonc vars are checked too", async () => {
    const jsonc = path.join(root, "wrangler.jsonc");
    const original = readFileSync(jsonc, "utf8");
    writeFileSync(jsonc, original.replace('"EMAIL_TRANSPORT": "dev"', '"EMAIL_TRANSPORT": "http"'));
    try {
      const result = await refusal({});
      expect(result).toMatchObject({
        code: 2,
        lines: ["EMAIL_API_URL=: must be set when EMAIL_TRANSPORT=http", "EMAIL_API_KEY=: must be set when EMAIL_TRANSPORT=http"],
      });
    } finally {
      writeFileSync(jsonc, original);
    }
  });
});

describe("one npm start per state folder, and the state folder is private", () => {
  let root: string;
  let port: number;
  let first: NpmStart | undefined;
  let printout: Printout;

  beforeAll(async () => {
    root = projectCopy();
    port = await freePort();
    first = new NpmStart(root, port);
    printout = await first.ready();
  });

  afterAll(async () => {
    await first?.stop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });

  const state = () => path.join(root, ".wrangler", "state");
  const lock = () => path.join(state(), "npm-start.lock");
  const mode = (file: string) => statSync(file).mode & 0o777;

  it(".wrangler/state is 0700, the files npm start writes are 0600, and nothing in it is open to group or others", () => {
    expect(mode(state()).toString(8)).toBe("700");
    for (const file of ["admin-token", "worker.env", "npm-start.lock"]) {
      expect(mode(path.join(state(), file)).toString(8), file).toBe("600");
    }
    // wrangler and workerd create the D1 and Durable Object files under the same umask.
    const open: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const full = path.join(dir, entry);
        if (lstatSync(full).mode & 0o077) open.push(path.relative(root, full));
        if (lstatSync(full).isDirectory()) walk(full);
      }
    };
    walk(state());
    expect(open).toEqual([]);
  });

  it("the lock names the running OP; a second npm start on the same state (another port) is refused with that name", async () => {
    expect(JSON.parse(readFileSync(lock(), "utf8"))).toMatchObject({ pid: first!.pid, port, issuer: printout.issuer });
    const otherPort = await freePort();
    const second = new NpmStart(root, otherPort);
    expect(await second.exit(10_000)).toBe(1);
    expect(second.stderr).toContain(`Another npm start is using .wrangler/state: PID ${first!.pid}, ${printout.issuer}.`);
    expect(second.stderr).toContain(`kill ${first!.pid}`);
    // The running one is untouched: still serving, and its demo client did not gain the other port's redirect URI.
    expect((await fetch(`${printout.issuer}/health`)).status).toBe(200);
    const { clients } = (await (await fetch(`${printout.issuer}/admin/clients`, { headers: { authorization: `Bearer ${printout.adminToken}` } })).json()) as {
      clients: { redirect_uris: string[] }[];
    };
    expect(clients.flatMap((c) => c.redirect_uris).some((uri) => uri.includes(`:${otherPort}/`))).toBe(false);
    expect(JSON.parse(readFileSync(lock(), "utf8"))).toMatchObject({ pid: first!.pid });
  });

  it("the printout explains the cron (its curl runs the maintenance) and names the inspector port, which is listening on loopback", async () => {
    const curl = /curl "(http:\/\/localhost:\d+\/cdn-cgi\/handler\/scheduled\?cron=[^"]+)"/.exec(first!.output);
    expect(curl, first!.output).not.toBeNull();
    expect(first!.output).toMatch(/cron:\s+\*\/15 \* \* \* \* \(wrangler\.jsonc; .*\) is not run by wrangler dev/);
    expect((await fetch(curl![1]!)).status).toBe(200);
    const deadline = Date.now() + 10_000;
    while (!first!.output.includes('"event":"maintenance.done"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(first!.output).toContain('"event":"maintenance.done"');

    const inspector = /inspector:\s+127\.0\.0\.1:(\d+)/.exec(first!.output);
    expect(inspector, first!.output).not.toBeNull();
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(inspector![1]), "127.0.0.1", () => (socket.end(), resolve()));
      socket.once("error", reject);
    });
  });

  it("the lock goes with the process; a lock left by a process that is gone is stale and taken over", async () => {
    await first!.stop();
    first = undefined;
    expect(existsSync(lock())).toBe(false);

    // A crashed npm start: its lock names a PID that no longer runs.
    const gone = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
    const deadPid = Number(gone.stdout.trim());
    writeFileSync(lock(), JSON.stringify({ pid: deadPid, port: 1, issuer: "http://127.0.0.1:1" }), { mode: 0o600 });
    first = new NpmStart(root, port);
    await first.ready();
    expect(first.output).toContain(`stale (PID ${deadPid} is gone), taking it over`);
    expect(JSON.parse(readFileSync(lock(), "utf8"))).toMatchObject({ pid: first.pid, port });
    await first.stop();
    first = undefined;
    expect(existsSync(lock())).toBe(false);
  });
});
