import { SELF, env, runInDurableObject } from "cloudflare:test";
import { exportJWK, generateKeyPair } from "jose";
import * as oauth from "oauth4webapi";
import { describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import { getClient } from "../src/db/clients";
import { rateLimiterFor, tokenFamilyFor } from "../src/objects/locate";
import {
  ISSUER,
  REDIRECT_URI,
  basic,
  errorOf,
  makeClient,
  makeCode,
  makeUser,
  post,
  postAs,
  redeem,
  userinfoWith,
  type TestClient,
  type Tokens,
} from "./helpers/back-channel";

/** userinfo (OIDC Core §5.3, RFC 6750), introspection (RFC 7662) and revocation (RFC 7009). */

const config = loadConfig(env);
const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };

const PROFILE = {
  name: "Ada Lovelace",
  givenName: "Ada",
  familyName: "Lovelace",
  preferredUsername: "ada",
  locale: "en-GB",
  phoneNumber: "+44 20 7946 0000",
  phoneNumberVerified: true,
  address: { street_address: "12 St James's Square", locality: "London", country: "UK" },
};

async function signedIn(scope = "openid profile email offline_access", claims: string | null = null) {
  const rp = await makeClient();
  const user = await makeUser(PROFILE);
  const tokens = await redeem(rp, await makeCode(rp.clientId, user.id, { scope, claims }));
  return { rp, user, tokens };
}

function decodePayload(jwt: string): Record<string, unknown> {
  return JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
}

async function userinfoBody(response: Response): Promise<Record<string, unknown>> {
  expect(response.status).toBe(200);
  expect(response.headers.get("cache-control")).toBe("no-store");
  return response.json<Record<string, unknown>>();
}

async function introspectAs(c: TestClient, token: string, hint?: string) {
  const response = await postAs(c, "/introspect", hint ? { token, token_type_hint: hint } : { token });
  expect(response.status).toBe(200);
  expect(response.headers.get("cache-control")).toBe("no-store");
  return response.json<Record<string, unknown>>();
}

describe("/userinfo", () => {
  it("returns the user's claims from D1 for GET and POST, header or form body (C17)", async () => {
    const { user, tokens } = await signedIn();
    const expected = {
      sub: user.id,
      name: "Ada Lovelace",
      given_name: "Ada",
      family_name: "Lovelace",
      preferred_username: "ada",
      locale: "en-GB",
      updated_at: Math.floor(user.updatedAt / 1000),
      email: user.email,
      email_verified: true,
    };
    expect(await userinfoBody(await userinfoWith(tokens.access_token))).toEqual(expected);
    const viaPostHeader = await SELF.fetch(`${ISSUER}/userinfo`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(await userinfoBody(viaPostHeader)).toEqual(expected);
    expect(await userinfoBody(await post("/userinfo", { access_token: tokens.access_token }))).toEqual(expected);
    // A profile change shows at once: claims are read from D1 on each request.
    await env.DB.prepare("UPDATE users SET name = 'Countess of Lovelace' WHERE id = ?").bind(user.id).run();
    expect((await userinfoBody(await userinfoWith(tokens.access_token))).name).toBe("Countess of Lovelace");
  });

  it("filters by scope: openid alone is just sub; address and phone only with their scopes", async () => {
    const bare = await signedIn("openid");
    expect(await userinfoBody(await userinfoWith(bare.tokens.access_token))).toEqual({ sub: bare.user.id });
    const contact = await signedIn("openid address phone");
    expect(await userinfoBody(await userinfoWith(contact.tokens.access_token))).toEqual({
      sub: contact.user.id,
      address: PROFILE.address,
      phone_number: PROFILE.phoneNumber,
      phone_number_verified: true,
    });
  });

  it("the claims request never releases a claim whose scope was not granted (OIDC Core §5.5, C17)", async () => {
    const claims = JSON.stringify({ userinfo: { email: { essential: true }, given_name: null, not_a_claim: null }, id_token: { locale: null } });
    // Granted openid alone: asking for email and given_name does not get them past the user's consent.
    const bare = await signedIn("openid", claims);
    expect(await userinfoBody(await userinfoWith(bare.tokens.access_token))).toEqual({ sub: bare.user.id });
    // Granted email: the email claims are released (by the scope), profile claims still are not.
    const email = await signedIn("openid email", claims);
    expect(await userinfoBody(await userinfoWith(email.tokens.access_token))).toEqual({ sub: email.user.id, email: email.user.email, email_verified: true });
  });

  it("answers 401 with a Bearer challenge for no token, a bad token, an expired or revoked one", async () => {
    const noToken = await SELF.fetch(`${ISSUER}/userinfo`);
    expect(noToken.status).toBe(401);
    // RFC 6750 §3.1: no error attribute when the request carried no token at all.
    expect(noToken.headers.get("www-authenticate")).toBe(`Bearer realm="${ISSUER}"`);

    for (const bad of ["garbage", "a.b.c", `${"x".repeat(50)}.${"y".repeat(50)}.${"z".repeat(50)}`]) {
      const response = await userinfoWith(bad);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="http:\/\/localhost", error="invalid_token"/);
    }
    // A token we did not sign with our keys (right shape, wrong signature).
    const { rp, tokens } = await signedIn();
    const [h, p] = tokens.access_token.split(".");
    expect((await userinfoWith(`${h}.${p}.${"A".repeat(342)}`)).status).toBe(401);
    // An ID token is not an access token (typ JWT, aud = client).
    expect((await userinfoWith(tokens.id_token!)).status).toBe(401);

    expect((await userinfoWith(tokens.access_token)).status).toBe(200);
    expect((await postAs(rp, "/revoke", { token: tokens.access_token })).status).toBe(200);
    const revoked = await userinfoWith(tokens.access_token);
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("refuses a token sent two ways at once, and a token without openid (403 insufficient_scope)", async () => {
    const { tokens } = await signedIn();
    const both = await post("/userinfo", { access_token: tokens.access_token }, { authorization: `Bearer ${tokens.access_token}` });
    expect(await errorOf(both)).toEqual({ status: 400, error: "invalid_request" });
    expect(both.headers.get("www-authenticate")).toContain('error="invalid_request"');

    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read" });
    const cc = await (await postAs(api, "/token", { grant_type: "client_credentials" })).json<Tokens>();
    const forbidden = await userinfoWith(cc.access_token);
    expect(await errorOf(forbidden)).toEqual({ status: 403, error: "insufficient_scope" });
    expect(forbidden.headers.get("www-authenticate")).toContain('error="insufficient_scope"');

    const plainOAuth = await signedIn("email");
    expect((await userinfoWith(plainOAuth.tokens.access_token)).status).toBe(403);
  });

  it("refuses the token of a user who was disabled", async () => {
    const { user, tokens } = await signedIn();
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(user.id).run();
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
  });

  it("refuses the token of a client that was deleted since", async () => {
    const { rp, tokens } = await signedIn();
    expect((await userinfoWith(tokens.access_token)).status).toBe(200);
    await env.DB.prepare("DELETE FROM clients WHERE id = ?").bind(rp.clientId).run();
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
  });
});

describe("/introspect (RFC 7662) and /revoke (RFC 7009) require client authentication (C14)", () => {
  it("answers 401 invalid_client without credentials or with wrong ones, and changes nothing", async () => {
    const { rp, tokens } = await signedIn();
    for (const path of ["/introspect", "/revoke"]) {
      const anonymous = await post(path, { token: tokens.refresh_token! });
      expect(await errorOf(anonymous)).toEqual({ status: 401, error: "invalid_client" });
      expect(anonymous.headers.get("www-authenticate")).toMatch(/^Basic /);
      const wrong = await post(path, { token: tokens.refresh_token! }, { authorization: basic(rp.clientId, "nope") });
      expect(await errorOf(wrong)).toEqual({ status: 401, error: "invalid_client" });
      const missing = await postAs(rp, path, {});
      expect(await errorOf(missing)).toEqual({ status: 400, error: "invalid_request" });
    }
    expect((await userinfoWith(tokens.access_token)).status).toBe(200);
    expect((await introspectAs(rp, tokens.refresh_token!)).active).toBe(true);
  });

  it("a client with a secret may send it by Basic or in the body at both (RFC 6749 §2.3.1, as Authlib does)", async () => {
    const user = await makeUser(PROFILE);
    for (const registered of ["client_secret_post", "client_secret_basic"] as const) {
      const rp = await makeClient({ token_endpoint_auth_method: registered });
      const tokens = await redeem(rp, await makeCode(rp.clientId, user.id));
      // The other way of sending the secret than the one registered.
      const other = (path: string, token: string) =>
        registered === "client_secret_post"
          ? post(path, { token }, { authorization: basic(rp.clientId, rp.secret!) })
          : post(path, { token, client_id: rp.clientId, client_secret: rp.secret! });
      const introspected = await other("/introspect", tokens.access_token);
      expect(introspected.status).toBe(200);
      expect(await introspected.json()).toMatchObject({ active: true, client_id: rp.clientId });
      expect((await other("/revoke", tokens.refresh_token!)).status).toBe(200);
      expect(await introspectAs(rp, tokens.refresh_token!)).toEqual({ active: false });
      expect(await introspectAs(rp, tokens.access_token)).toEqual({ active: false });
    }
  });

  it("refuses a public client at /introspect (RFC 7662 §2.1), and lets it revoke its own tokens (RFC 7009 §2.1)", async () => {
    const spa = await makeClient({ token_endpoint_auth_method: "none" });
    const user = await makeUser(PROFILE);
    const tokens = await redeem(spa, await makeCode(spa.clientId, user.id));
    for (const token of [tokens.access_token, tokens.refresh_token!]) {
      const response = await postAs(spa, "/introspect", { token });
      expect(await errorOf(response)).toEqual({ status: 401, error: "invalid_client" });
      expect(response.headers.get("cache-control")).toBe("no-store");
    }
    expect((await postAs(spa, "/revoke", { token: tokens.refresh_token! })).status).toBe(200);
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
  });

  it("introspects the caller's own access and refresh tokens", async () => {
    const { rp, user, tokens } = await signedIn();
    const access = await introspectAs(rp, tokens.access_token, "access_token");
    expect(access).toMatchObject({
      active: true,
      scope: "openid profile email offline_access",
      client_id: rp.clientId,
      sub: user.id,
      token_type: "Bearer",
      iss: ISSUER,
      aud: ISSUER,
    });
    expect(typeof access.exp).toBe("number");
    expect(typeof access.iat).toBe("number");
    expect(typeof access.jti).toBe("string");
    // The hint is only a hint (§2.1): a wrong one does not hide the token.
    expect((await introspectAs(rp, tokens.access_token, "refresh_token")).active).toBe(true);
    expect((await introspectAs(rp, tokens.access_token, "something_else")).active).toBe(true);

    const refresh = await introspectAs(rp, tokens.refresh_token!);
    expect(refresh).toMatchObject({ active: true, client_id: rp.clientId, sub: user.id, scope: "openid profile email offline_access" });
    expect(refresh.exp as number).toBeGreaterThan(Date.now() / 1000);
    // RFC 7662 §2.2: iat on every active answer; token_type only for the RFC 6749 §7.1 access-token types.
    expect(Math.abs((refresh.iat as number) - (access.iat as number))).toBeLessThanOrEqual(1);
    expect(refresh).not.toHaveProperty("token_type");
    // A refresh token's iat is its own issue time: the successor's, not the grant's.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 100_000);
      const rotated = await (await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! })).json<Tokens>();
      const next = await introspectAs(rp, rotated.refresh_token!);
      expect(next.iat as number).toBeGreaterThanOrEqual((refresh.iat as number) + 100);
      expect(Math.abs((next.iat as number) - (decodePayload(rotated.access_token).iat as number))).toBeLessThanOrEqual(1);
    } finally {
      vi.useRealTimers();
    }

    for (const garbage of ["garbage", "a.b.c", `${tokens.refresh_token!.split(".")[0]}.${"B".repeat(43)}`]) {
      expect(await introspectAs(rp, garbage)).toEqual({ active: false });
    }
  });

  it("another client sees active:false and cannot revoke; the owner still can", async () => {
    const { rp, tokens } = await signedIn();
    const other = await makeClient({ token_endpoint_auth_method: "client_secret_post" });
    expect(await introspectAs(other, tokens.access_token)).toEqual({ active: false });
    expect(await introspectAs(other, tokens.refresh_token!)).toEqual({ active: false });

    expect((await postAs(other, "/revoke", { token: tokens.refresh_token! })).status).toBe(200);
    expect((await postAs(other, "/revoke", { token: tokens.access_token })).status).toBe(200);
    // No effect: both tokens still work for their owner.
    expect((await userinfoWith(tokens.access_token)).status).toBe(200);
    expect((await introspectAs(rp, tokens.refresh_token!)).active).toBe(true);
    const rotated = await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! });
    expect(rotated.status).toBe(200);
  });

  it("revoking a refresh token revokes its family and every access token of it, everywhere", async () => {
    const { rp, tokens } = await signedIn();
    // A second access token of the same grant, from a rotation.
    const rotated = await (await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! })).json<Tokens>();
    const response = await postAs(rp, "/revoke", { token: rotated.refresh_token!, token_type_hint: "refresh_token" });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(await response.text()).toBe("");

    for (const access of [tokens.access_token, rotated.access_token]) {
      expect((await userinfoWith(access)).status).toBe(401);
      expect(await introspectAs(rp, access)).toEqual({ active: false });
    }
    expect(await introspectAs(rp, rotated.refresh_token!)).toEqual({ active: false });
    const refresh = await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: rotated.refresh_token! });
    expect(await errorOf(refresh)).toEqual({ status: 400, error: "invalid_grant" });
    // Revoking again, or an unknown token, is still a 200 (RFC 7009 §2.2).
    expect((await postAs(rp, "/revoke", { token: rotated.refresh_token! })).status).toBe(200);
    expect((await postAs(rp, "/revoke", { token: "never-issued" })).status).toBe(200);
  });

  it("revoking an access token revokes that token only, until it would have expired", async () => {
    const { rp, tokens } = await signedIn();
    expect((await postAs(rp, "/revoke", { token: tokens.access_token, token_type_hint: "access_token" })).status).toBe(200);
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect(await introspectAs(rp, tokens.access_token)).toEqual({ active: false });
    // The grant lives on: the refresh token still works and its new access token is honoured.
    const next = await (await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! })).json<Tokens>();
    expect((await userinfoWith(next.access_token)).status).toBe(200);
    const gid = JSON.parse(atob(tokens.access_token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).gid as string;
    expect((await tokenFamilyFor(env, gid)!.getFamily())!.status).toBe("active");
  });

  it("a client_credentials token can be introspected and revoked by its client", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read" });
    const cc = await (await postAs(api, "/token", { grant_type: "client_credentials" })).json<Tokens>();
    expect(await introspectAs(api, cc.access_token)).toMatchObject({ active: true, sub: api.clientId, client_id: api.clientId, scope: "reports:read" });
    expect((await postAs(api, "/revoke", { token: cc.access_token })).status).toBe(200);
    expect(await introspectAs(api, cc.access_token)).toEqual({ active: false });
  });

  it("limit failed client authentications per address and client_id, as /token limits requests; successes do not count (C6)", async () => {
    const { rp, tokens } = await signedIn();
    const n = config.rateLimitToken;
    const attacker = "203.0.113.9";
    const from = (address: string, path: string, secret = rp.secret!) =>
      post(path, { token: tokens.access_token }, { authorization: basic(rp.clientId, secret), "cf-connecting-ip": address });
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
      const limiter = rateLimiterFor(env, `client_auth_failures:ip:${attacker}:client:${rp.clientId}`);
      await limiter.hit(n, config.rateLimitWindow, n - 2);
      // A resource server that authenticates is never slowed by its own successes.
      for (let i = 0; i < 5; i++) expect((await from(attacker, "/introspect")).status).toBe(200);
      expect((await limiter.peekUsage(config.rateLimitWindow)).count).toBe(n - 2);
      // Two wrong secrets use up the budget, at either endpoint…
      expect((await errorOf(await from(attacker, "/introspect", "guess"))).status).toBe(401);
      expect((await errorOf(await from(attacker, "/revoke", "guess"))).status).toBe(401);
      // …then that address waits, even with the right secret, at both; other addresses do not.
      for (const path of ["/introspect", "/revoke"]) {
        const limited = await from(attacker, path);
        expect(await errorOf(limited)).toEqual({ status: 429, error: "rate_limited" });
        expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      }
      expect((await from("198.51.100.3", "/introspect")).status).toBe(200);
      // An invented client_id is limited the same way.
      const invented = (address: string) => post("/introspect", { token: "x" }, { authorization: basic("made-up-client", "guess"), "cf-connecting-ip": address });
      await rateLimiterFor(env, `client_auth_failures:ip:${attacker}:client:made-up-client`).hit(n, config.rateLimitWindow, n);
      expect((await errorOf(await invented(attacker))).status).toBe(429);
      expect((await errorOf(await invented("198.51.100.3"))).status).toBe(401);
      vi.setSystemTime(Date.now() + 60_000);
      expect((await from(attacker, "/introspect")).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a disabled or deleted user's access and refresh tokens are inactive, at introspection as everywhere (RFC 7662 §2.2, C23)", async () => {
    for (const change of ["UPDATE users SET disabled = 1 WHERE id = ?", "DELETE FROM users WHERE id = ?"]) {
      const { rp, user, tokens } = await signedIn();
      expect((await introspectAs(rp, tokens.access_token)).active).toBe(true);
      expect((await introspectAs(rp, tokens.refresh_token!)).active).toBe(true);
      await env.DB.prepare(change).bind(user.id).run();
      expect(await introspectAs(rp, tokens.access_token)).toEqual({ active: false });
      expect(await introspectAs(rp, tokens.refresh_token!)).toEqual({ active: false });
      expect((await userinfoWith(tokens.access_token)).status).toBe(401);
      const refreshed = await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! });
      expect(await errorOf(refreshed)).toEqual({ status: 400, error: "invalid_grant" });
    }
  });

  it("deleting a client ends its grants: registering the same client_id again revives neither access nor refresh tokens (RFC 9700 §4.14)", async () => {
    const clientId = `reborn-${crypto.randomUUID()}`;
    const register = async (): Promise<TestClient> => {
      const metadata = { client_id: clientId, client_name: "Reborn", redirect_uris: [REDIRECT_URI], grant_types: ["authorization_code", "refresh_token"] };
      const response = await SELF.fetch(`${ISSUER}/admin/clients`, { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(metadata) });
      expect(response.status).toBe(201);
      const { client_secret } = await response.json<{ client_secret: string }>();
      return { client: (await getClient(env.DB, clientId))!, clientId, secret: client_secret };
    };
    const first = await register();
    const user = await makeUser(PROFILE);
    const old = await redeem(first, await makeCode(clientId, user.id));
    expect((await SELF.fetch(`${ISSUER}/admin/clients/${clientId}`, { method: "DELETE", headers: ADMIN })).status).toBe(204);
    const again = await register();
    expect(again.client.registered_at).toBeGreaterThan(first.client.registered_at);

    expect((await userinfoWith(old.access_token)).status).toBe(401);
    expect(await introspectAs(again, old.access_token)).toEqual({ active: false });
    expect(await introspectAs(again, old.refresh_token!)).toEqual({ active: false });
    const refreshed = await postAs(again, "/token", { grant_type: "refresh_token", refresh_token: old.refresh_token! });
    expect(await errorOf(refreshed)).toEqual({ status: 400, error: "invalid_grant" });
    // The new registration's own grants work.
    const fresh = await redeem(again, await makeCode(clientId, user.id));
    expect((await userinfoWith(fresh.access_token)).status).toBe(200);
    expect((await introspectAs(again, fresh.refresh_token!)).active).toBe(true);
    expect((await postAs(again, "/token", { grant_type: "refresh_token", refresh_token: fresh.refresh_token! })).status).toBe(200);
  });

  it("a client's own tokens (client_credentials) end with its registration too: deleted and registered again, the old token is inactive", async () => {
    const clientId = `reborn-cc-${crypto.randomUUID()}`;
    const register = async (): Promise<TestClient> => {
      const metadata = { client_id: clientId, client_name: "Reborn service", grant_types: ["client_credentials"], scope: "reports:read" };
      const response = await SELF.fetch(`${ISSUER}/admin/clients`, { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(metadata) });
      expect(response.status).toBe(201);
      const { client_secret } = await response.json<{ client_secret: string }>();
      return { client: (await getClient(env.DB, clientId))!, clientId, secret: client_secret };
    };
    const first = await register();
    const old = await (await postAs(first, "/token", { grant_type: "client_credentials" })).json<Tokens>();
    expect(await introspectAs(first, old.access_token)).toMatchObject({ active: true, client_id: clientId });
    expect((await SELF.fetch(`${ISSUER}/admin/clients/${clientId}`, { method: "DELETE", headers: ADMIN })).status).toBe(204);
    const again = await register();
    expect(await introspectAs(again, old.access_token)).toEqual({ active: false });
    const fresh = await (await postAs(again, "/token", { grant_type: "client_credentials" })).json<Tokens>();
    expect(await introspectAs(again, fresh.access_token)).toMatchObject({ active: true });
  });

  it("made-up refresh tokens at /token, /introspect and /revoke leave nothing stored (C15)", async () => {
    const rp = await makeClient();
    for (let i = 0; i < 3; i++) {
      const familyId = crypto.randomUUID().replace(/-/g, "");
      const forged = `${familyId}.${"A".repeat(43)}`;
      expect((await errorOf(await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: forged }))).error).toBe("invalid_grant");
      expect(await (await postAs(rp, "/introspect", { token: forged })).json()).toEqual({ active: false });
      expect((await postAs(rp, "/revoke", { token: forged })).status).toBe(200);
      // The object the forged id names answered "unknown" without creating a single table.
      const tables = await runInDurableObject(tokenFamilyFor(env, familyId)!, (_o, state) =>
        state.storage.sql.exec("SELECT name FROM sqlite_master").toArray(),
      );
      expect(tables).toEqual([]);
    }
  });

  it("answers bad input with the spec's errors, never a 5xx", async () => {
    const { rp } = await signedIn();
    for (const path of ["/introspect", "/revoke"]) {
      const json = await SELF.fetch(`${ISSUER}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: basic(rp.clientId, rp.secret!) },
        body: "{}",
      });
      expect(await errorOf(json)).toEqual({ status: 400, error: "invalid_request" });
      const twice = await SELF.fetch(`${ISSUER}${path}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(rp.clientId, rp.secret!) },
        body: "token=a&token=b",
      });
      expect(await errorOf(twice)).toEqual({ status: 400, error: "invalid_request" });
      const huge = await postAs(rp, path, { token: "x".repeat(20_000) });
      expect(await errorOf(huge)).toEqual({ status: 400, error: "invalid_request" });
      expect((await SELF.fetch(`${ISSUER}${path}`)).status).toBe(405);
    }
    const put = await SELF.fetch(`${ISSUER}/userinfo`, { method: "PUT" });
    expect(put.status).toBe(405);
    const badBody = await SELF.fetch(`${ISSUER}/userinfo`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "access_token=a&access_token=b",
    });
    expect(badBody.status).toBe(400);
    expect((await SELF.fetch(`${ISSUER}/userinfo`, { headers: { authorization: "Bearer" } })).status).toBe(401);
    expect((await SELF.fetch(`${ISSUER}/userinfo`, { headers: { authorization: "Bearer a b c" } })).status).toBe(401);
  });
});

describe("browser apps", () => {
  it("get CORS headers on success, on errors and on preflight, never with credentials", async () => {
    const { tokens } = await signedIn();
    const ok = await SELF.fetch(`${ISSUER}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}`, origin: "https://spa.example" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
    const failed = await post("/token", { grant_type: "authorization_code", code: "x" }, { origin: "https://spa.example" });
    expect(failed.status).toBe(401);
    expect(failed.headers.get("access-control-allow-origin")).toBe("*");
    expect(failed.headers.get("access-control-expose-headers")).toContain("WWW-Authenticate");
    for (const path of ["/token", "/userinfo", "/introspect", "/revoke"]) {
      const pre = await SELF.fetch(`${ISSUER}${path}`, {
        method: "OPTIONS",
        headers: { origin: "https://spa.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization" },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe("*");
      expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
      expect(pre.headers.get("access-control-allow-headers")).toContain("Authorization");
      expect(pre.headers.get("access-control-allow-credentials")).toBeNull();
    }
  });
});

describe("an unmodified oauth4webapi client", () => {
  const options = { [oauth.customFetch]: (url: string, init: RequestInit) => SELF.fetch(url, init), [oauth.allowInsecureRequests]: true };
  const as: oauth.AuthorizationServer = {
    issuer: ISSUER,
    token_endpoint: `${ISSUER}/token`,
    userinfo_endpoint: `${ISSUER}/userinfo`,
    introspection_endpoint: `${ISSUER}/introspect`,
    revocation_endpoint: `${ISSUER}/revoke`,
    jwks_uri: `${ISSUER}/jwks.json`,
  };

  it("redeems a code, validates the ID token, calls userinfo, refreshes, introspects and revokes (client_secret_basic)", async () => {
    const rp = await makeClient();
    const user = await makeUser(PROFILE);
    const code = await makeCode(rp.clientId, user.id);
    const client: oauth.Client = { client_id: rp.clientId };
    const auth = oauth.ClientSecretBasic(rp.secret!);
    const callback = oauth.validateAuthResponse(as, client, new URL(`${REDIRECT_URI}?code=${code.code}&iss=${encodeURIComponent(ISSUER)}`), oauth.expectNoState);
    const tokenResponse = await oauth.authorizationCodeGrantRequest(as, client, auth, callback, REDIRECT_URI, code.verifier, options);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenResponse, { expectedNonce: code.grant.nonce!, requireIdToken: true });
    const idClaims = oauth.getValidatedIdTokenClaims(tokens)!;
    expect(idClaims.sub).toBe(user.id);
    expect(idClaims.auth_time).toBe(code.grant.authTime);

    const info = await oauth.processUserInfoResponse(as, client, user.id, await oauth.userInfoRequest(as, client, tokens.access_token, options));
    expect(info).toMatchObject({ sub: user.id, email: user.email, name: PROFILE.name });

    const refreshed = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, options));
    expect(oauth.getValidatedIdTokenClaims(refreshed)!.auth_time).toBe(code.grant.authTime);

    const introspection = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, refreshed.access_token, options));
    expect(introspection).toMatchObject({ active: true, sub: user.id, client_id: rp.clientId });

    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, refreshed.refresh_token!, options));
    const after = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, refreshed.access_token, options));
    expect(after.active).toBe(false);
    await expect(oauth.processUserInfoResponse(as, client, user.id, await oauth.userInfoRequest(as, client, refreshed.access_token, options))).rejects.toThrow();
  });

  it("authenticates with private_key_jwt and client_secret_post, and gets client_credentials tokens", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), alg: "ES256", kid: "k1" };
    const jwtClient = await makeClient({ token_endpoint_auth_method: "private_key_jwt", grant_types: ["client_credentials"], scope: "reports:read", jwks: { keys: [jwk as unknown as Record<string, string>] } });
    const ccResponse = await oauth.clientCredentialsGrantRequest(as, { client_id: jwtClient.clientId }, oauth.PrivateKeyJwt({ key: privateKey, kid: "k1" }), { scope: "reports:read" }, options);
    const cc = await oauth.processClientCredentialsResponse(as, { client_id: jwtClient.clientId }, ccResponse);
    expect(cc.scope).toBe("reports:read");

    const postClient = await makeClient({ token_endpoint_auth_method: "client_secret_post" });
    const user = await makeUser();
    const code = await makeCode(postClient.clientId, user.id);
    const client: oauth.Client = { client_id: postClient.clientId };
    const callback = oauth.validateAuthResponse(as, client, new URL(`${REDIRECT_URI}?code=${code.code}`), oauth.expectNoState);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretPost(postClient.secret!), callback, REDIRECT_URI, code.verifier, options);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: code.grant.nonce! });
    expect(tokens.token_type).toBe("bearer");

    // A wrong secret surfaces as the library's challenge error carrying invalid_client.
    const wrong = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic("wrong"), callback, REDIRECT_URI, code.verifier, options);
    const error = await oauth.processAuthorizationCodeResponse(as, client, wrong).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(wrong.status).toBe(401);
  });
});

describe("ending a user's grants at once (C22)", () => {
  const admin = (path: string) => SELF.fetch(`${ISSUER}${path}`, { method: "POST", headers: { authorization: "Bearer test-admin-token-0123456789abcdefghij" } });
  const introspect = (c: TestClient, token: string) => postAs(c, "/introspect", { token });

  it("the admin's revoke-all: refresh fails, access tokens are inactive at /introspect and 401 at /userinfo, an earlier code is refused; new grants work", async () => {
    const rp = await makeClient();
    const other = await makeClient();
    const user = await makeUser();
    const first = await redeem(rp, await makeCode(rp.clientId, user.id));
    const second = await redeem(other, await makeCode(other.clientId, user.id));
    const pendingCode = await makeCode(rp.clientId, user.id, { issuedAt: Date.now() });
    expect(((await (await introspect(rp, first.access_token)).json()) as { active: boolean }).active).toBe(true);

    const revoked = await admin(`/admin/users/${user.id}/sessions/revoke-all`);
    expect(revoked.status).toBe(200);

    for (const [c, tokens] of [[rp, first], [other, second]] as const) {
      expect(await (await introspect(c, tokens.access_token)).json()).toEqual({ active: false });
      expect(await (await introspect(c, tokens.refresh_token!)).json()).toEqual({ active: false });
      expect((await userinfoWith(tokens.access_token)).status).toBe(401);
      expect(await errorOf(await postAs(c, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! }))).toEqual({ status: 400, error: "invalid_grant" });
    }
    expect(await errorOf(await postAs(rp, "/token", { grant_type: "authorization_code", code: pendingCode.code, redirect_uri: REDIRECT_URI, code_verifier: pendingCode.verifier }))).toEqual({ status: 400, error: "invalid_grant" });

    // A grant made after the revocation is not touched by it.
    const after = await redeem(rp, await makeCode(rp.clientId, user.id, { issuedAt: Date.now() + 1 }));
    expect((await userinfoWith(after.access_token)).status).toBe(200);
    expect((await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: after.refresh_token! })).status).toBe(200);

    const { results } = await env.DB.prepare("SELECT type FROM audit_log WHERE subject = ? AND type = 'admin.user.grants_ended'").bind(user.id).all();
    expect(results).toHaveLength(1);
  });

  it("for a user id that is not in D1 nothing is written, and the answer is the same", async () => {
    const response = await admin(`/admin/users/not-a-real-user-0123/sessions/revoke-all`);
    expect(response.status).toBe(200);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM grant_revocations WHERE user_id = 'not-a-real-user-0123'").first("n")).toBe(0);
  });
});
