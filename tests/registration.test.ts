import { SELF, createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getClient } from "../src/db/clients";
import type { Env } from "../src/env";
import worker from "../src/index";
import { hashClientSecret } from "../src/oauth/client-auth";
import { makeCode, makeUser, redeem, type TestClient } from "./helpers/back-channel";

/** Dynamic client registration, RFC 7591 and RFC 7592 (issue 12): off by default. */

type Json = Record<string, unknown>;
const INITIAL = "initial-access-token-0123456789abcdefghijklmnop";
const ORIGIN = "http://localhost";

function workerWith(settings: Partial<Env>) {
  const configured = { ...env, ...settings } as Env;
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> => {
    const ctx = createExecutionContext();
    const request = new Request(`${ORIGIN}${path}`, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const response = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, configured, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
}

// Rate limits are per address and all these requests come from one: raised, but for the test of the limit itself.
const withToken = workerWith({ DYNAMIC_REGISTRATION: "token", INITIAL_ACCESS_TOKEN: INITIAL, RATE_LIMIT_REGISTRATION: "100000" } as Partial<Env>);
const open = workerWith({ DYNAMIC_REGISTRATION: "open", RATE_LIMIT_REGISTRATION: "100000" } as Partial<Env>);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const APP = { client_name: "Self-registered app", redirect_uris: ["https://rp.example/callback"], grant_types: ["authorization_code", "refresh_token"] };

async function json(response: Response, status: number): Promise<Json> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as Json;
}

async function clientCount(): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM clients").first<{ n: number }>())!.n;
}

describe("dynamic client registration", () => {
  it("is off by default: /register is 404 and discovery does not name it", async () => {
    expect((await SELF.fetch(`${ORIGIN}/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(APP) })).status).toBe(404);
    expect((await SELF.fetch(`${ORIGIN}/register/anything`)).status).toBe(404);
    expect((await SELF.fetch(`${ORIGIN}/register`)).status).toBe(404);
    const metadata = (await (await SELF.fetch(`${ORIGIN}/.well-known/openid-configuration`)).json()) as Json;
    expect(metadata).not.toHaveProperty("registration_endpoint");
    const on = (await (await withToken("GET", "/.well-known/openid-configuration")).json()) as Json;
    expect(on.registration_endpoint).toBe(`${ORIGIN}/register`);
  });

  it("with DYNAMIC_REGISTRATION=token, registering needs the initial access token (401 without, or with a wrong one)", async () => {
    const before = await clientCount();
    const missing = await withToken("POST", "/register", APP);
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="http://localhost"');
    const wrong = await withToken("POST", "/register", APP, bearer(`${INITIAL}x`));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(await clientCount()).toBe(before);
  });

  it("registers (RFC 7591 §3.2.1), the client works, and it reads, replaces and deletes itself (RFC 7592)", async () => {
    const created = await json(await withToken("POST", "/register", { ...APP, logo_uri: "https://rp.example/logo.png", nonstandard_member: "ignored" }, bearer(INITIAL)), 201);
    const clientId = created.client_id as string;
    const secret = created.client_secret as string;
    const token = created.registration_access_token as string;
    expect(created).toMatchObject({
      client_name: "Self-registered app",
      redirect_uris: ["https://rp.example/callback"],
      token_endpoint_auth_method: "client_secret_basic",
      client_secret_expires_at: 0,
      registration_client_uri: `${ORIGIN}/register/${clientId}`,
    });
    expect(typeof created.client_id_issued_at).toBe("number");
    // Unknown metadata is ignored (RFC 7591 §2), RFC 7591's logo_uri kept; the operator's members are not shown.
    expect(created).not.toHaveProperty("nonstandard_member");
    expect(created.logo_uri).toBe("https://rp.example/logo.png");
    expect(created).not.toHaveProperty("skip_consent");
    const stored = (await getClient(env.DB, clientId))!;
    expect(stored.secret_hash).toBe(await hashClientSecret(secret));
    expect(stored.registration_token_hash).not.toContain(token);
    expect(stored.skip_consent).toBe(false);

    // The client works as any other.
    const rp: TestClient = { client: stored, clientId, secret };
    const user = await makeUser();
    expect((await redeem(rp, await makeCode(clientId, user.id))).access_token).toBeTruthy();

    // RFC 7592 §2.1: read with the registration access token; no secret in the answer.
    const read = await json(await withToken("GET", `/register/${clientId}`, undefined, bearer(token)), 200);
    expect(read).toMatchObject({ client_id: clientId, client_name: "Self-registered app", registration_access_token: token });
    expect(read).not.toHaveProperty("client_secret");
    for (const headers of [{}, bearer(INITIAL), bearer(`${token}x`)]) {
      expect((await withToken("GET", `/register/${clientId}`, undefined, headers)).status).toBe(401);
    }

    // RFC 7592 §2.2: a full replacement; what is left out takes its default; what only an admin may set stays.
    await env.DB.prepare("UPDATE clients SET skip_consent = 1 WHERE id = ?").bind(clientId).run();
    const replaced = await json(
      await withToken("PUT", `/register/${clientId}`, { client_id: clientId, client_secret: secret, client_name: "Renamed", redirect_uris: ["https://rp.example/cb2"] }, bearer(token)),
      200,
    );
    expect(replaced).toMatchObject({ client_name: "Renamed", redirect_uris: ["https://rp.example/cb2"], grant_types: ["authorization_code"] });
    expect((await getClient(env.DB, clientId))!.skip_consent).toBe(true);
    expect((await withToken("PUT", `/register/${clientId}`, { client_id: "another", ...APP }, bearer(token))).status).toBe(400);
    expect((await withToken("PUT", `/register/${clientId}`, { client_id: clientId, client_secret: "wrong", ...APP }, bearer(token))).status).toBe(400);
    expect((await withToken("PUT", `/register/${clientId}`, { client_id: clientId, ...APP, skip_consent: false }, bearer(token))).status).toBe(400);

    const events = await env.DB.prepare("SELECT type, source, actor FROM audit_log WHERE client_id = ? ORDER BY occurred_at, rowid").bind(clientId).all<Json>();
    expect(events.results.filter((e) => (e.type as string).startsWith("registration."))).toEqual([
      { type: "registration.client.created", source: "registration", actor: "dynamic-registration" },
      { type: "registration.client.updated", source: "registration", actor: `client:${clientId}` },
    ]);

    // RFC 7592 §2.3: deleted, then the token is worth nothing.
    expect((await withToken("DELETE", `/register/${clientId}`, undefined, bearer(token))).status).toBe(204);
    expect(await getClient(env.DB, clientId)).toBeNull();
    expect((await withToken("GET", `/register/${clientId}`, undefined, bearer(token))).status).toBe(401);
  });

  it("refuses what only an administrator may set, and bad metadata, with nothing created (one validator with the admin API)", async () => {
    const before = await clientCount();
    const cases: Array<[Json, string]> = [
      [{ ...APP, skip_consent: true }, "invalid_client_metadata"],
      [{ ...APP, extra_claims: ["department"] }, "invalid_client_metadata"],
      [{ ...APP, refresh_token_reuse_interval: 30 }, "invalid_client_metadata"],
      [{ ...APP, redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
      [{ ...APP, redirect_uris: ["http://evil.example/cb"] }, "invalid_redirect_uri"],
      [{ client_name: "No redirect" }, "invalid_redirect_uri"],
      [{ ...APP, grant_types: ["password"] }, "invalid_client_metadata"],
      [{ ...APP, token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
    ];
    for (const [body, error] of cases) {
      const response = await withToken("POST", "/register", body, bearer(INITIAL));
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(((await response.json()) as Json).error).toBe(error);
    }
    for (const raw of ["{", "[]", "null"]) expect((await withToken("POST", "/register", raw, bearer(INITIAL))).status).toBe(400);
    expect(await clientCount()).toBe(before);
  });

  it("an admin-created client has no registration access token: its configuration endpoint is 401 for anyone", async () => {
    const response = await SELF.fetch(`${ORIGIN}/admin/clients`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(APP),
    });
    const { client_id } = (await response.json()) as { client_id: string };
    expect((await withToken("GET", `/register/${client_id}`, undefined, bearer("x".repeat(43)))).status).toBe(401);
    expect((await withToken("DELETE", `/register/${client_id}`, undefined, bearer(INITIAL))).status).toBe(401);
    expect(await getClient(env.DB, client_id)).not.toBeNull();
  });

  it("open registration needs no token and is rate limited per address; other methods are 405", async () => {
    const limited = workerWith({ DYNAMIC_REGISTRATION: "open", RATE_LIMIT_REGISTRATION: "2" } as Partial<Env>);
    // An address of its own (an IPv6 /64 is one bucket), so the count starts at zero.
    const ip = { "cf-connecting-ip": `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}::1` };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await limited("POST", "/register", APP, ip)).status);
    expect(statuses).toEqual([201, 201, 429]);
    expect((await open("GET", "/register")).status).toBe(405);
    expect((await open("PATCH", "/register/abc")).status).toBe(405);
  });
});
