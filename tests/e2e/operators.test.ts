import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, freePort } from "./helpers/dev-server.ts";
import { UserAgent, authorizeAsUser, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * Issue 12 against `wrangler dev`: dynamic client registration with openid-client's own dynamicClientRegistration, and
 * the admin CLI (scripts/admin.mjs) as an operator runs it — tables, --json, -q, the token from the environment or a
 * file, and clear errors with a non-zero exit.
 */

const root = path.resolve(import.meta.dirname, "../..");
const CALLBACK = "https://registered.example/callback";
const INITIAL = "initial-access-token-for-the-e2e-test-0123456789";
const insecureOnLoopback = { execute: [client.allowInsecureRequests] };

let server: DevServer;
let issuer: string;
let scratch: string;

beforeAll(async () => {
  server = await DevServer.start({ vars: { DYNAMIC_REGISTRATION: "token", INITIAL_ACCESS_TOKEN: INITIAL, RATE_LIMIT_ADMIN: "100000" } });
  issuer = server.issuer;
  scratch = mkdtempSync(path.join(tmpdir(), "oidc-cli-"));
});

afterAll(async () => {
  await server?.dispose();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as a shell runs it, in the project root, with the admin token in the environment (unless `env` says otherwise). */
function cli(args: string[], env: Record<string, string | undefined> = {}, cwd = scratch): Promise<Run> {
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, OIDC_ISSUER: issuer, ADMIN_TOKEN: server.adminToken };
  const merged = Object.fromEntries(Object.entries({ ...base, ...env }).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, "scripts", "admin.mjs"), ...args], { cwd, env: merged, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(args: string[], env: Record<string, string | undefined> = {}): Promise<string> {
  const run = await cli(args, env);
  expect(run.code, `${args.join(" ")}\n${run.stderr}`).toBe(0);
  return run.stdout;
}

async function okJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await ok([...args, "--json"])) as T;
}

describe("dynamic client registration with openid-client", () => {
  it("registers with the initial access token, signs a user in, then reads and deletes its registration (RFC 7592)", async () => {
    const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(metadata.registration_endpoint).toBe(`${issuer}/register`);

    // Without the initial access token: refused.
    await expect(client.dynamicClientRegistration(new URL(issuer), { redirect_uris: [CALLBACK] }, undefined, insecureOnLoopback)).rejects.toThrow();

    const config = await client.dynamicClientRegistration(
      new URL(issuer),
      { client_name: "Registered at runtime", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], token_endpoint_auth_method: "client_secret_post" },
      undefined,
      { ...insecureOnLoopback, initialAccessToken: INITIAL },
    );
    const registered = config.clientMetadata();
    expect(registered.client_id).toBeTruthy();
    expect(registered.client_secret).toBeTruthy();
    expect(registered.registration_client_uri).toBe(`${issuer}/register/${registered.client_id}`);

    // The registered client works like any other: a person signs in and consents, the code becomes tokens.
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: CALLBACK,
      scope: "openid email offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state,
    });
    const { callback, consented } = await authorizeAsUser(new UserAgent(issuer), url, { email: uniqueEmail("dcr"), redirectUri: CALLBACK });
    expect(consented).toBe(true); // a registered client never skips consent
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state });
    const claims = tokens.claims()!;
    expect((await client.fetchUserInfo(config, tokens.access_token, claims.sub)).email).toMatch(/^dcr-/);

    // RFC 7592: the client reads and deletes its own registration with the registration access token.
    const auth = { authorization: `Bearer ${registered.registration_access_token as string}` };
    const read = await fetch(registered.registration_client_uri as string, { headers: auth });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ client_id: registered.client_id, client_name: "Registered at runtime" });
    expect((await fetch(registered.registration_client_uri as string, { method: "DELETE", headers: auth })).status).toBe(204);
    expect((await fetch(registered.registration_client_uri as string, { headers: auth })).status).toBe(401);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_client" });
  });
});

describe("the admin CLI against wrangler dev", () => {
  it("help, usage errors (exit 2), and no --token flag", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("users create <email>");
    expect((await cli([])).code).toBe(2);
    for (const args of [["users"], ["frobnicate"], ["users", "get"], ["users", "list", "--limit"], ["users", "list", "--bogus"]]) {
      const run = await cli(args);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr).toMatch(/^oidc admin: /);
    }
    const flag = await cli(["users", "list", "--token", server.adminToken]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("shell history");
    const none = await cli(["users", "list"], { ADMIN_TOKEN: undefined, OIDC_ISSUER: "https://id.example.com" });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no admin token");
  });

  it("clear errors with exit 1: unreachable, a refused token, not found, a conflict", async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await cli(["users", "list", "--issuer", nobody]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toBe(`oidc admin: cannot reach ${nobody} (ECONNREFUSED): is the OP running, and is --issuer right?\n`);
    const refused = await cli(["users", "list"], { ADMIN_TOKEN: "x".repeat(40) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("the admin token was refused (401 invalid_token");
    const missing = await cli(["users", "get", "no-such-user-id"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("not found (404 not_found: no such user)");
    const email = uniqueEmail("dup");
    await ok(["users", "create", email]);
    const conflict = await cli(["users", "create", email]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain("conflict (409");
    const bad = await cli(["users", "create", "not-an-email"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("email: must be an email address");
  });

  it("the token from a file, or from standard input", async () => {
    const file = path.join(scratch, "token");
    writeFileSync(file, `${server.adminToken}\n`, { mode: 0o600 });
    expect((await cli(["keys", "list", "--token-file", file], { ADMIN_TOKEN: undefined })).code).toBe(0);
    expect((await cli(["keys", "list"], { ADMIN_TOKEN: undefined, ADMIN_TOKEN_FILE: file })).code).toBe(0);
    const stdin = await new Promise<Run>((resolve) => {
      const child = execFile(process.execPath, [path.join(root, "scripts", "admin.mjs"), "keys", "list", "--token-stdin"], { env: { PATH: process.env.PATH, OIDC_ISSUER: issuer } }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
      );
      child.stdin!.end(server.adminToken);
    });
    expect(stdin.code).toBe(0);
    expect(stdin.stdout).toMatch(/^KID\s+ALG\s+STATE/);
  });

  it("users: create, list, get, update, disable (sessions and tokens end), enable, consents, delete — tables, --json and -q", async () => {
    // A user created by the CLI signs in to a client, which makes a session, a consent and tokens.
    const email = uniqueEmail("cli");
    const userId = (await ok(["users", "create", email, "--name", "Cli User", "--group", "staff", "--claims", '{"department":"Ops"}', "-q"])).trim();
    expect(userId).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    const table = await ok(["users", "list", "--email", email]);
    expect(table.split("\n")[0]).toMatch(/^ID\s+EMAIL\s+NAME\s+GROUPS\s+DISABLED$/);
    expect(table).toContain(email);
    expect(await okJson(["users", "get", userId])).toMatchObject({ id: userId, email, name: "Cli User", groups: ["staff"], claims: { department: "Ops" } });
    const updated = await okJson<{ name: string; version: number }>(["users", "update", userId, "--name", "Renamed User", "--no-groups"]);
    expect(updated).toMatchObject({ name: "Renamed User", groups: [] });
    const stale = await cli(["users", "update", userId, "--name", "Lost", "--if-match", String(updated.version - 1)]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain("conflict (409");

    const app = await server.registerClient({ client_name: "CLI App", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], token_endpoint_auth_method: "client_secret_post" });
    const config = await client.discovery(new URL(issuer), app.client_id, app.client_secret, undefined, insecureOnLoopback);
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: CALLBACK,
      scope: "openid profile offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: "s",
    });
    const { callback } = await authorizeAsUser(new UserAgent(issuer), url, { email, redirectUri: CALLBACK });
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: "s" });

    expect(await ok(["sessions", "list", userId])).toMatch(/^SID\s+AMR/);
    expect((await okJson<{ consents: { client_id: string }[] }>(["consents", "list", userId])).consents.map((c) => c.client_id)).toEqual([app.client_id]);

    const disabled = await ok(["users", "disable", userId]);
    expect(disabled).toContain(`${email}: disabled, 1 session(s) ended`);
    expect((await fetch(`${issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
    expect((await client.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
    expect(await ok(["users", "enable", userId])).toContain(`${email}: enabled`);

    expect(await ok(["consents", "revoke", userId, app.client_id])).toContain(`revoked the consent to ${app.client_id}`);
    expect((await okJson<{ consents: unknown[] }>(["consents", "list", userId])).consents).toEqual([]);

    const audit = await ok(["audit", "--user", userId]);
    expect(audit.split("\n")[0]).toMatch(/^TIME\s+TYPE\s+SOURCE/);
    for (const type of ["admin.user.created", "admin.user.updated", "admin.user.disabled", "admin.user.enabled", "admin.user.consent_revoked"]) expect(audit).toContain(type);
    const tail = await ok(["audit", "tail", "--user", userId, "--type", "admin.user.*"]);
    const lines = tail.trim().split("\n");
    expect(lines[0]).toContain("admin.user.created"); // oldest first
    expect(lines.at(-1)).toContain("admin.user.consent_revoked"); // the last change above

    expect(await ok(["users", "delete", userId])).toContain(`deleted user ${userId}`);
    expect((await cli(["users", "get", userId])).code).toBe(1);
  });

  it("clients, keys, dead letters and metrics", async () => {
    const created = await okJson<{ client_id: string; client_secret: string }>(["clients", "create", "--name", "From the CLI", "--redirect-uri", "https://cli.example/cb", "--auth-method", "client_secret_post"]);
    expect(created.client_secret).toBeTruthy();
    expect(await ok(["clients", "list"])).toContain("From the CLI");
    expect(await okJson(["clients", "update", created.client_id, "--redirect-uri", "https://cli.example/cb2"])).toMatchObject({ redirect_uris: ["https://cli.example/cb2"] });
    const rotated = await okJson<{ client_secret: string }>(["clients", "update", created.client_id, "--rotate-secret"]);
    expect(rotated.client_secret).not.toBe(created.client_secret);
    expect(await ok(["clients", "delete", created.client_id])).toContain("deleted client");

    const before = (await ok(["keys", "list", "-q"])).trim().split("\n");
    const newKid = (await ok(["keys", "rotate", "--alg", "RS256", "-q"])).trim();
    expect(before).not.toContain(newKid);
    const keys = await okJson<{ keys: { kid: string; state: string }[] }>(["keys", "list"]);
    const previous = keys.keys.find((k) => k.state === "previous")!;
    const withdrawn = await ok(["keys", "withdraw", previous.kid, "--reason", "test"]);
    expect(withdrawn).toMatch(/withdrawn\s+true/);
    const jwks = (await (await fetch(`${issuer}/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).not.toContain(previous.kid);

    expect(await ok(["dead-letters", "list"])).toContain("0 dead letter(s), 0 pending, in 0 object(s)");
    expect(await ok(["dead-letters", "redrive"])).toContain("0 dead letter(s) put back in line");
    const metrics = await okJson<Record<string, unknown>>(["metrics", "--since", "1h"]);
    expect(metrics).toMatchObject({ sign_ins: { total: expect.any(Number) }, token_grants: expect.any(Object), audit_outbox: expect.any(Object) });
    expect(await ok(["metrics"])).toContain("sign_ins");
  });
});
