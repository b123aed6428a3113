import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

  it("first start: the demo app is registered and its URL printed first; the printed authorize URL and verifier get tokens with openid-client", async () => {
    // A test that failed before its stop must not leave its npm start running (a new one would overwrite the handle).
    await running?.stop().catch(() => {});
    running = new NpmStart(root, port);
    first = await running.ready();
    expect(first.registeredNow).toBe(true);
    expect(first.issuer).toBe(`http://127.0.0.1:${port}`);
    expect(first.demoUrl).toBe(`${first.issuer}/demo`);
    expect(first.clientId).toBe("demo");
    expect(running.output).not.toContain("client_secret");

    // The demo page runs with the client npm start registered, on 127.0.0.1 and on localhost (the page names any gap).
    for (const origin of [first.issuer, `http://localhost:${port}`]) {
      const page = await fetch(`${origin}/demo`, { headers: { accept: "text/html" } });
      const html = await page.text();
      expect(html, origin).toContain(`data-client-id="demo" data-issuer="${origin}"`);
      expect(html, origin).toContain('<script src="/demo/app.js?v=');
    }
    const registered = await fetch(`${first.issuer}/admin/clients/demo`, { headers: { authorization: `Bearer ${first.adminToken}` } });
    expect(await registered.json()).toMatchObject({
      client_name: "Demo app",
      token_endpoint_auth_method: "none",
      redirect_uris: [`${first.issuer}/demo/callback`, `http://localhost:${port}/demo/callback`],
      post_logout_redirect_uris: [`${first.issuer}/demo`, `http://localhost:${port}/demo`],
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
