import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./helpers/dev-server.ts";
import { UserAgent, authorizeAsUser, uniqueEmail } from "./helpers/user-agent.ts";
import { liveProcessesInGroup, quietEnv } from "./helpers/worker-process.ts";

/**
 * `npm start` as the README tells a developer to use it: it seeds the demo app on first start and prints everything
 * needed to try a sign-in; following that printout with openid-client (unmodified) ends in tokens. A second start on
 * the same state prints the same app and secret and seeds nothing new.
 *
 * scripts/start.mjs keeps its state next to itself (`.wrangler/state` under the project root), so it runs from a
 * temporary copy of the project (node_modules linked), never touching a developer's own state.
 */

const repo = path.resolve(import.meta.dirname, "../..");

interface Printout {
  issuer: string;
  adminToken: string;
  clientId: string;
  clientSecret: string;
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
  return {
    issuer: grab(/issuer:\s+(\S+)/),
    adminToken: grab(/admin token:\s+(\S+)/),
    clientId: grab(/client_id:\s+(\S+)/),
    clientSecret: grab(/client_secret:\s+(\S+)/),
    authorizeUrl: new URL(grab(/open in a browser:\s+(\S+)/)),
    codeVerifier: grab(/code_verifier of this start: (\S+?)\)/),
    registeredNow: /Demo app \(registered just now\)/.test(out),
  };
}

class NpmStart {
  private out = "";
  private readonly exited: Promise<number | null>;

  constructor(
    readonly root: string,
    readonly port: number,
  ) {
    const env: NodeJS.ProcessEnv = { ...quietEnv, PORT: String(port) };
    delete env.ADMIN_TOKEN;
    this.child = spawn(process.execPath, [path.join(root, "scripts", "start.mjs")], { cwd: root, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (c: Buffer) => (this.out += c.toString()));
    this.child.stderr!.on("data", (c: Buffer) => (this.out += c.toString()));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  private readonly child: ChildProcess;

  get output(): string {
    return this.out;
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
    root = mkdtempSync(path.join(tmpdir(), "oidc-npm-start-"));
    for (const entry of ["src", "scripts", "drizzle", "wrangler.jsonc", "package.json", "tsconfig.json"]) {
      cpSync(path.join(repo, entry), path.join(root, entry), { recursive: true });
    }
    symlinkSync(path.join(repo, "node_modules"), path.join(root, "node_modules"), "dir");
    port = await freePort();
  });

  afterAll(async () => {
    await running?.stop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });

  let first: Printout;

  it("first start: the demo app is registered, and its printed authorize URL, verifier and secret get tokens with openid-client", async () => {
    running = new NpmStart(root, port);
    first = await running.ready();
    expect(first.registeredNow).toBe(true);
    expect(first.issuer).toBe(`http://127.0.0.1:${port}`);
    const redirectUri = first.authorizeUrl.searchParams.get("redirect_uri")!;
    expect(first.authorizeUrl.searchParams.get("code_challenge_method")).toBe("S256");

    // The person: opens the printed URL and signs in with the link from the dev mailbox the printout names.
    expect(running.output).toContain(`${first.issuer}/dev/mailbox?to=`);
    const outcome = await authorizeAsUser(new UserAgent(first.issuer), first.authorizeUrl, { email: uniqueEmail("demo"), redirectUri });
    expect(outcome).toMatchObject({ signedIn: true, consented: true });

    // The app: openid-client with the printed id and secret (client_secret_post, its default) and the printed verifier.
    const config = await client.discovery(new URL(first.issuer), first.clientId, first.clientSecret, undefined, { execute: [client.allowInsecureRequests] });
    const tokens = await client.authorizationCodeGrant(config, outcome.callback, {
      pkceCodeVerifier: first.codeVerifier,
      expectedState: first.authorizeUrl.searchParams.get("state")!,
      expectedNonce: first.authorizeUrl.searchParams.get("nonce")!,
    });
    expect(tokens.claims()).toMatchObject({ iss: first.issuer, aud: first.clientId });
    expect(tokens.refresh_token).toBeTruthy();
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    expect(info.email).toMatch(/^demo-/);

    await running.stop();
    running = undefined;
  });

  it("second start on the same state: the same app and secret are printed, nothing new is registered", async () => {
    running = new NpmStart(root, port);
    const second = await running.ready();
    expect(second.registeredNow).toBe(false);
    expect(second).toMatchObject({ adminToken: first.adminToken, clientId: first.clientId, clientSecret: first.clientSecret });
    expect(second.codeVerifier).not.toBe(first.codeVerifier);
    const list = await fetch(`${second.issuer}/admin/clients`, { headers: { authorization: `Bearer ${second.adminToken}` } });
    const { clients } = (await list.json()) as { clients: { client_name: string }[] };
    expect(clients.filter((c) => c.client_name === "Demo app")).toHaveLength(1);
    await running.stop();
    running = undefined;
  });
});
