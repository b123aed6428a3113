import { SELF, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import { randomToken } from "../src/lib/crypto";
import { challengeStoreFor, userSessionsFor } from "../src/objects/locate";
import { formatSessionCookie, newSessionId } from "../src/objects/sessions";
import { ISSUER, REDIRECT_URI, basic, errorOf, makeClient, makeUser, post, postAs, type TestClient } from "./helpers/back-channel";

/**
 * C8: the one-time session token. A signed-in browser obtains it from the OP (a top-level GET that answers to the
 * client's registered redirect URI, or a credentialed CORS POST from the origin of one); the client's backend
 * redeems it once, with client authentication, and learns sub, sid, auth_time and amr.
 */

const ORIGIN = new URL(REDIRECT_URI).origin;
const FORM = { "content-type": "application/x-www-form-urlencoded" };

afterEach(() => {
  vi.useRealTimers();
});

interface Signed {
  userId: string;
  sid: string;
  secret: string;
  cookie: string;
  authTime: number;
}

async function signIn(): Promise<Signed> {
  const user = await makeUser();
  const sid = newSessionId();
  const authTime = Math.floor(Date.now() / 1000) - 30;
  const result = await userSessionsFor(env, user.id)!.createSession({ sid, userId: user.id, authTime, amr: ["email", "mfa"], acr: null });
  if (!result.created) throw new Error("no session");
  return { userId: user.id, sid, secret: result.secret, authTime, cookie: `oidc_session=${formatSessionCookie(user.id, sid, result.secret)}` };
}

function page(params: Record<string, string>, cookie?: string): Promise<Response> {
  return SELF.fetch(`${ISSUER}/session-token?${new URLSearchParams(params)}`, { redirect: "manual", headers: cookie ? { cookie } : {} });
}

/** The token from a page answer, checking the rest of the redirect. */
async function tokenByPage(c: TestClient, s: Signed, state = "st-1"): Promise<string> {
  const response = await page({ client_id: c.clientId, redirect_uri: REDIRECT_URI, state }, s.cookie);
  expect(response.status).toBe(303);
  const location = new URL(response.headers.get("location")!);
  expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
  expect(location.searchParams.get("state")).toBe(state);
  expect(location.searchParams.get("iss")).toBe(ISSUER);
  return location.searchParams.get("session_token")!;
}

function fetchToken(clientId: string, headers: Record<string, string>): Promise<Response> {
  return SELF.fetch(`${ISSUER}/session-token`, { method: "POST", headers: { ...FORM, ...headers }, body: new URLSearchParams({ client_id: clientId }).toString() });
}

function redeemAs(c: TestClient, token: string): Promise<Response> {
  return postAs(c, "/session-token/redeem", { session_token: token });
}

/** Every value held by the challenge shards (live and tombstones): nothing may be added by a refused request. */
async function challengeRows(): Promise<number> {
  const shards = Array.from({ length: loadConfig(env).shardCount }, (_, i) => env.CHALLENGES.get(env.CHALLENGES.idFromName(`challenges:${i}`)));
  return (await Promise.all(shards.map((s) => s.size()))).reduce((a, b) => a + b, 0);
}

describe("obtaining a session token", () => {
  it("a signed-in browser's visit to the OP goes back to the registered redirect URI with a token, state and iss; the backend learns the session once", async () => {
    const c = await makeClient();
    const s = await signIn();
    const token = await tokenByPage(c, s);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{20,}$/);

    const redeemed = await redeemAs(c, token);
    expect(redeemed.status).toBe(200);
    expect(redeemed.headers.get("cache-control")).toBe("no-store");
    expect(await redeemed.json()).toEqual({ iss: ISSUER, client_id: c.clientId, sub: s.userId, sid: s.sid, auth_time: s.authTime, amr: ["email", "mfa"] });
    expect(await errorOf(await redeemAs(c, token))).toEqual({ status: 400, error: "invalid_grant" });
    // The client is now one the session signed in to: it will be told when the session ends (C21).
    await expect.poll(async () => (await userSessionsFor(env, s.userId)!.getSession(s.sid, s.secret))?.clients).toEqual([c.clientId]);
  });

  it("without a session: login_required at the redirect URI, and nothing stored; a bad client or redirect URI is a page, never a redirect", async () => {
    const c = await makeClient();
    const before = await challengeRows();
    const none = await page({ client_id: c.clientId, redirect_uri: REDIRECT_URI, state: "x" });
    expect(none.status).toBe(303);
    const location = new URL(none.headers.get("location")!);
    expect(Object.fromEntries(location.searchParams)).toEqual({ error: "login_required", state: "x", iss: ISSUER });

    const s = await signIn();
    for (const params of <Record<string, string>[]>[
      { client_id: c.clientId, redirect_uri: "https://evil.example/cb" },
      { client_id: c.clientId, redirect_uri: `${REDIRECT_URI}/` },
      { client_id: "no-such-client", redirect_uri: REDIRECT_URI },
      { client_id: c.clientId },
      { redirect_uri: REDIRECT_URI },
    ]) {
      const response = await page(params, s.cookie);
      expect(response.status, JSON.stringify(params)).toBe(400);
      expect(response.headers.get("location")).toBeNull();
      expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    }
    const spa = await makeClient({ token_endpoint_auth_method: "none" });
    const publicAnswer = await page({ client_id: spa.clientId, redirect_uri: REDIRECT_URI }, s.cookie);
    expect(new URL(publicAnswer.headers.get("location")!).searchParams.get("error")).toBe("unauthorized_client");
    expect(await challengeRows()).toBe(before);
  });

  it("a credentialed CORS request from a registered origin gets JSON it may read; any other origin gets nothing and changes nothing", async () => {
    const c = await makeClient({ redirect_uris: [REDIRECT_URI, "http://localhost:3000/cb", "com.example.app:/cb"] });
    const s = await signIn();
    const ok = await fetchToken(c.clientId, { origin: ORIGIN, cookie: s.cookie });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(ok.headers.get("access-control-allow-credentials")).toBe("true");
    expect(ok.headers.get("vary")).toBe("Origin");
    const body = (await ok.json()) as { session_token: string; expires_in: number };
    expect(body.expires_in).toBe(loadConfig(env).sessionTokenTtl);
    expect((await redeemAs(c, body.session_token)).status).toBe(200);
    // A loopback redirect URI's origin counts too; a private-use scheme has no web origin.
    expect((await fetchToken(c.clientId, { origin: "http://localhost:3000", cookie: s.cookie })).status).toBe(200);

    const before = await challengeRows();
    for (const origin of ["https://evil.example", "https://rp.example.evil.example", "http://rp.example", "https://rp.example:8443", "null", ISSUER]) {
      const refused = await fetchToken(c.clientId, { origin, cookie: s.cookie });
      expect(refused.status, origin).toBe(403);
      expect(refused.headers.get("access-control-allow-origin")).toBeNull();
      expect(((await refused.json()) as { error: string }).error).toBe("access_denied");
    }
    expect((await fetchToken(c.clientId, { cookie: s.cookie })).status).toBe(403);
    expect((await fetchToken("no-such-client", { origin: ORIGIN, cookie: s.cookie })).status).toBe(400);
    // From the right origin without a session: an error the app can read.
    const signedOut = await fetchToken(c.clientId, { origin: ORIGIN });
    expect(signedOut.status).toBe(400);
    expect(signedOut.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(((await signedOut.json()) as { error: string }).error).toBe("login_required");
    expect(await challengeRows()).toBe(before);

    const preflight = await SELF.fetch(`${ISSUER}/session-token`, { method: "OPTIONS", headers: { origin: ORIGIN, "access-control-request-method": "POST" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
    expect(preflight.headers.get("access-control-allow-methods")).toBe("POST");
    const junk = await SELF.fetch(`${ISSUER}/session-token`, { method: "OPTIONS", headers: { origin: "javascript:alert(1)" } });
    expect(junk.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("redeeming a session token (C8)", () => {
  it("50 concurrent redemptions of one token: exactly one success, 49 invalid_grant", async () => {
    const c = await makeClient();
    const s = await signIn();
    const token = await tokenByPage(c, s);
    const responses = await Promise.all(Array.from({ length: 50 }, () => redeemAs(c, token)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((x) => x === 200)).toHaveLength(1);
    expect(statuses.filter((x) => x === 400)).toHaveLength(49);
    const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ error?: string; sub?: string }>));
    expect(bodies.filter((b) => b.error === "invalid_grant")).toHaveLength(49);
    expect(bodies.find((b) => b.sub !== undefined)).toMatchObject({ sub: s.userId, sid: s.sid });
  });

  it("is bound to the client that asked: another client is refused and uses nothing up", async () => {
    const [c, other] = await Promise.all([makeClient(), makeClient()]);
    const s = await signIn();
    const token = await tokenByPage(c, s);
    const refused = await redeemAs(other, token);
    expect(await refused.json()).toEqual({ error: "invalid_grant", error_description: "the session token was issued to another client" });
    expect((await redeemAs(c, token)).status).toBe(200);
  });

  it("expires after SESSION_TOKEN_TTL", async () => {
    const c = await makeClient();
    const s = await signIn();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now());
    const token = await tokenByPage(c, s);
    vi.setSystemTime(Date.now() + loadConfig(env).sessionTokenTtl * 1000 + 1);
    expect(await (await redeemAs(c, token)).json()).toMatchObject({ error: "invalid_grant" });
  });

  it("is refused once the session has ended or the user is disabled", async () => {
    const c = await makeClient();
    const s = await signIn();
    const ended = await tokenByPage(c, s);
    await userSessionsFor(env, s.userId)!.revokeSession(s.sid, "logout");
    expect(await (await redeemAs(c, ended)).json()).toEqual({ error: "invalid_grant", error_description: "the session has ended" });

    const t = await signIn();
    const disabled = await tokenByPage(c, t);
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(t.userId).run();
    expect(await (await redeemAs(c, disabled)).json()).toMatchObject({ error: "invalid_grant" });
  });

  it("needs client authentication from a confidential client; anything else is no token", async () => {
    const c = await makeClient();
    const spa = await makeClient({ token_endpoint_auth_method: "none" });
    const s = await signIn();
    const token = await tokenByPage(c, s);
    expect((await post("/session-token/redeem", { session_token: token })).status).toBe(401);
    expect((await post("/session-token/redeem", { session_token: token }, { authorization: basic(c.clientId, "wrong") })).status).toBe(401);
    expect((await post("/session-token/redeem", { session_token: token, client_id: spa.clientId })).status).toBe(401);
    for (const junk of ["garbage", "0.x", `${token}x`, token.split(".")[0]!, "999999.abc"]) {
      expect(await errorOf(await redeemAs(c, junk))).toEqual({ status: 400, error: "invalid_grant" });
    }
    // Another kind of challenge is not a session token, and is not used up by being presented as one.
    const link = `${token.split(".")[0]}.${randomToken(24)}`;
    await challengeStoreFor(env, link)!.put(link, { kind: "magic_link", email: "a@example.com" }, 60);
    expect(await errorOf(await redeemAs(c, link))).toEqual({ status: 400, error: "invalid_grant" });
    expect((await challengeStoreFor(env, link)!.peek(link)).status).toBe("active");
    // The real token was never touched by any of that.
    expect((await redeemAs(c, token)).status).toBe(200);
    expect((await SELF.fetch(`${ISSUER}/session-token/redeem`)).status).toBe(405);
    expect((await SELF.fetch(`${ISSUER}/session-token`, { method: "PUT" })).status).toBe(405);
  });
});
