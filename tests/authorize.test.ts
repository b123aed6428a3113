import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { authCodeStoreFor, challengeStoreFor, userSessionsFor } from "../src/objects/locate";
import { formatSessionCookie, newSessionId, parseSessionCookie } from "../src/objects/sessions";
import type { Env } from "../src/env";
import { authorize } from "../src/routes/authorize";
import { submitConsent } from "../src/routes/consent";
import { finishEmailLogin } from "../src/routes/login";
import { afterEach, describe, expect, it, vi } from "vitest";
import { patchClient } from "./helpers/clients";
import { ensureUserForVerifiedEmail, findUserByEmail } from "../src/db/users";
import { randomToken } from "../src/lib/crypto";
import { loadConfig } from "../src/config";
import { mintIdToken } from "../src/oauth/tokens";
import { FORM_POST_SCRIPT_HASH } from "../src/ui/form-post";
import { currentSigningKey } from "../src/objects/key-cache";
import {
  Browser,
  ORIGIN,
  REDIRECT_URI,
  authorizeParams,
  authorizeUrl,
  decide,
  followLocal,
  formFields,
  makeClient,
  redeem,
  requestLink,
  responseParams,
  signIn,
  uniqueAddress,
  uniqueEmail,
} from "./helpers/front-channel";

afterEach(() => vi.useRealTimers());

/** Every single-use value (interactions, links) held across all challenge shards: "no state change" is this not moving. */
async function challengesHeld(): Promise<number> {
  let total = 0;
  for (let shard = 0; shard < loadConfig(env).shardCount; shard++) {
    total += await env.CHALLENGES.get(env.CHALLENGES.idFromName(`challenges:${shard}`)).size();
  }
  return total;
}


/** Signs a browser in and consents once for the client, returning the signed-in user's id. */
async function signedInBrowser(clientId: string, email = uniqueEmail()): Promise<{ browser: Browser; userId: string; email: string }> {
  const browser = new Browser();
  const { params } = await authorizeParams(clientId);
  const start = await browser.get(authorizeUrl(params));
  const afterLink = await signIn(browser, start.headers.get("location")!, email);
  const consent = await followLocal(browser, afterLink);
  const done = await decide(browser, consent, "allow");
  expect(responseParams(done).params.get("code")).toBeTruthy();
  return { browser, userId: (await findUserByEmail(env.DB, email))!.id, email };
}

describe("authorization code flow through the email link and consent", () => {
  it("ends in a code that is redeemable with PKCE, with state, iss and the request's parameters", async () => {
    const client = await makeClient({ scope: "openid email" });
    const browser = new Browser();
    const claims = JSON.stringify({ userinfo: { email: { essential: true } } });
    const { verifier, params } = await authorizeParams(client.client_id, { scope: "openid email profile bogus", claims, acr_values: "urn:x:gold", ui_locales: "fr", foo: "ignored" });

    const start = await browser.get(authorizeUrl(params));
    expect(start.status).toBe(303);
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);

    const email = uniqueEmail();
    const afterLink = await signIn(browser, start.headers.get("location")!, email);
    expect(afterLink.status).toBe(303);
    expect(afterLink.headers.get("location")).toMatch(/^\/authorize\/resume\?interaction=/);
    expect(afterLink.headers.get("set-cookie")).toMatch(/^oidc_session=/);

    const consent = await followLocal(browser, afterLink);
    const html = await consent.clone().text();
    expect(html).toContain("Front Channel Test App");
    expect(html).toContain("(email)");
    expect(html).not.toContain("(profile)"); // not registered for the client: dropped
    const done = await decide(browser, consent, "allow");

    const { base, params: answer } = responseParams(done);
    expect(base).toBe(REDIRECT_URI);
    expect(answer.get("state")).toBe(params.state);
    expect(answer.get("iss")).toBe(ORIGIN);
    const grant = await redeem(answer.get("code")!, client.client_id, verifier);
    const user = await findUserByEmail(env.DB, email);
    expect(grant).toMatchObject({
      clientId: client.client_id,
      redirectUri: REDIRECT_URI,
      sub: user!.id,
      scope: "openid email",
      nonce: params.nonce,
      amr: ["email"],
      acr: null,
      claims,
    });
    expect(grant.sid).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(Math.abs(grant.authTime - Date.now() / 1000)).toBeLessThan(60);
  });

  it("POST /authorize works like GET", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id);
    const response = await new Browser().post("/authorize", params);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toMatch(/^\/login\?interaction=/);
  });
});

describe("errors per OIDC Core §3.1.2.6", () => {
  it("an unknown or missing client, or a missing or unregistered redirect_uri, gets a 400 page — never a redirect", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id);
    const before = await challengesHeld();
    const cases: Record<string, string>[] = [
      { ...params, client_id: "no-such-client" },
      { ...params, client_id: "<script>alert(1)</script>" },
      Object.fromEntries(Object.entries(params).filter(([k]) => k !== "client_id")),
      Object.fromEntries(Object.entries(params).filter(([k]) => k !== "redirect_uri")),
      { ...params, redirect_uri: "https://attacker.example/callback" },
      { ...params, redirect_uri: `${REDIRECT_URI}/` },
      { ...params, redirect_uri: `${REDIRECT_URI}?x=1` },
      { ...params, redirect_uri: "javascript:alert(document.cookie)" },
      { ...params, redirect_uri: REDIRECT_URI.toUpperCase() },
    ];
    for (const query of cases) {
      const response = await new Browser().get(authorizeUrl(query));
      expect(response.status, JSON.stringify(query)).toBe(400);
      expect(response.headers.get("location")).toBeNull();
      expect(response.headers.get("content-type")).toContain("text/html");
      const html = await response.text();
      expect(html).not.toContain("<script>alert");
      expect(html).not.toContain("attacker.example");
    }
    expect(await challengesHeld()).toBe(before);
  });

  it("with a valid client and redirect URI, other errors go to the redirect URI with error, state and iss", async () => {
    const publicClient = await makeClient({ token_endpoint_auth_method: "none" });
    const { params } = await authorizeParams(publicClient.client_id);
    const without = (name: string) => Object.fromEntries(Object.entries(params).filter(([k]) => k !== name));
    const cases: Array<[Record<string, string>, string]> = [
      [without("response_type"), "invalid_request"],
      [{ ...params, response_type: "token" }, "unsupported_response_type"],
      [{ ...params, response_type: "code id_token" }, "unsupported_response_type"],
      [{ ...params, code_challenge_method: "plain" }, "invalid_request"],
      [without("code_challenge_method"), "invalid_request"], // absent method means plain (RFC 7636 §4.3)
      [{ ...params, code_challenge: "short" }, "invalid_request"],
      [without("code_challenge"), "invalid_request"], // a public client must use PKCE
      [{ ...params, prompt: "none login" }, "invalid_request"],
      [{ ...params, prompt: "bogus" }, "invalid_request"],
      [{ ...params, max_age: "-1" }, "invalid_request"],
      [{ ...params, max_age: "soon" }, "invalid_request"],
      // An unsigned request object naming no redirect URI: refused at the one the parameters name (RFC 9101, OIDC Core §3.1.2.6).
      [{ ...params, request: "eyJhbGciOiJub25lIn0.e30." }, "invalid_request_object"],
      // Only /par's request_uri values are taken; nothing is fetched.
      [{ ...params, request_uri: "https://rp.example/request.jwt" }, "request_uri_not_supported"],
      [{ ...params, request: "eyJhbGciOiJub25lIn0.e30.", request_uri: "urn:ietf:params:oauth:request_uri:abc" }, "invalid_request"],
      [without("scope"), "invalid_scope"],
      [{ ...params, scope: "bogus other" }, "invalid_scope"],
      [{ ...params, scope: 'openid "quoted"' }, "invalid_scope"],
      [{ ...params, claims: "{not json" }, "invalid_request"],
      [{ ...params, claims: '{"userinfo": []}' }, "invalid_request"],
      [{ ...params, id_token_hint: "not.a.jwt" }, "invalid_request"],
      [{ ...params, nonce: "n".repeat(600) }, "invalid_request"],
    ];
    for (const [query, error] of cases) {
      const response = await new Browser().get(authorizeUrl(query));
      const { base, params: answer } = responseParams(response);
      expect(base, JSON.stringify(query)).toBe(REDIRECT_URI);
      expect(answer.get("error"), JSON.stringify(query)).toBe(error);
      expect(answer.get("state")).toBe(params.state);
      expect(answer.get("iss")).toBe(ORIGIN);
      expect(answer.get("code")).toBeNull();
      expect(answer.get("error_description") ?? "").toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]*$/);
    }
  });

  it("a confidential client may omit PKCE; a client not registered for the code flow is unauthorized_client", async () => {
    const confidential = await makeClient();
    const { params } = await authorizeParams(confidential.client_id);
    const { code_challenge: _c, code_challenge_method: _m, ...noPkce } = params;
    const ok = await new Browser().get(authorizeUrl(noPkce));
    expect(ok.headers.get("location")).toMatch(/^\/login\?interaction=/);

    const m2m = await makeClient({ grant_types: ["client_credentials"] });
    const refused = await new Browser().get(authorizeUrl({ ...params, client_id: m2m.client_id }));
    expect(responseParams(refused).params.get("error")).toBe("unauthorized_client");
  });

  it("response_mode=fragment puts the response in the fragment; an unknown response_mode is reported in the query", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id, { response_mode: "fragment", prompt: "none" });
    const response = await new Browser().get(authorizeUrl(params));
    const location = new URL(response.headers.get("location")!);
    expect(location.search).toBe("");
    const answer = new URLSearchParams(location.hash.slice(1));
    expect(answer.get("error")).toBe("login_required");
    expect(answer.get("state")).toBe(params.state);
    expect(answer.get("iss")).toBe(ORIGIN);

    const bad = await new Browser().get(authorizeUrl({ ...params, response_mode: "web_message" }));
    const badLocation = new URL(bad.headers.get("location")!);
    expect(badLocation.hash).toBe("");
    expect(badLocation.searchParams.get("error")).toBe("invalid_request");
  });

  it("response_mode=form_post answers with a self-submitting form allowed by its CSP hash, values escaped", async () => {
    const client = await makeClient();
    const state = `"><script>alert(1)</script>&`;
    const { params } = await authorizeParams(client.client_id, { response_mode: "form_post", prompt: "none", state });
    const response = await new Browser().get(authorizeUrl(params));
    expect(response.status).toBe(200);
    expect(response.headers.get("location")).toBeNull();
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain(`script-src '${FORM_POST_SCRIPT_HASH}'`);
    const html = await response.text();
    expect(html).toContain(`<form method="post" action="${REDIRECT_URI}">`);
    expect(html).not.toContain("<script>alert(1)");
    expect(formFields(html)).toEqual({ error: "login_required", error_description: expect.any(String), state, iss: ORIGIN });
    // The hash in the CSP is the hash of the page's one script.
    const script = /<script>([^<]*)<\/script>/.exec(html)![1]!;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(script)));
    expect(`sha256-${btoa(String.fromCharCode(...digest))}`).toBe(FORM_POST_SCRIPT_HASH);
  });

  it("a registered redirect URI with a query keeps it; state with CR/LF is encoded, never a header", async () => {
    const withQuery = `${REDIRECT_URI}?tenant=a%20b`;
    const client = await makeClient({ redirect_uris: [withQuery] });
    const state = "x\r\nSet-Cookie: evil=1";
    const { params } = await authorizeParams(client.client_id, { redirect_uri: withQuery, prompt: "none", state });
    const response = await new Browser().get(authorizeUrl(params));
    expect(response.headers.get("set-cookie")).toBeNull();
    const location = response.headers.get("location")!;
    expect(location.startsWith(`${withQuery}&`)).toBe(true);
    const answer = new URL(location).searchParams;
    expect(answer.get("tenant")).toBe("a b");
    expect(answer.get("state")).toBe(state);
    expect(answer.get("error")).toBe("login_required");
  });
});

describe("hostile input", () => {
  it("oversized, malformed, duplicated and script-laden parameters: no 5xx, no redirect off the registered URI, no state change", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id);
    const base = authorizeUrl(params);
    const before = await challengesHeld();
    const requests: Array<[string, RequestInit?]> = [
      [`${base}&state=${"A".repeat(10_000)}`], // duplicate and huge
      [authorizeUrl({ ...params, state: "s".repeat(10_000) })],
      [authorizeUrl({ ...params, scope: "openid ".repeat(2000) })],
      [authorizeUrl({ ...params, claims: `{"userinfo":${"[".repeat(5000)}` })],
      [authorizeUrl({ ...params, login_hint: "x".repeat(10_000) })],
      [`${base}&client_id=${client.client_id}`],
      [`${base}&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb`],
      [`/authorize?client_id=%FF%FE&redirect_uri=%C0%AF&response_type=code`],
      [`${base}&nonce=%FF%FE%FD`],
      [`/authorize?${"a=b&".repeat(3000)}`],
      [authorizeUrl({ ...params, redirect_uri: "javascript:alert(1)//" + REDIRECT_URI })],
      [authorizeUrl({ ...params, max_age: "99999999999999999999" })],
      [authorizeUrl({ ...params, prompt: "none\u0000login" })],
      ["/authorize", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(params) }],
      ["/authorize", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "client_id=%FF&x=" + "y".repeat(70_000) }],
      ["/authorize", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new Uint8Array([0x63, 0x3d, 0xff, 0xfe]) }],
    ];
    for (const [path, init] of requests) {
      const response = await new Browser().fetch(path, init);
      expect(response.status, path.slice(0, 80)).toBeLessThan(500);
      const location = response.headers.get("location");
      if (location !== null && !location.startsWith("/login?")) {
        expect(location.startsWith(`${REDIRECT_URI}?`), location.slice(0, 120)).toBe(true);
        expect(new URL(location).searchParams.get("code")).toBeNull();
      }
    }
    expect(await challengesHeld()).toBe(before);
  });

  it("rate-limits /authorize per client address: exactly the limit passes under concurrency, then 429 with Retry-After", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id, { prompt: "none" });
    const browser = new Browser();
    const limit = loadConfig(env).rateLimitAuthorize;
    // A frozen clock inside one window, so the count is exact.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
    const responses = await Promise.all(Array.from({ length: limit + 5 }, () => browser.get(authorizeUrl(params))));
    const limited = responses.filter((r) => r.status === 429);
    expect(limited).toHaveLength(5);
    expect(responses.filter((r) => r.status === 303)).toHaveLength(limit);
    expect(Number(limited[0]!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(limited[0]!.headers.get("location")).toBeNull();
    // Another address is not affected.
    expect((await new Browser().get(authorizeUrl(params))).status).toBe(303);
  });

  it("counts an IPv6 caller by its /64, and ignores CF-Connecting-IP where the deployment does not trust it", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id, { prompt: "none" });
    const prefix = uniqueAddress().replace(/::1$/, "");
    const from = (ip: string, settings: Record<string, string> = {}) =>
      authorize(new Request(new URL(authorizeUrl(params), ORIGIN), { headers: { "cf-connecting-ip": ip } }), { ...env, RATE_LIMIT_AUTHORIZE: "2", ...settings } as Env, createExecutionContext());
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
    // Three addresses of one /64 are one caller…
    expect((await from(`${prefix}::1`)).status).toBe(303);
    expect((await from(`${prefix}:0:0:0:abcd`)).status).toBe(303);
    expect((await from(`${prefix}:ffff:1:2:3`)).status).toBe(429);
    // …and the next /64 is another.
    expect((await from(uniqueAddress())).status).toBe(303);
    // Not trusted, the header names nobody: every caller is in the one shared bucket.
    const untrusted = { TRUST_CF_CONNECTING_IP: "false" };
    const answers = [await from(uniqueAddress(), untrusted), await from(uniqueAddress(), untrusted), await from(uniqueAddress(), untrusted)];
    expect(answers.map((r) => r.status)).toEqual([303, 303, 429]);
  });
});

describe("lifetimes that /authorize applies", () => {
  /** A browser's GET as the Worker would receive it, for calling the handler with other settings. */
  function getOf(browser: Browser, path: string): Request {
    const cookie = [...browser.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    return new Request(new URL(path, ORIGIN), { headers: { cookie, "cf-connecting-ip": browser.ip } });
  }

  it("a code lives exactly authCodeTtl, the setting in force", async () => {
    const client = await makeClient();
    const { browser } = await signedInBrowser(client.client_id);
    vi.useFakeTimers({ toFake: ["Date"] });
    const now = Date.now();
    vi.setSystemTime(now);
    const codeOf = (response: Response) => responseParams(response).params.get("code")!;
    const { params } = await authorizeParams(client.client_id, { prompt: "none" });
    const code = codeOf(await browser.get(authorizeUrl(params)));
    expect(await authCodeStoreFor(env, code)!.peek(code)).toMatchObject({ status: "active", expiresAt: now + loadConfig(env).authCodeTtl * 1000 });

    const { params: again } = await authorizeParams(client.client_id, { prompt: "none" });
    const other = codeOf(await authorize(getOf(browser, authorizeUrl(again)), { ...env, AUTH_CODE_TTL: "90" } as Env, createExecutionContext()));
    expect(await authCodeStoreFor(env, other)!.peek(other)).toMatchObject({ status: "active", expiresAt: now + 90_000 });
  });

  it("an interaction lives interactionTtl, never less than the link's lifetime plus 10 minutes", async () => {
    const client = await makeClient();
    const browser = new Browser();
    vi.useFakeTimers({ toFake: ["Date"] });
    const now = Date.now();
    vi.setSystemTime(now);
    const { interactionTtl, magicLinkTtl } = loadConfig(env);
    const cases: Array<[Record<string, string>, number]> = [
      [{}, interactionTtl],
      [{ INTERACTION_TTL: "300" }, magicLinkTtl + 600],
      [{ MAGIC_LINK_TTL: String(interactionTtl) }, interactionTtl + 600],
    ];
    for (const [settings, seconds] of cases) {
      const { params } = await authorizeParams(client.client_id);
      const response = await authorize(getOf(browser, authorizeUrl(params)), { ...env, ...settings } as Env, createExecutionContext());
      const id = new URL(response.headers.get("location")!, ORIGIN).searchParams.get("interaction")!;
      expect(await challengeStoreFor(env, id)!.peek(id), JSON.stringify(settings)).toMatchObject({ status: "active", expiresAt: now + seconds * 1000 });
    }
  });
});

describe("sessions: prompt, max_age, id_token_hint (C16)", () => {
  it("prompt=none without a session is login_required; with a session and consent it is a code at once", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id, { prompt: "none" });
    const anonymous = responseParams(await new Browser().get(authorizeUrl(params))).params;
    expect(anonymous.get("error")).toBe("login_required");
    expect(anonymous.get("state")).toBe(params.state);

    const { browser, userId } = await signedInBrowser(client.client_id);
    const { verifier, params: again } = await authorizeParams(client.client_id, { prompt: "none" });
    const answer = responseParams(await browser.get(authorizeUrl(again))).params;
    expect(answer.get("iss")).toBe(ORIGIN);
    const grant = await redeem(answer.get("code")!, client.client_id, verifier);
    expect(grant.sub).toBe(userId);
  });

  it("prompt=none with a session but without consent for the scopes is consent_required", async () => {
    const client = await makeClient();
    const { browser } = await signedInBrowser(client.client_id);
    const { params } = await authorizeParams(client.client_id, { prompt: "none", scope: "openid email profile" });
    expect(responseParams(await browser.get(authorizeUrl(params))).params.get("error")).toBe("consent_required");
  });

  it("a session with remembered consent needs no page; a garbage or forged cookie counts as no session", async () => {
    const client = await makeClient();
    const { browser, userId } = await signedInBrowser(client.client_id);
    const { params } = await authorizeParams(client.client_id);
    const direct = responseParams(await browser.get(authorizeUrl(params))).params;
    expect(direct.get("code")).toBeTruthy();

    const cookie = browser.cookies.get("oidc_session")!;
    for (const forged of ["garbage", `${cookie.slice(0, -3)}abc`, `${userId}.${"a".repeat(22)}.${"b".repeat(43)}`, "x".repeat(5000)]) {
      const stranger = new Browser();
      stranger.cookies.set("oidc_session", forged);
      const response = await stranger.get(authorizeUrl({ ...params, prompt: "none" }));
      expect(responseParams(response).params.get("error")).toBe("login_required");
    }
  });

  it("a session of a user who was disabled or deleted since does not count", async () => {
    const client = await makeClient();
    const { browser, userId } = await signedInBrowser(client.client_id);
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(userId).run();
    const { params } = await authorizeParams(client.client_id, { prompt: "none" });
    expect(responseParams(await browser.get(authorizeUrl(params))).params.get("error")).toBe("login_required");
    const { params: interactive } = await authorizeParams(client.client_id);
    expect((await browser.get(authorizeUrl(interactive))).headers.get("location")).toMatch(/^\/login\?/);
  });

  it("using a session slides its idle expiry: used within the idle window, it still counts past the original idle expiry", async () => {
    const client = await makeClient();
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2030, 0, 3, 12, 0, 0);
    vi.setSystemTime(t0);
    const used = await signedInBrowser(client.client_id);
    const unused = await signedInBrowser(client.client_id);
    const idle = loadConfig(env).sessionIdleTtl * 1000;
    const silently = async (browser: Browser) => {
      const { params } = await authorizeParams(client.client_id, { prompt: "none" });
      return responseParams(await browser.get(authorizeUrl(params))).params;
    };
    vi.setSystemTime(t0 + idle / 2);
    expect((await silently(used.browser)).get("code")).toBeTruthy();
    vi.setSystemTime(t0 + idle + 60_000);
    expect((await silently(used.browser)).get("code")).toBeTruthy();
    expect((await silently(unused.browser)).get("error")).toBe("login_required");
  });

  it("prompt=login forces a new sign-in even with a session; the code carries the new auth_time and session", async () => {
    const client = await makeClient();
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2030, 0, 1, 12, 0, 0);
    vi.setSystemTime(t0);
    const { browser, email } = await signedInBrowser(client.client_id);
    const { verifier: v1, params: p1 } = await authorizeParams(client.client_id);
    const first = await redeem(responseParams(await browser.get(authorizeUrl(p1))).params.get("code")!, client.client_id, v1);
    expect(first.authTime).toBe(t0 / 1000);

    vi.setSystemTime(t0 + 600_000);
    const { verifier, params } = await authorizeParams(client.client_id, { prompt: "login" });
    const start = await browser.get(authorizeUrl(params));
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);
    vi.setSystemTime(t0 + 660_000);
    const done = await followLocal(browser, await signIn(browser, start.headers.get("location")!, email));
    const grant = await redeem(responseParams(done).params.get("code")!, client.client_id, verifier);
    expect(grant.authTime).toBe((t0 + 660_000) / 1000);
    expect(grant.sid).not.toBe(first.sid);
    expect(grant.sub).toBe(first.sub);
    // The replaced session is ended, not left behind: only the new one is active.
    const active = await userSessionsFor(env, grant.sub)!.listSessions();
    expect(active.map((s) => s.sid)).toEqual([grant.sid]);
  });

  it("max_age forces a new sign-in when the authentication is older, not when it is recent; max_age=0 always", async () => {
    const client = await makeClient();
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2030, 0, 2, 12, 0, 0);
    vi.setSystemTime(t0);
    const { browser, email } = await signedInBrowser(client.client_id);

    vi.setSystemTime(t0 + 120_000);
    const { verifier: vRecent, params: recent } = await authorizeParams(client.client_id, { max_age: "300" });
    const recentGrant = await redeem(responseParams(await browser.get(authorizeUrl(recent))).params.get("code")!, client.client_id, vRecent);
    expect(recentGrant.authTime).toBe(t0 / 1000);

    const { params: zero } = await authorizeParams(client.client_id, { max_age: "0" });
    expect((await browser.get(authorizeUrl(zero))).headers.get("location")).toMatch(/^\/login\?/);

    const { params: none } = await authorizeParams(client.client_id, { max_age: "60", prompt: "none" });
    expect(responseParams(await browser.get(authorizeUrl(none))).params.get("error")).toBe("login_required");

    const { verifier, params } = await authorizeParams(client.client_id, { max_age: "60" });
    const start = await browser.get(authorizeUrl(params));
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);
    vi.setSystemTime(t0 + 180_000);
    const done = await followLocal(browser, await signIn(browser, start.headers.get("location")!, email));
    const grant = await redeem(responseParams(done).params.get("code")!, client.client_id, verifier);
    expect(grant.authTime).toBe((t0 + 180_000) / 1000);
  });

  it("id_token_hint: the same user passes prompt=none; another user is login_required; a hint for another client is refused", async () => {
    const client = await makeClient();
    const { browser, userId } = await signedInBrowser(client.client_id);
    const key = await currentSigningKey(env);
    const hintFor = (sub: string, aud = client.client_id) =>
      mintIdToken(key, { issuer: ORIGIN, clientId: aud, sub, authTime: 1, nonce: null, sid: null, amr: [], acr: null, accessToken: null, ttlSeconds: 60 });

    const { params: same } = await authorizeParams(client.client_id, { prompt: "none", id_token_hint: await hintFor(userId) });
    expect(responseParams(await browser.get(authorizeUrl(same))).params.get("code")).toBeTruthy();

    const { params: other } = await authorizeParams(client.client_id, { prompt: "none", id_token_hint: await hintFor("someone-else-entirely") });
    expect(responseParams(await browser.get(authorizeUrl(other))).params.get("error")).toBe("login_required");

    const { params: interactive } = await authorizeParams(client.client_id, { id_token_hint: await hintFor("someone-else-entirely") });
    expect((await browser.get(authorizeUrl(interactive))).headers.get("location")).toMatch(/^\/login\?/);

    const { params: foreign } = await authorizeParams(client.client_id, { prompt: "none", id_token_hint: await hintFor(userId, "another-client") });
    expect(responseParams(await browser.get(authorizeUrl(foreign))).params.get("error")).toBe("invalid_request");
  });

  /** An authorization request whose claims parameter names the user the ID token must be about. */
  const askingFor = (clientId: string, sub: string, extra: Record<string, string> = {}) =>
    authorizeParams(clientId, { claims: JSON.stringify({ id_token: { sub: { value: sub }, email: null } }), ...extra });

  it("claims.id_token.sub.value naming another user: prompt=none is login_required, and signing in again as the same user is a failed sign-in, never a code (OIDC Core §5.5.1)", async () => {
    const client = await makeClient();
    const { browser, email } = await signedInBrowser(client.client_id);
    const { params: none } = await askingFor(client.client_id, "someone-else-entirely", { prompt: "none" });
    const refused = responseParams(await browser.get(authorizeUrl(none))).params;
    expect(refused.get("error")).toBe("login_required");
    expect(refused.get("code")).toBeNull();

    const { params: interactive } = await askingFor(client.client_id, "someone-else-entirely");
    const start = await browser.get(authorizeUrl(interactive));
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);
    const wrong = responseParams(await followLocal(browser, await signIn(browser, start.headers.get("location")!, email))).params;
    expect(wrong.get("error")).toBe("login_required");
    expect(wrong.get("code")).toBeNull();
  });

  it("claims.id_token.sub.value: signing in as the user it names answers it, for that user; naming the signed-in user is no obstacle", async () => {
    const client = await makeClient({ skip_consent: true });
    const browser = new Browser();
    const { params: first } = await authorizeParams(client.client_id);
    await followLocal(browser, await signIn(browser, (await browser.get(authorizeUrl(first))).headers.get("location")!, uniqueEmail()));
    const otherEmail = uniqueEmail();
    const other = await ensureUserForVerifiedEmail(env.DB, otherEmail, randomToken(12));

    const { verifier, params } = await askingFor(client.client_id, other.id);
    const start = await browser.get(authorizeUrl(params));
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);
    const done = await followLocal(browser, await signIn(browser, start.headers.get("location")!, otherEmail));
    expect((await redeem(responseParams(done).params.get("code")!, client.client_id, verifier)).sub).toBe(other.id);

    const { params: same } = await askingFor(client.client_id, other.id, { prompt: "none" });
    expect(responseParams(await browser.get(authorizeUrl(same))).params.get("code")).toBeTruthy();
  });

  describe("acr (OIDC Core §3.1.2.1, §5.5.1.1)", () => {
    const essential = (values: string[]) => JSON.stringify({ id_token: { acr: { essential: true, values } } });
    /** The code's acr for a silent request from a signed-in browser, or the error it got. */
    async function acrFor(extra: Record<string, string>) {
      const client = await makeClient();
      const { browser } = await signedInBrowser(client.client_id);
      return async (more: Record<string, string> = {}) => {
        const { verifier, params } = await authorizeParams(client.client_id, { prompt: "none", ...extra, ...more });
        const answer = responseParams(await browser.get(authorizeUrl(params))).params;
        if (answer.get("code") === null) return { error: answer.get("error") };
        return { acr: (await redeem(answer.get("code")!, client.client_id, verifier)).acr };
      };
    }

    it("an essential class no sign-in method here meets is access_denied at once, with or without a session", async () => {
      const ask = await acrFor({});
      expect(await ask({ claims: essential(["urn:example:gold"]) })).toEqual({ error: "access_denied" });
      expect(await ask({ claims: essential(["urn:example:silver", "urn:example:gold"]) })).toEqual({ error: "access_denied" });
      // Phishing-resistant classes are met by passkeys (tests/passkeys.test.ts): an email session must sign in again.
      expect(await ask({ claims: essential(["phr"]) })).toEqual({ error: "login_required" });
      const client = await makeClient();
      const { params } = await authorizeParams(client.client_id, { claims: essential(["urn:example:gold"]) });
      expect(responseParams(await new Browser().get(authorizeUrl(params))).params.get("error")).toBe("access_denied");
    });

    it("the email link meets the baseline '0': asserted when asked for, essential or voluntary, as the first requested class met", async () => {
      const ask = await acrFor({});
      expect(await ask({ claims: essential(["phr", "0"]) })).toEqual({ acr: "0" });
      expect(await ask({ claims: JSON.stringify({ id_token: { acr: { value: "0" } } }) })).toEqual({ acr: "0" });
      expect(await ask({ claims: JSON.stringify({ id_token: { acr: null } }) })).toEqual({ acr: "0" });
      expect(await ask({ acr_values: "phr 0" })).toEqual({ acr: "0" });
    });

    it("voluntary values not met, or none asked for: no acr, and no refusal", async () => {
      const ask = await acrFor({});
      expect(await ask({ acr_values: "phr urn:example:gold" })).toEqual({ acr: null });
      expect(await ask()).toEqual({ acr: null });
    });

    it("malformed acr or sub requests are invalid_request", async () => {
      const client = await makeClient();
      for (const claims of [{ id_token: { acr: { values: "0" } } }, { id_token: { acr: { values: [0] } } }, { id_token: { sub: { value: 5 } } }, { id_token: { acr: { essential: "yes" } } }]) {
        const { params } = await authorizeParams(client.client_id, { claims: JSON.stringify(claims) });
        expect(responseParams(await new Browser().get(authorizeUrl(params))).params.get("error"), JSON.stringify(claims)).toBe("invalid_request");
      }
    });
  });

  it("an essential acr the session's sign-in did not meet asks for a new sign-in; prompt=none is login_required", async () => {
    const client = await makeClient({ skip_consent: true });
    // A session from a sign-in method that meets no class (as a future method might not).
    const email = uniqueEmail();
    const user = await ensureUserForVerifiedEmail(env.DB, email, randomToken(12));
    const sid = newSessionId();
    const created = await userSessionsFor(env, user.id)!.createSession({ sid, userId: user.id, authTime: Math.floor(Date.now() / 1000), amr: ["pwd"], acr: null });
    if (!created.created) throw new Error("no session");
    const browser = new Browser();
    browser.cookies.set("oidc_session", formatSessionCookie(user.id, sid, created.secret));
    const claims = JSON.stringify({ id_token: { acr: { essential: true, values: ["0"] } } });

    const { params: none } = await authorizeParams(client.client_id, { claims, prompt: "none" });
    expect(responseParams(await browser.get(authorizeUrl(none))).params.get("error")).toBe("login_required");
    const { params: voluntary } = await authorizeParams(client.client_id, { acr_values: "0", prompt: "none" });
    expect(responseParams(await browser.get(authorizeUrl(voluntary))).params.get("code")).toBeTruthy();

    const { verifier, params } = await authorizeParams(client.client_id, { claims });
    const start = await browser.get(authorizeUrl(params));
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);
    const done = await followLocal(browser, await signIn(browser, start.headers.get("location")!, email));
    expect(await redeem(responseParams(done).params.get("code")!, client.client_id, verifier)).toMatchObject({ sub: user.id, amr: ["email"], acr: "0" });
  });

  it("prompt=select_account leads to the sign-in page even with a session", async () => {
    const client = await makeClient();
    const { browser } = await signedInBrowser(client.client_id);
    const { params } = await authorizeParams(client.client_id, { prompt: "select_account" });
    expect((await browser.get(authorizeUrl(params))).headers.get("location")).toMatch(/^\/login\?interaction=/);
  });

  it("an admin change between the request and the consent is in force: a removed redirect URI gets a page, not a redirect (C5)", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const { params } = await authorizeParams(client.client_id);
    const start = await browser.get(authorizeUrl(params));
    const afterLink = await signIn(browser, start.headers.get("location")!, uniqueEmail());
    const consent = await followLocal(browser, afterLink);
    await patchClient(client.client_id, { redirect_uris: ["https://rp.example/other"] });
    const done = await decide(browser, consent, "allow");
    expect(done.status).toBe(400);
    expect(done.headers.get("location")).toBeNull();
  });
});

describe("a step failing half-way through (C12)", () => {
  /** A browser's POST as the Worker would receive it, for calling a handler directly with a stand-in binding. */
  function postOf(browser: Browser, path: string, form: Record<string, string>): Request {
    return new Request(new URL(path, ORIGIN), {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie: [...browser.cookies].map(([name, value]) => `${name}=${value}`).join("; "),
        "cf-connecting-ip": browser.ip,
      },
      body: new URLSearchParams(form).toString(),
    });
  }

  /**
   * An env whose session objects fail one method the way an object that was reset mid-call does, and answer every
   * other call for real. A Durable Object cannot be made unreachable from inside the pool, so the binding is stood in for.
   */
  function sessionsFailing(method: string): Env {
    const SESSIONS = {
      idFromName: (name: string) => env.SESSIONS.idFromName(name),
      get: (id: DurableObjectId) => {
        const stub = env.SESSIONS.get(id) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
        return new Proxy(
          {},
          {
            get: (_target, name) =>
              name === method ? () => Promise.reject(new Error("Durable Object reset")) : (...args: unknown[]) => stub[String(name)]!(...args),
          },
        );
      },
    };
    return { ...env, SESSIONS } as unknown as Env;
  }

  async function atConsent(clientId: string) {
    const browser = new Browser();
    const { verifier, params } = await authorizeParams(clientId);
    const start = await browser.get(authorizeUrl(params));
    const consent = await followLocal(browser, await signIn(browser, start.headers.get("location")!, uniqueEmail()));
    expect(consent.status).toBe(200);
    const fields: Record<string, string> = { ...formFields(await consent.text()), decision: "allow" };
    return { browser, verifier, params, fields };
  }

  it("the code store failing at Allow leaves the request open: a retry gets the code instead of 'already completed'", async () => {
    const client = await makeClient();
    const { browser, verifier, params, fields } = await atConsent(client.client_id);
    const codesUnreachable = {
      ...env,
      AUTH_CODES: { idFromName: (name: string) => env.AUTH_CODES.idFromName(name), get: () => ({ put: () => Promise.reject(new Error("Durable Object reset")) }) },
    } as unknown as Env;
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const failed = await submitConsent(postOf(browser, "/consent", fields), codesUnreachable, createExecutionContext());
    logged.mockRestore();
    expect(failed.status).toBe(500);
    expect(failed.headers.get("location")).toBeNull();
    expect((await challengeStoreFor(env, fields.interaction!)!.peek(fields.interaction!)).status).toBe("active");

    const answer = responseParams(await browser.post("/consent", fields)).params;
    expect(answer.get("state")).toBe(params.state);
    expect((await redeem(answer.get("code")!, client.client_id, verifier)).clientId).toBe(client.client_id);
  });

  it("recording the client with the session is best effort: its failure does not withhold the code", async () => {
    const client = await makeClient();
    const { browser, verifier, fields } = await atConsent(client.client_id);
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    // Recorded in the background (waitUntil), after the answer: wait for it before reading the log.
    const ctx = createExecutionContext();
    const done = await submitConsent(postOf(browser, "/consent", fields), sessionsFailing("recordClient"), ctx);
    await waitOnExecutionContext(ctx);
    const lines = logged.mock.calls.map((args) => String(args[0]));
    logged.mockRestore();
    const grant = await redeem(responseParams(done).params.get("code")!, client.client_id, verifier);
    expect(grant.sid).toBe(parseSessionCookie(browser.cookies.get("oidc_session")!)!.sid);
    expect(lines.some((line) => line.includes("session.record_client_failed"))).toBe(true);
  });

  it("a new sign-in whose replaced session cannot be ended still sets the new session's cookie (the link is not wasted)", async () => {
    const client = await makeClient();
    const { browser, email } = await signedInBrowser(client.client_id);
    const { verifier, params } = await authorizeParams(client.client_id, { prompt: "login" });
    const start = await browser.get(authorizeUrl(params));
    const confirm = await browser.get(await requestLink(browser, start.headers.get("location")!, email));
    const fields = formFields(await confirm.text());

    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const signedIn = await finishEmailLogin(postOf(browser, "/login/email", fields), sessionsFailing("revokeSession"));
    logged.mockRestore();
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.getAll("set-cookie").find((c) => c.startsWith("oidc_session="));
    expect(cookie).toBeDefined();
    const value = cookie!.split(";")[0]!.slice("oidc_session=".length);
    browser.cookies.set("oidc_session", value);
    const grant = await redeem(responseParams(await followLocal(browser, signedIn)).params.get("code")!, client.client_id, verifier);
    expect(grant.sid).toBe(parseSessionCookie(value)!.sid);
  });
});
