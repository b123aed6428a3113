import { SELF, createExecutionContext, env } from "cloudflare:test";
import type { IRequest } from "itty-router";
import { describe, expect, it, vi } from "vitest";
import { updateClient } from "../src/db/clients";
import { getClient } from "../src/db/clients";
import type { Env } from "../src/env";
import { userSessionsFor } from "../src/objects/locate";
import { newSessionId } from "../src/objects/sessions";
import { hashClientSecret } from "../src/oauth/client-auth";
import { redirectUriProblem } from "../src/oauth/client-metadata";
import { userClaimValues } from "../src/oauth/claims";
import type { User } from "../src/db/users";
import { listClientsRoute } from "../src/routes/admin";
import { admin } from "../src/routes/support/admin-auth";
import { currentSigningKey } from "../src/objects/key-cache";
import { uniqueAddress } from "./helpers/front-channel";

const BASE = "http://localhost";
const ADMIN_AUTH = { authorization: "Bearer test-admin-token-0123456789abcdefghij" };

type Json = Record<string, unknown>;

/** A request as the router hands it to a handler (for calling a handler directly with a modified env). */
function routed(url: string, headers: Record<string, string>): IRequest {
  return Object.assign(new Request(url, { headers }), { route: "", params: {}, query: {} }) as unknown as IRequest;
}

function adminFetch(method: string, path: string, body?: unknown, headers: Record<string, string> = ADMIN_AUTH): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createClient(metadata: Json): Promise<Json> {
  const response = await adminFetch("POST", "/admin/clients", metadata);
  expect(response.status).toBe(201);
  return (await response.json()) as Json;
}

async function expectError(response: Response, status: number, error: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(((await response.json()) as Json).error).toBe(error);
}

async function auditEvents(clientId: string, type?: string): Promise<Array<{ type: string; actor: string | null; data: string | null }>> {
  const query = type
    ? env.DB.prepare(`SELECT type, actor, data FROM audit_log WHERE client_id = ? AND type = ? ORDER BY occurred_at`).bind(clientId, type)
    : env.DB.prepare(`SELECT type, actor, data FROM audit_log WHERE client_id = ? ORDER BY occurred_at`).bind(clientId);
  return (await query.all<{ type: string; actor: string | null; data: string | null }>()).results;
}

async function clientCount(): Promise<number> {
  return (await env.DB.prepare(`SELECT COUNT(*) AS n FROM clients`).first<{ n: number }>())!.n;
}

const WEB_CLIENT = { client_name: "Web app", redirect_uris: ["https://app.example/cb"] };

describe("discovery (OIDC Discovery 1.0, RFC 8414)", () => {
  it("serves one document at both well-known paths, with the fields clients need", async () => {
    const oidc = await SELF.fetch(`${BASE}/.well-known/openid-configuration`);
    const oauth = await SELF.fetch(`${BASE}/.well-known/oauth-authorization-server`);
    expect(oidc.status).toBe(200);
    expect(oidc.headers.get("content-type")).toBe("application/json");
    expect(oidc.headers.get("cache-control")).toMatch(/^public, max-age=\d+$/);
    expect(oidc.headers.get("access-control-allow-origin")).toBe("*");
    const doc = (await oidc.json()) as Json;
    expect(await oauth.json()).toEqual(doc);

    expect(doc).toMatchObject({
      issuer: BASE,
      authorization_endpoint: `${BASE}/authorize`,
      token_endpoint: `${BASE}/token`,
      userinfo_endpoint: `${BASE}/userinfo`,
      jwks_uri: `${BASE}/jwks.json`,
      introspection_endpoint: `${BASE}/introspect`,
      revocation_endpoint: `${BASE}/revoke`,
      end_session_endpoint: `${BASE}/logout`,
      pushed_authorization_request_endpoint: `${BASE}/par`,
      response_types_supported: ["code"],
      response_modes_supported: ["query", "fragment", "form_post"],
      grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["RS256", "ES256"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
      code_challenge_methods_supported: ["S256"],
      claims_parameter_supported: true,
      // Request objects by value (RFC 9101), and request_uri only from /par.
      request_parameter_supported: true,
      request_uri_parameter_supported: false,
      require_pushed_authorization_requests: false,
      authorization_response_iss_parameter_supported: true,
      prompt_values_supported: ["none", "login", "consent", "select_account"],
    });
    expect(doc.scopes_supported).toEqual(expect.arrayContaining(["openid", "profile", "email", "address", "phone", "offline_access"]));
    expect(doc.claims_supported).toEqual(expect.arrayContaining(["sub", "iss", "auth_time", "email", "email_verified", "name"]));
    // Only claims the OP can return: the ID token's own, and the user claims it stores (no middle_name, gender, …).
    const idTokenClaims = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash"];
    const user = { id: "u", email: "a@example.com", updatedAt: 0 } as unknown as User;
    expect(new Set(doc.claims_supported as string[])).toEqual(new Set([...idTokenClaims, ...Object.keys(userClaimValues(user))]));
    for (const unheld of ["middle_name", "nickname", "profile", "website", "gender", "birthdate"]) expect(doc.claims_supported).not.toContain(unheld);
    // Exactly what the OP sets (oauth/acr.ts): a device-bound passkey meets phrh and phr, a synced one phr, the email
    // link the baseline "0" (OIDC Core §2).
    expect(doc.acr_values_supported).toEqual(["phrh", "phr", "0"]);
    expect(doc.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(["RS256", "ES256"]));
    expect(doc.token_endpoint_auth_signing_alg_values_supported).not.toContain("none");
    // RFC 7662 §2.1: introspection needs an authorized caller, so no public clients; RFC 7009 §2.1: revocation takes them.
    expect(doc.introspection_endpoint_auth_methods_supported).toEqual(["client_secret_basic", "client_secret_post", "private_key_jwt"]);
    expect(doc.revocation_endpoint_auth_methods_supported).toEqual(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]);
    expect(doc.token_endpoint_auth_signing_alg_values_supported).not.toContain("HS256");
    // OIDC Back-Channel Logout 1.0 §2.1: built, with sid in every Logout Token.
    expect(doc.backchannel_logout_supported).toBe(true);
    expect(doc.backchannel_logout_session_supported).toBe(true);
    // DPoP proofs and request objects: asymmetric algorithms only, and no unsigned request objects by default.
    const asymmetric = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
    expect(doc.dpop_signing_alg_values_supported).toEqual(asymmetric);
    expect(doc.request_object_signing_alg_values_supported).toEqual(asymmetric);
    // Only what works: no front-channel logout, no registration endpoint, no URLs fetched as request_uri.
    for (const absent of [
      "frontchannel_logout_supported",
      "frontchannel_logout_session_supported",
      "registration_endpoint",
      "require_request_uri_registration",
    ]) {
      expect(doc).not.toHaveProperty(absent);
    }
  });

  it("says what the settings change: PAR required for everyone, unsigned request objects allowed", async () => {
    const { discovery } = await import("../src/routes/discovery");
    const strict = { ...env, REQUIRE_PUSHED_AUTHORIZATION_REQUESTS: "true", ALLOW_UNSIGNED_REQUEST_OBJECTS: "true" } as Env;
    const doc = (await discovery(new Request(`${BASE}/.well-known/openid-configuration`), strict).json()) as Json;
    expect(doc.require_pushed_authorization_requests).toBe(true);
    expect(doc.request_object_signing_alg_values_supported).toContain("none");
  });

  it("uses the configured issuer when one is set", async () => {
    const { discovery } = await import("../src/routes/discovery");
    const response = discovery(new Request(`${BASE}/.well-known/openid-configuration`), { ...env, ISSUER: "https://id.example" } as Env);
    const doc = (await response.json()) as Json;
    expect(doc.issuer).toBe("https://id.example");
    expect(doc.token_endpoint).toBe("https://id.example/token");
  });

  it("every advertised endpoint exists", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    const endpoints: Array<[string, string]> = [
      ["authorization_endpoint", "GET"],
      ["token_endpoint", "POST"],
      ["userinfo_endpoint", "GET"],
      ["jwks_uri", "GET"],
      ["introspection_endpoint", "POST"],
      ["revocation_endpoint", "POST"],
      ["end_session_endpoint", "GET"],
      ["pushed_authorization_request_endpoint", "POST"],
    ];
    for (const [name, method] of endpoints) {
      const url = doc[name]!;
      expect(url.startsWith(BASE), name).toBe(true);
      const response = await SELF.fetch(url, {
        method,
        ...(method === "POST" ? { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" } : {}),
      });
      expect(response.status, `${name} ${url}`).not.toBe(404);
      expect(response.status, `${name} ${url}`).toBeLessThan(500);
      await response.arrayBuffer();
    }
  });
});

describe("JWKS", () => {
  it("publishes the signing keys with kid and public members only", async () => {
    // Both algorithms' signing keys exist before the set is read (the key manager creates a key on first use).
    const signing = [(await currentSigningKey(env, "RS256")).kid, (await currentSigningKey(env, "ES256")).kid];
    const response = await SELF.fetch(`${BASE}/jwks.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    const { keys } = (await response.json()) as { keys: Json[] };
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(typeof key.kid).toBe("string");
      expect(["RSA", "EC"]).toContain(key.kty);
      expect(key.use).toBe("sig");
      for (const member of ["d", "p", "q", "dp", "dq", "qi", "k", "oth"]) expect(key).not.toHaveProperty(member);
    }
    const kids = keys.map((k) => k.kid);
    expect(new Set(kids).size).toBe(kids.length);
    // The key that signs right now is among them (C19).
    expect(kids).toEqual(expect.arrayContaining(signing));
  });
});

describe("admin API authentication", () => {
  it("refuses a missing or wrong token with 401 and a Bearer challenge, accepts the right one", async () => {
    const missing = await adminFetch("GET", "/admin/clients", undefined, {});
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="admin"');

    const wrong = await adminFetch("GET", "/admin/clients", undefined, { authorization: "Bearer test-admin-tokem" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe('Bearer realm="admin", error="invalid_token"');
    expect(((await wrong.json()) as Json).error).toBe("invalid_token");

    const basic = await adminFetch("GET", "/admin/clients", undefined, { authorization: `Basic ${btoa("admin:test-admin-token-0123456789abcdefghij")}` });
    expect(basic.status).toBe(401);
    const prefix = await adminFetch("GET", "/admin/clients", undefined, { authorization: "Bearer test-admin-token-0123456789abcdefghij-and-more" });
    expect(prefix.status).toBe(401);

    // Nothing is created with a wrong token.
    const before = await clientCount();
    const refused = await adminFetch("POST", "/admin/clients", WEB_CLIENT, { authorization: "Bearer nope" });
    expect(refused.status).toBe(401);
    expect(await clientCount()).toBe(before);

    const right = await adminFetch("GET", "/admin/clients");
    expect(right.status).toBe(200);
    expect(right.headers.get("cache-control")).toBe("no-store");
  });

  it("accepts ADMIN_TOKEN_NEXT beside ADMIN_TOKEN during a rotation, and only the configured ones", async () => {
    const handler = admin(listClientsRoute);
    const next = "next-admin-token-abcdefghijklmnopqrstuvwxyz";
    const rotating = { ...env, ADMIN_TOKEN_NEXT: next } as Env;
    const call = (token: string, on: Env) => handler(routed(`${BASE}/admin/clients`, { authorization: `Bearer ${token}` }), on, createExecutionContext());
    expect((await call(next, rotating)).status).toBe(200);
    expect((await call(env.ADMIN_TOKEN!, rotating)).status).toBe(200);
    await expect(call(next, env)).rejects.toMatchObject({ status: 401 });
    await expect(call(`${next}x`, rotating)).rejects.toMatchObject({ status: 401 });
    // After the switch: the new token alone.
    const switched = { ...env, ADMIN_TOKEN: next } as Env;
    expect((await call(next, switched)).status).toBe(200);
    await expect(call(env.ADMIN_TOKEN!, switched)).rejects.toMatchObject({ status: 401 });
  });

  it("is off when no admin token is configured", async () => {
    const handler = admin(listClientsRoute);
    const disabledEnv = { ...env, ADMIN_TOKEN: "" } as Env;
    await expect(handler(routed(`${BASE}/admin/clients`, { authorization: "Bearer " }), disabledEnv, createExecutionContext())).rejects.toMatchObject({ status: 403 });
    await expect(handler(routed(`${BASE}/admin/clients`, ADMIN_AUTH), disabledEnv, createExecutionContext())).rejects.toMatchObject({ status: 403 });
  });

  it("is rate limited per caller address (exact count, then 429 with Retry-After)", async () => {
    const handler = admin(listClientsRoute);
    const limitedEnv = { ...env, RATE_LIMIT_ADMIN: "3" } as Env;
    const call = (ip: string) =>
      handler(routed(`${BASE}/admin/clients`, { ...ADMIN_AUTH, "cf-connecting-ip": ip }), limitedEnv, createExecutionContext());
    const ip = uniqueAddress();
    // A frozen clock inside one window, so the count is exact.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
      const results = await Promise.allSettled([call(ip), call(ip), call(ip), call(ip), call(ip)]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(rejected).toHaveLength(2);
      for (const r of rejected) {
        expect(r.reason).toMatchObject({ status: 429, code: "rate_limited" });
        expect(Number(r.reason.headers["retry-after"])).toBeGreaterThan(0);
      }
      // Another address has its own window.
      await expect(call(`${ip}-other`)).resolves.toBeInstanceOf(Response);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("admin API: clients", () => {
  it("creates a confidential client: defaults, the secret once, stored only as its hash, audited", async () => {
    const response = await adminFetch("POST", "/admin/clients", WEB_CLIENT);
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const created = (await response.json()) as Json;
    const clientId = created.client_id as string;
    expect(response.headers.get("location")).toBe(`/admin/clients/${clientId}`);
    expect(created).toMatchObject({
      client_name: "Web app",
      redirect_uris: ["https://app.example/cb"],
      post_logout_redirect_uris: [],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "openid profile email address phone offline_access",
      skip_consent: false,
      id_token_claims: "scope",
      client_secret_expires_at: 0,
    });
    expect(created).not.toHaveProperty("secret_hash");
    const secret = created.client_secret as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Never shown again.
    const read = (await (await adminFetch("GET", `/admin/clients/${clientId}`)).json()) as Json;
    expect(read).not.toHaveProperty("client_secret");
    expect(read).not.toHaveProperty("secret_hash");
    expect(read.client_id).toBe(clientId);
    const list = (await (await adminFetch("GET", "/admin/clients")).json()) as { clients: Json[] };
    const listed = list.clients.find((c) => c.client_id === clientId)!;
    expect(listed).toBeDefined();
    expect(listed).not.toHaveProperty("client_secret");
    expect(listed).not.toHaveProperty("secret_hash");
    expect(JSON.stringify(list)).not.toContain(secret);

    // Stored hashed (C13).
    const row = await env.DB.prepare(`SELECT secret_hash FROM clients WHERE id = ?`).bind(clientId).first<{ secret_hash: string }>();
    expect(row!.secret_hash).toBe(await hashClientSecret(secret));
    expect(row!.secret_hash).not.toContain(secret);

    const events = await auditEvents(clientId);
    expect(events.map((e) => e.type)).toEqual(["admin.client.created"]);
    expect(events[0]!.actor).toBe("admin-api");
    expect(events[0]!.data).not.toContain(secret);
  });

  it("creates a public client (none) and a private_key_jwt client without a secret", async () => {
    const pub = await createClient({ client_name: "SPA", redirect_uris: ["http://127.0.0.1:5173/cb"], token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"] });
    expect(pub).not.toHaveProperty("client_secret");
    expect(pub.token_endpoint_auth_method).toBe("none");
    expect((await getClient(env.DB, pub.client_id as string))!.secret_hash).toBeNull();

    const jwk = { kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid: "k1" };
    const pkj = await createClient({ client_name: "Service", token_endpoint_auth_method: "private_key_jwt", grant_types: ["client_credentials"], jwks: { keys: [jwk] } });
    expect(pkj).not.toHaveProperty("client_secret");
    expect(pkj.response_types).toEqual([]);
    expect(pkj.redirect_uris).toEqual([]);
    expect(pkj.jwks).toEqual({ keys: [jwk] });
    expect((await getClient(env.DB, pkj.client_id as string))!.secret_hash).toBeNull();

    const native = await createClient({ client_name: "Native", redirect_uris: ["com.example.app:/oauth2redirect", "http://[::1]/cb", "http://localhost:8080/cb"], token_endpoint_auth_method: "none" });
    expect(native.redirect_uris).toEqual(["com.example.app:/oauth2redirect", "http://[::1]/cb", "http://localhost:8080/cb"]);

    const withOptions = await createClient({ ...WEB_CLIENT, skip_consent: true, id_token_signed_response_alg: "ES256", id_token_claims: "minimal", scope: "openid  email", unknown_member: "ignored" });
    expect(withOptions).toMatchObject({ skip_consent: true, id_token_signed_response_alg: "ES256", id_token_claims: "minimal", scope: "openid email" });
    expect(withOptions).not.toHaveProperty("unknown_member");
  });

  it("takes an admin-chosen client_id once: concurrent creates give one 201, the rest 409, one audit event", async () => {
    const chosen = `demo-${crypto.randomUUID()}`;
    const responses = await Promise.all(Array.from({ length: 8 }, () => adminFetch("POST", "/admin/clients", { ...WEB_CLIENT, client_id: chosen })));
    const statuses = responses.map((r) => r.status).sort();
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Json[];
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    const created = bodies.find((b) => b.client_id === chosen)!;
    expect((await getClient(env.DB, chosen))!.secret_hash).toBe(await hashClientSecret(created.client_secret as string));
    expect(await auditEvents(chosen, "admin.client.created")).toHaveLength(1);
    await expectError(await adminFetch("POST", "/admin/clients", { ...WEB_CLIENT, client_id: "bad id" }), 400, "invalid_client_metadata");
    await expectError(await adminFetch("POST", "/admin/clients", { ...WEB_CLIENT, client_id: 42 }), 400, "invalid_client_metadata");
  });

  it("refuses invalid metadata with RFC 7591 errors and stores nothing", async () => {
    const before = await clientCount();
    const cases: Array<[Json, string]> = [
      [{ redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["data:text/html,<script>alert(1)</script>"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["http://app.example/cb"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://app.example/cb#frag"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://app.example/cb#"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["/relative/cb"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["myapp:/cb"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://user:pw@app.example/cb"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://app.example/cb\n"] }, "invalid_redirect_uri"],
      [{ redirect_uris: "https://app.example/cb" }, "invalid_redirect_uri"],
      [{ redirect_uris: [] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://app.example/cb"], post_logout_redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://app.example/cb"], grant_types: ["password"] }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], grant_types: ["implicit"] }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], grant_types: [] }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], response_types: ["token"] }, "invalid_client_metadata"],
      [{ grant_types: ["client_credentials"], token_endpoint_auth_method: "none" }, "invalid_client_metadata"],
      [{ grant_types: ["refresh_token"] }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], token_endpoint_auth_method: "client_secret_jwt" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], jwks: { keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b", d: "c" }] } }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], jwks_uri: "http://keys.example/jwks" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], jwks: { keys: [{ kty: "EC" }] }, jwks_uri: "https://keys.example/jwks" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], id_token_signed_response_alg: "none" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], id_token_signed_response_alg: "HS256" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], scope: "openid \"quoted\"" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], client_name: "" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], skip_consent: "yes" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], refresh_token_reuse_interval: -1 }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], refresh_token_reuse_interval: 301 }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], refresh_token_reuse_interval: 1.5 }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], refresh_token_reuse_interval: "30" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], id_token_claims: "all" }, "invalid_client_metadata"],
      [{ redirect_uris: ["https://app.example/cb"], id_token_claims: false }, "invalid_client_metadata"],
      [{ redirect_uris: Array.from({ length: 50 }, (_, i) => `https://app.example/${i}`) }, "invalid_redirect_uri"],
    ];
    for (const [metadata, error] of cases) {
      const response = await adminFetch("POST", "/admin/clients", metadata);
      expect(response.status, JSON.stringify(metadata)).toBe(400);
      expect(((await response.json()) as Json).error, JSON.stringify(metadata)).toBe(error);
    }
    // Not JSON, not an object, the wrong type.
    await expectError(await SELF.fetch(`${BASE}/admin/clients`, { method: "POST", headers: { ...ADMIN_AUTH, "content-type": "application/json" }, body: "{not json" }), 400, "invalid_request");
    await expectError(await adminFetch("POST", "/admin/clients", [1, 2]), 400, "invalid_client_metadata");
    await expectError(await SELF.fetch(`${BASE}/admin/clients`, { method: "POST", headers: { ...ADMIN_AUTH, "content-type": "application/x-www-form-urlencoded" }, body: "client_name=x" }), 400, "invalid_request");
    await expectError(await adminFetch("POST", "/admin/clients", { ...WEB_CLIENT, client_name: "x".repeat(70_000) }), 413, "invalid_request");
    expect(await clientCount()).toBe(before);
  });

  it("redirect URI rules (RFC 8252 §7, §8.3)", () => {
    for (const ok of ["https://app.example/cb", "https://app.example:8443/cb?x=1", "http://127.0.0.1:49152/cb", "http://localhost/cb", "http://[::1]:8080/cb", "com.example.app:/cb", "com.example.app:cb"]) {
      expect(redirectUriProblem(ok), ok).toBeNull();
    }
    for (const bad of ["javascript:alert(1)", "JavaScript:alert(1)", "data:,x", "vbscript:x", "file:///etc/passwd", "http://127.0.0.2/cb", "http://localhost.evil.example/cb", "https:///cb", "https:/app.example/cb", "http:\\\\127.0.0.1/cb", "ftp://x.example/", "app:/cb", "https://a.example/ cb"]) {
      expect(redirectUriProblem(bad), bad).not.toBeNull();
    }
  });

  it("updates a client: members replaced, validated as a whole, audited; rotate_secret issues a new secret once", async () => {
    const created = await createClient(WEB_CLIENT);
    const clientId = created.client_id as string;
    const oldSecret = created.client_secret as string;

    const patched = await adminFetch("PATCH", `/admin/clients/${clientId}`, { client_name: "Renamed", post_logout_redirect_uris: ["https://app.example/bye"] });
    expect(patched.status).toBe(200);
    const body = (await patched.json()) as Json;
    expect(body).toMatchObject({ client_name: "Renamed", post_logout_redirect_uris: ["https://app.example/bye"], redirect_uris: ["https://app.example/cb"] });
    expect(body).not.toHaveProperty("client_secret");
    expect((await getClient(env.DB, clientId))!.secret_hash).toBe(await hashClientSecret(oldSecret));
    const updates = await auditEvents(clientId, "admin.client.updated");
    expect(updates).toHaveLength(1);
    expect(JSON.parse(updates[0]!.data!).changed).toEqual(["client_name", "post_logout_redirect_uris"]);

    // Invalid as a whole: nothing changes, nothing is audited.
    await expectError(await adminFetch("PATCH", `/admin/clients/${clientId}`, { redirect_uris: ["javascript:alert(1)"] }), 400, "invalid_redirect_uri");
    await expectError(await adminFetch("PATCH", `/admin/clients/${clientId}`, { token_endpoint_auth_method: "none", grant_types: ["client_credentials"] }), 400, "invalid_client_metadata");
    await expectError(await adminFetch("PATCH", `/admin/clients/${clientId}`, { rotate_secret: "yes" }), 400, "invalid_client_metadata");
    expect((await getClient(env.DB, clientId))!.redirect_uris).toEqual(["https://app.example/cb"]);
    expect(await auditEvents(clientId, "admin.client.updated")).toHaveLength(1);

    const rotated = (await (await adminFetch("PATCH", `/admin/clients/${clientId}`, { rotate_secret: true })).json()) as Json;
    const newSecret = rotated.client_secret as string;
    expect(newSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newSecret).not.toBe(oldSecret);
    const stored = await getClient(env.DB, clientId);
    expect(stored!.secret_hash).toBe(await hashClientSecret(newSecret));
    expect((await (await adminFetch("GET", `/admin/clients/${clientId}`)).json()) as Json).not.toHaveProperty("client_secret");
    const rotationEvent = (await auditEvents(clientId, "admin.client.updated")).at(-1)!;
    expect(JSON.parse(rotationEvent.data!)).toMatchObject({ secret_rotated: true });
    expect(rotationEvent.data).not.toContain(newSecret);

    // Becoming public erases the hash; a public client has no secret to rotate.
    const pub = (await (await adminFetch("PATCH", `/admin/clients/${clientId}`, { token_endpoint_auth_method: "none" })).json()) as Json;
    expect(pub).not.toHaveProperty("client_secret");
    expect((await getClient(env.DB, clientId))!.secret_hash).toBeNull();
    await expectError(await adminFetch("PATCH", `/admin/clients/${clientId}`, { rotate_secret: true }), 400, "invalid_client_metadata");
    // Becoming confidential again issues a fresh secret.
    const confidential = (await (await adminFetch("PATCH", `/admin/clients/${clientId}`, { token_endpoint_auth_method: "client_secret_post" })).json()) as Json;
    expect((await getClient(env.DB, clientId))!.secret_hash).toBe(await hashClientSecret(confidential.client_secret as string));

    await expectError(await adminFetch("PATCH", `/admin/clients/unknown-client`, { client_name: "x" }), 404, "not_found");
  });

  it("concurrent updates of different members all take effect (compare-and-swap), one audit event each", async () => {
    const clientId = (await createClient(WEB_CLIENT)).client_id as string;
    // A PATCH that loses the compare-and-swap re-reads and retries, up to 3 attempts (UPDATE_ATTEMPTS in
    // src/routes/admin.ts); it loses a round only to another PATCH that succeeded. So of 3 concurrent PATCHes
    // every one gets through: exactly 3 × 200, 3 events, and the client has all three changes.
    const patches: Json[] = [{ client_name: "Concurrent" }, { scope: "openid email" }, { post_logout_redirect_uris: ["https://app.example/bye"] }];
    const responses = await Promise.all(patches.map((p) => adminFetch("PATCH", `/admin/clients/${clientId}`, p)));
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await auditEvents(clientId, "admin.client.updated")).toHaveLength(3);
    expect(await getClient(env.DB, clientId)).toMatchObject(Object.assign({}, ...patches));
  });

  it("a change and its audit event commit together: a lost compare-and-swap writes neither", async () => {
    const clientId = (await createClient(WEB_CLIENT)).client_id as string;
    const stored = (await getClient(env.DB, clientId))!;
    const { secret_hash: _hash, registered_at: _registered, client_id: _id, client_id_issued_at: _at, updated_at: _up, ...fields } = stored;
    const applied = await updateClient(env.DB, clientId, 1, { ...fields, client_name: "stale write" }, undefined, { actor: "test", data: {} });
    expect(applied).toBe(false);
    expect((await getClient(env.DB, clientId))!.client_name).toBe("Web app");
    expect(await auditEvents(clientId, "admin.client.updated")).toHaveLength(0);
  });

  it("deletes a client (204), then it is gone (404), audited once", async () => {
    const clientId = (await createClient(WEB_CLIENT)).client_id as string;
    const deleted = await adminFetch("DELETE", `/admin/clients/${clientId}`);
    expect(deleted.status).toBe(204);
    expect(await getClient(env.DB, clientId)).toBeNull();
    await expectError(await adminFetch("GET", `/admin/clients/${clientId}`), 404, "not_found");
    await expectError(await adminFetch("DELETE", `/admin/clients/${clientId}`), 404, "not_found");
    expect((await auditEvents(clientId)).map((e) => e.type)).toEqual(["admin.client.created", "admin.client.deleted"]);
  });

  it("C5: once a redirect URI update returns, /authorize refuses the old URI", async () => {
    const clientId = (await createClient({ ...WEB_CLIENT, token_endpoint_auth_method: "none" })).client_id as string;
    const authorize = (redirectUri: string) => {
      const query = new URLSearchParams({
        client_id: clientId,
        redirect_uri: redirectUri,
        response_type: "code",
        scope: "openid",
        state: "s1",
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method: "S256",
      });
      return SELF.fetch(`${BASE}/authorize?${query}`, { redirect: "manual" });
    };
    const before = await authorize("https://app.example/cb");
    await before.arrayBuffer();
    expect(before.status).not.toBe(400);
    expect(before.status).not.toBe(404);

    const patched = await adminFetch("PATCH", `/admin/clients/${clientId}`, { redirect_uris: ["https://app.example/new-cb"] });
    expect(patched.status).toBe(200);
    await patched.arrayBuffer();

    const after = await authorize("https://app.example/cb");
    expect(after.status).toBe(400);
    expect(after.headers.get("location")).toBeNull();
    expect(after.headers.get("content-type")).toMatch(/^text\/html/);
    await after.arrayBuffer();

    const fresh = await authorize("https://app.example/new-cb");
    await fresh.arrayBuffer();
    expect(fresh.status).not.toBe(400);
  });
});

describe("admin API: a user's sessions (C18)", () => {
  it("lists the sessions and revokes them all in one call", async () => {
    const userId = `user-${crypto.randomUUID()}`;
    const sessions = userSessionsFor(env, userId)!;
    const made = await Promise.all(
      [1, 2, 3].map(async () => {
        const sid = newSessionId();
        const result = await sessions.createSession({ sid, userId, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null });
        if (!result.created) throw new Error("session not created");
        return { sid, secret: result.secret };
      }),
    );
    const listed = (await (await adminFetch("GET", `/admin/users/${userId}/sessions`)).json()) as { sessions: Json[] };
    expect(listed.sessions.map((s) => s.sid).sort()).toEqual(made.map((m) => m.sid).sort());
    expect(listed.sessions[0]).toMatchObject({ amr: ["email"], clients: [] });
    expect(JSON.stringify(listed)).not.toContain(made[0]!.secret);

    const revoked = await adminFetch("POST", `/admin/users/${userId}/sessions/revoke-all`);
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as Json).revoked).toBe(3);
    for (const m of made) expect(await sessions.getSession(m.sid, m.secret)).toBeNull();
    expect(((await (await adminFetch("GET", `/admin/users/${userId}/sessions`)).json()) as { sessions: Json[] }).sessions).toEqual([]);

    await expectError(await adminFetch("GET", `/admin/users/bad id!/sessions`), 404, "not_found");
    const unauthenticated = await adminFetch("POST", `/admin/users/${userId}/sessions/revoke-all`, undefined, {});
    expect(unauthenticated.status).toBe(401);
  });
});
