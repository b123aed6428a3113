import { SELF, env, listDurableObjectIds } from "cloudflare:test";
import { SignJWT, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { ensureUserForVerifiedEmail } from "../src/db/users";
import { userSessionsFor } from "../src/objects/locate";
import { formatSessionCookie, newSessionId } from "../src/objects/sessions";
import { randomToken } from "../src/lib/crypto";
import { mintIdToken } from "../src/oauth/tokens";
import type { Env } from "../src/env";
import { logout, logoutConfirm } from "../src/routes/logout";
import { currentSigningKey } from "../src/objects/key-cache";
import { authorizeParams, authorizeUrl, makeClient } from "./helpers/front-channel";

const BASE = "http://localhost";
const ADMIN_AUTH = { authorization: "Bearer test-admin-token-0123456789abcdefghij", "content-type": "application/json" };
const POST_LOGOUT = "https://rp.example/logged-out";
const FORM = { "content-type": "application/x-www-form-urlencoded" };

let clientId: string;
let otherClientId: string;

async function registerClient(postLogout: string[]): Promise<string> {
  const response = await SELF.fetch(`${BASE}/admin/clients`, {
    method: "POST",
    headers: ADMIN_AUTH,
    body: JSON.stringify({ client_name: "RP <One>", redirect_uris: ["https://rp.example/cb"], post_logout_redirect_uris: postLogout }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { client_id: string }).client_id;
}

beforeAll(async () => {
  clientId = await registerClient([POST_LOGOUT, "https://rp.example/bye?from=op"]);
  otherClientId = await registerClient(["https://other.example/bye"]);
});

interface Signed {
  userId: string;
  sid: string;
  secret: string;
  cookie: string;
}

/** A signed-in browser: a user in D1 and a session in the user's session object, as the sign-in flow makes them. */
async function signIn(): Promise<Signed> {
  const user = await ensureUserForVerifiedEmail(env.DB, `${randomToken(6)}@example.com`, `user-${randomToken(12)}`);
  const sid = newSessionId();
  const result = await userSessionsFor(env, user.id)!.createSession({ sid, userId: user.id, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null });
  if (!result.created) throw new Error("no session");
  return { userId: user.id, sid, secret: result.secret, cookie: `oidc_session=${formatSessionCookie(user.id, sid, result.secret)}` };
}

async function sessionAlive(s: Signed): Promise<boolean> {
  return (await userSessionsFor(env, s.userId)!.getSession(s.sid, s.secret)) !== null;
}

async function idTokenFor(sub: string, aud = clientId, sid: string | null = null): Promise<string> {
  return mintIdToken(await currentSigningKey(env), {
    issuer: BASE,
    clientId: aud,
    sub,
    authTime: Math.floor(Date.now() / 1000),
    nonce: null,
    sid,
    amr: ["email"],
    acr: null,
    accessToken: null,
    ttlSeconds: 600,
  });
}

function logoutGet(params: Record<string, string>, cookie?: string): Promise<Response> {
  return SELF.fetch(`${BASE}/logout?${new URLSearchParams(params)}`, { redirect: "manual", headers: cookie ? { cookie } : {} });
}

function expectSessionCookieCleared(response: Response): void {
  expect(response.headers.get("set-cookie")).toMatch(/^oidc_session=; .*Max-Age=0/);
}

async function expectErrorPage(response: Response, status = 400): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get("location")).toBeNull();
  expect(response.headers.get("content-type")).toMatch(/^text\/html/);
  return response.text();
}

/** The confirmation form: its CSRF token (from the page and the cookie) and hidden fields. */
async function confirmationForm(response: Response, cookie: string) {
  expect(response.status).toBe(200);
  const html = await response.text();
  expect(html).toContain('action="/logout/confirm"');
  const token = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
  expect(token).toBeDefined();
  const setCookie = response.headers.get("set-cookie");
  const csrfCookie = setCookie ? setCookie.split(";")[0]! : null;
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? null;
  return { html, token: token!, cookies: [cookie, csrfCookie].filter(Boolean).join("; "), field };
}

function confirm(body: Record<string, string>, cookies: string): Promise<Response> {
  return SELF.fetch(`${BASE}/logout/confirm`, { method: "POST", redirect: "manual", headers: { ...FORM, cookie: cookies }, body: new URLSearchParams(body).toString() });
}

describe("RP-initiated logout with an ID token hint", () => {
  it("ends the session and redirects to the registered post_logout_redirect_uri with state", async () => {
    const s = await signIn();
    const response = await logoutGet({ id_token_hint: await idTokenFor(s.userId, clientId, s.sid), post_logout_redirect_uri: POST_LOGOUT, state: "st&1" }, s.cookie);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe(`${POST_LOGOUT}?state=st%261`);
    expectSessionCookieCleared(response);
    expect(await sessionAlive(s)).toBe(false);
  });

  it("works as a form POST too, keeps the registered query, and accepts a matching client_id", async () => {
    const s = await signIn();
    const body = new URLSearchParams({ id_token_hint: await idTokenFor(s.userId), client_id: clientId, post_logout_redirect_uri: "https://rp.example/bye?from=op", state: "xyz" });
    const response = await SELF.fetch(`${BASE}/logout`, { method: "POST", redirect: "manual", headers: { ...FORM, cookie: s.cookie }, body: body.toString() });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("https://rp.example/bye?from=op&state=xyz");
    expect(await sessionAlive(s)).toBe(false);
  });

  it("without a post_logout_redirect_uri shows the signed-out page", async () => {
    const s = await signIn();
    const response = await logoutGet({ id_token_hint: await idTokenFor(s.userId) }, s.cookie);
    expect(response.status).toBe(200);
    expect(response.headers.get("location")).toBeNull();
    expect(await response.text()).toContain("signed out");
    expectSessionCookieCleared(response);
    expect(await sessionAlive(s)).toBe(false);
  });

  it("with no session, redirects to the registered URI (nothing to end) and changes no cookie", async () => {
    const s = await signIn();
    const response = await logoutGet({ id_token_hint: await idTokenFor(s.userId), post_logout_redirect_uri: POST_LOGOUT });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe(POST_LOGOUT);
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(await sessionAlive(s)).toBe(true);
  });

  it("a cross-site form POST, which arrives without the SameSite=Lax cookie, changes no cookie: it goes on as a GET, where the hint ends the session", async () => {
    const s = await signIn();
    const hint = await idTokenFor(s.userId, clientId, s.sid);
    const body = new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: POST_LOGOUT, state: "x y" });
    const crossSite = await SELF.fetch(`${BASE}/logout`, { method: "POST", redirect: "manual", headers: { ...FORM, "sec-fetch-site": "cross-site" }, body: body.toString() });
    expect(crossSite.status).toBe(303);
    expect(crossSite.headers.get("set-cookie")).toBeNull();
    const location = new URL(crossSite.headers.get("location")!, BASE);
    expect(location.pathname).toBe("/logout");
    expect(Object.fromEntries(location.searchParams)).toEqual({ id_token_hint: hint, post_logout_redirect_uri: POST_LOGOUT, state: "x y" });
    expect(await sessionAlive(s)).toBe(true);
    // The browser follows with a top-level GET, which carries the cookie.
    const followed = await SELF.fetch(location, { redirect: "manual", headers: { cookie: s.cookie } });
    expect(followed.headers.get("location")).toBe(`${POST_LOGOUT}?state=x%20y`);
    expectSessionCookieCleared(followed);
    expect(await sessionAlive(s)).toBe(false);
  });

  it("never redirects to an unregistered URI: an error page, and the session is untouched", async () => {
    const s = await signIn();
    const hint = await idTokenFor(s.userId);
    for (const uri of ["https://evil.example/", "https://rp.example/logged-out/", "https://rp.example/logged-out?x=1", "https://other.example/bye", "javascript:alert(1)"]) {
      const html = await expectErrorPage(await logoutGet({ id_token_hint: hint, post_logout_redirect_uri: uri, state: "s" }, s.cookie));
      expect(html).toContain("not registered");
      expect(html).not.toContain("<script");
    }
    expect(await sessionAlive(s)).toBe(true);
  });

  it("refuses a client_id that is not the hint's audience, an unknown client_id, and an invalid hint", async () => {
    const s = await signIn();
    await expectErrorPage(await logoutGet({ id_token_hint: await idTokenFor(s.userId), client_id: otherClientId, post_logout_redirect_uri: "https://other.example/bye" }, s.cookie));
    await expectErrorPage(await logoutGet({ client_id: "no-such-client", post_logout_redirect_uri: POST_LOGOUT }, s.cookie));
    await expectErrorPage(await logoutGet({ id_token_hint: "not.a.jwt", post_logout_redirect_uri: POST_LOGOUT }, s.cookie));
    // Signed by a key that is not ours.
    const { privateKey } = await generateKeyPair("RS256");
    const forged = await new SignJWT({ sub: s.userId, aud: clientId }).setProtectedHeader({ alg: "RS256", kid: "forged", typ: "JWT" }).setIssuer(BASE).setIssuedAt().setExpirationTime("10m").sign(privateKey);
    await expectErrorPage(await logoutGet({ id_token_hint: forged, post_logout_redirect_uri: POST_LOGOUT }, s.cookie));
    expect(await sessionAlive(s)).toBe(true);
  });

  it("refuses a post_logout_redirect_uri when no client is identified", async () => {
    const s = await signIn();
    await expectErrorPage(await logoutGet({ post_logout_redirect_uri: POST_LOGOUT, state: "s" }, s.cookie));
    expect(await sessionAlive(s)).toBe(true);
  });

  it("asks for confirmation when the hint names another user than the one signed in", async () => {
    const s = await signIn();
    const other = await signIn();
    const response = await logoutGet({ id_token_hint: await idTokenFor(other.userId), post_logout_redirect_uri: POST_LOGOUT }, s.cookie);
    await confirmationForm(response, s.cookie);
    expect(await sessionAlive(s)).toBe(true);
  });
});

describe("RP-initiated logout without an ID token hint", () => {
  it("GET shows a confirmation page and ends nothing; the confirmed POST ends the session and redirects", async () => {
    const s = await signIn();
    const response = await logoutGet({ client_id: clientId, post_logout_redirect_uri: POST_LOGOUT, state: "abc" }, s.cookie);
    expect(response.headers.get("location")).toBeNull();
    const form = await confirmationForm(response, s.cookie);
    expect(form.html).toContain("RP &lt;One&gt;");
    expect(form.html).toContain('name="decision" value="yes"');
    expect(form.html).toContain('name="decision" value="no"');
    expect(await sessionAlive(s)).toBe(true);

    // Loading the page again still ends nothing.
    await (await logoutGet({ client_id: clientId }, s.cookie)).arrayBuffer();
    expect(await sessionAlive(s)).toBe(true);

    const confirmed = await confirm(
      { csrf_token: form.token, decision: "yes", client_id: form.field("client_id")!, post_logout_redirect_uri: form.field("post_logout_redirect_uri")!, state: form.field("state")! },
      form.cookies,
    );
    expect(confirmed.status).toBe(303);
    expect(confirmed.headers.get("location")).toBe(`${POST_LOGOUT}?state=abc`);
    expectSessionCookieCleared(confirmed);
    expect(await sessionAlive(s)).toBe(false);
  });

  it("a bare /logout asks too, and 'no' keeps the session", async () => {
    const s = await signIn();
    const form = await confirmationForm(await logoutGet({}, s.cookie), s.cookie);
    const declined = await confirm({ csrf_token: form.token, decision: "no" }, form.cookies);
    expect(declined.status).toBe(200);
    expect(declined.headers.get("location")).toBeNull();
    expect(await sessionAlive(s)).toBe(true);

    const accepted = await confirm({ csrf_token: form.token, decision: "yes" }, form.cookies);
    expect(accepted.status).toBe(200);
    expect(await accepted.text()).toContain("signed out");
    expect(await sessionAlive(s)).toBe(false);
  });

  it("a confirmation without a valid CSRF token is refused with 403 and ends nothing", async () => {
    const s = await signIn();
    const form = await confirmationForm(await logoutGet({ client_id: clientId, post_logout_redirect_uri: POST_LOGOUT }, s.cookie), s.cookie);
    // Wrong token, no token, token without its cookie (a cross-site form post).
    await expectErrorPage(await confirm({ csrf_token: randomToken(32), decision: "yes" }, form.cookies), 403);
    await expectErrorPage(await confirm({ decision: "yes" }, form.cookies), 403);
    await expectErrorPage(await confirm({ csrf_token: form.token, decision: "yes", client_id: clientId, post_logout_redirect_uri: POST_LOGOUT }, s.cookie), 403);
    expect(await sessionAlive(s)).toBe(true);
  });

  it("the confirmation re-checks the redirect: a tampered post_logout_redirect_uri is refused and ends nothing", async () => {
    const s = await signIn();
    const form = await confirmationForm(await logoutGet({ client_id: clientId, post_logout_redirect_uri: POST_LOGOUT }, s.cookie), s.cookie);
    await expectErrorPage(await confirm({ csrf_token: form.token, decision: "yes", client_id: clientId, post_logout_redirect_uri: "https://evil.example/" }, form.cookies));
    await expectErrorPage(await confirm({ csrf_token: form.token, decision: "yes", post_logout_redirect_uri: POST_LOGOUT }, form.cookies));
    expect(await sessionAlive(s)).toBe(true);
  });

  it("with no session at all, a registered redirect happens without asking", async () => {
    const response = await logoutGet({ client_id: clientId, post_logout_redirect_uri: POST_LOGOUT, state: "q" });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe(`${POST_LOGOUT}?state=q`);
    expect(response.headers.get("set-cookie")).toBeNull();
  });

  it("logout CSRF: a cross-site POST arrives without the cookie and signs nobody out; the GET it leads to asks first", async () => {
    const s = await signIn();
    const attack = new URLSearchParams({ client_id: clientId, post_logout_redirect_uri: POST_LOGOUT });
    const crossSite: Record<string, string>[] = [{ "sec-fetch-site": "cross-site" }, { origin: "https://evil.example" }];
    for (const headers of crossSite) {
      const response = await SELF.fetch(`${BASE}/logout`, { method: "POST", redirect: "manual", headers: { ...FORM, ...headers }, body: attack.toString() });
      expect(response.status).toBe(303);
      expect(response.headers.get("set-cookie")).toBeNull();
      expect(response.headers.get("location")).toBe(`/logout?${attack}`);
    }
    const asked = await SELF.fetch(`${BASE}/logout?${attack}`, { redirect: "manual", headers: { cookie: s.cookie } });
    await confirmationForm(asked, s.cookie);
    expect(asked.headers.get("set-cookie") ?? "").not.toContain("oidc_session");
    expect(await sessionAlive(s)).toBe(true);
  });

  it("a failure on our side is an HTML page too, never the back channel's JSON, and ends nothing", async () => {
    const s = await signIn();
    // D1 cannot be taken offline from inside the pool: a binding that fails like an unreachable database.
    const broken = { ...env, DB: { prepare: () => { throw new Error("D1 is down"); } } } as unknown as Env;
    const csrf = randomToken(32);
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const responses = [
      await logout(new Request(`${BASE}/logout?client_id=${encodeURIComponent(clientId)}`, { headers: { cookie: s.cookie } }), broken),
      await logoutConfirm(
        new Request(`${BASE}/logout/confirm`, {
          method: "POST",
          headers: { ...FORM, cookie: `${s.cookie}; oidc_csrf=${csrf}` },
          body: new URLSearchParams({ csrf_token: csrf, decision: "yes", client_id: clientId }).toString(),
        }),
        broken,
      ),
    ];
    logged.mockRestore();
    for (const response of responses) {
      const html = await expectErrorPage(response, 500);
      expect(html).not.toContain("D1 is down");
    }
    expect(await sessionAlive(s)).toBe(true);
  });

  it("hostile input gets a page, never a 5xx", async () => {
    const s = await signIn();
    const bad = [
      `${BASE}/logout?state=a&state=b`,
      `${BASE}/logout?id_token_hint=${"a".repeat(20_000)}`,
      `${BASE}/logout?post_logout_redirect_uri=%00`,
      `${BASE}/logout?client_id=${encodeURIComponent("<script>")}`,
    ];
    for (const url of bad) {
      const response = await SELF.fetch(url, { redirect: "manual", headers: { cookie: s.cookie } });
      expect(response.status, url).toBeGreaterThanOrEqual(400);
      expect(response.status, url).toBeLessThan(500);
      expect(response.headers.get("location")).toBeNull();
      expect(await response.text()).not.toContain("<script>");
    }
    const json = await SELF.fetch(`${BASE}/logout`, { method: "POST", redirect: "manual", headers: { "content-type": "application/json", cookie: s.cookie }, body: "{}" });
    await expectErrorPage(json);
    const badDecision = await confirm({ csrf_token: randomToken(32), decision: "maybe" }, s.cookie);
    expect(badDecision.status).toBe(400);
    expect(await sessionAlive(s)).toBe(true);
  });
});

describe("forged session cookies", () => {
  it("a well-formed cookie naming a made-up user reaches no session object and creates none (C15)", async () => {
    const before = (await listDurableObjectIds(env.SESSIONS)).length;
    for (let i = 0; i < 5; i++) {
      const cookie = formatSessionCookie(randomToken(12), newSessionId(), randomToken(32));
      const response = await SELF.fetch("http://localhost/logout", { headers: { cookie: `oidc_session=${cookie}` } });
      expect(response.status).toBeLessThan(500);
    }
    expect((await listDurableObjectIds(env.SESSIONS)).length).toBe(before);
  });

  it("at /authorize too, where the cookie's user is read in the batch with the client (C15)", async () => {
    const client = await makeClient();
    const before = (await listDurableObjectIds(env.SESSIONS)).length;
    for (let i = 0; i < 5; i++) {
      const cookie = formatSessionCookie(randomToken(12), newSessionId(), randomToken(32));
      const { params } = await authorizeParams(client.client_id);
      const response = await SELF.fetch(`http://localhost${authorizeUrl(params)}`, { redirect: "manual", headers: { cookie: `oidc_session=${cookie}` } });
      expect(response.status).toBe(303);
      expect(response.headers.get("location")).toMatch(/^\/login\?/);
    }
    expect((await listDurableObjectIds(env.SESSIONS)).length).toBe(before);
  });
});
