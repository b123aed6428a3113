// @ts-check
/**
 * Our OP for the bench: the deploy bundle in Miniflare (bench/op-host.mjs) with its own persisted state, clients
 * registered through the admin API, users signed in through the real pages (POST /login, the link from the dev
 * mailbox, POST /login/email, the consent screen) — nothing seeded behind the Worker's back.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { root, quietEnv } from "./bundle.mjs";
import { Browser, basicAuth, codeGrant, dpopKey, expectStatus, mapLimit, parseForms, pkcePair } from "./http.mjs";
import { spawnGroup } from "./procs.mjs";

export const REDIRECT_URI = "http://127.0.0.1:9/cb";
const SPA_REDIRECT_URI = "https://bench-spa.example/cb";
/** Every rate limit at the largest value the settings allow (src/config.ts), far above what a bench round sends in one window: the limiter objects still run on every request, they just never say no. */
const NO_LIMIT = "1000000";

/**
 * @param {{ bundle: import("./bundle.mjs").Bundle, stateDir: string, name?: string, settings?: Record<string, string> }} options
 *   `settings`: more of the OP's settings (src/config.ts), e.g. `{ ACCESS_TOKEN_SIGNING_ALG: "ES256" }` (`--set`).
 */
export async function startOurs(options) {
  const adminToken = randomBytes(24).toString("base64url");
  const worker = structuredClone(options.bundle.worker);
  worker.bindings = {
    .../** @type {Record<string, unknown>} */ (worker.bindings ?? {}),
    ADMIN_TOKEN: adminToken,
    RATE_LIMIT_TOKEN: NO_LIMIT,
    RATE_LIMIT_AUTHORIZE: NO_LIMIT,
    RATE_LIMIT_LOGIN: NO_LIMIT,
    RATE_LIMIT_ADMIN: NO_LIMIT,
    ...options.settings,
  };
  const proc = spawnGroup(process.execPath, [path.join(root, "bench", "op-host.mjs")], {
    cwd: root,
    env: {
      ...quietEnv,
      BENCH_OP_OPTIONS: JSON.stringify({
        scriptPath: options.bundle.scriptPath,
        stateDir: options.stateDir,
        migrationsDir: path.join(root, "drizzle"),
        worker,
      }),
    },
  });
  const { url } = await proc.waitFor("ready", 60_000);
  const issuer = String(url);

  /**
   * @param {string} method
   * @param {string} pathname
   * @param {unknown} body
   */
  const adminApi = async (method, pathname, body) => {
    const response = await fetch(`${issuer}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    await expectStatus(response, [200, 201], `${method} ${pathname}`).catch((error) => {
      throw new Error(`${error.message}\nWorker output:\n${proc.output().slice(-3000)}`);
    });
    return /** @type {Record<string, any>} */ (await response.json());
  };
  const web = await adminApi("POST", "/admin/clients", {
    client_name: "Bench web app",
    redirect_uris: [REDIRECT_URI],
    grant_types: ["authorization_code", "refresh_token"],
    token_endpoint_auth_method: "client_secret_basic",
    scope: "openid profile email offline_access",
    skip_consent: false,
  });
  const service = await adminApi("POST", "/admin/clients", {
    client_name: "Bench service",
    redirect_uris: [],
    grant_types: ["client_credentials"],
    token_endpoint_auth_method: "client_secret_basic",
    scope: "reports:read",
  });
  // A public client that takes DPoP-bound tokens (RFC 9449), for the phases report: it skips consent, so a user
  // signed in to the web client gets its code at once (an https redirect URI: at a loopback one a public client's
  // user is asked every time, RFC 8252 §8.6).
  const spa = await adminApi("POST", "/admin/clients", {
    client_name: "Bench DPoP SPA",
    redirect_uris: [SPA_REDIRECT_URI],
    grant_types: ["authorization_code", "refresh_token"],
    token_endpoint_auth_method: "none",
    scope: "openid profile email offline_access",
    skip_consent: true,
    dpop_bound_access_tokens: true,
  });
  const webAuth = basicAuth(web.client_id, web.client_secret);
  const serviceAuth = basicAuth(service.client_id, service.client_secret);
  const pkce = pkcePair();

  /** @type {Browser[]} */
  const users = [];

  /**
   * The authorization request of the web client (query string), PKCE S256.
   * @param {string} scope
   */
  const authorizePath = (scope) =>
    `/authorize?${new URLSearchParams({
      response_type: "code",
      client_id: web.client_id,
      redirect_uri: REDIRECT_URI,
      scope,
      state: "bench-state",
      nonce: "bench-nonce",
      code_challenge: pkce.challenge,
      code_challenge_method: "S256",
    })}`;

  const { codeTokenBody, redeem } = codeGrant(issuer, webAuth, pkce, REDIRECT_URI);

  /**
   * Follows an authorization request like a person with a browser: the sign-in form, the emailed link and its
   * confirmation, the consent screen; returns the code from the redirect to the client.
   * @param {Browser} browser
   * @param {string} email
   * @param {string} scope
   */
  const authorizeAsUser = async (browser, email, scope) => {
    let response = await browser.request(authorizePath(scope));
    for (let hops = 0; hops < 20; hops++) {
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel();
        if (location.startsWith(REDIRECT_URI)) {
          const code = new URL(location).searchParams.get("code");
          if (code === null) throw new Error(`no code in ${location}`);
          return code;
        }
        response = await browser.request(location);
        continue;
      }
      const html = await response.text();
      if (response.status !== 200) throw new Error(`${response.url}: HTTP ${response.status}: ${html.slice(0, 500)}`);
      const forms = parseForms(html);
      const signIn = forms.find((f) => f.action === "/login");
      const confirm = forms.find((f) => f.action === "/login/email");
      const consent = forms.find((f) => f.action === "/consent");
      if (signIn) {
        const sent = await browser.request("/login", { form: { ...signIn.fields, email } });
        await expectStatus(sent, [200], "POST /login");
        await sent.body?.cancel();
        const mailbox = await fetch(`${issuer}/dev/mailbox?to=${encodeURIComponent(email)}`);
        await expectStatus(mailbox, [200], "GET /dev/mailbox");
        const messages = /** @type {{ link: string | null }[]} */ (await mailbox.json());
        const link = messages.find((m) => m.link !== null)?.link;
        if (!link) throw new Error(`no sign-in link for ${email}`);
        response = await browser.request(link);
      } else if (confirm) {
        response = await browser.request("/login/email", { form: confirm.fields });
      } else if (consent) {
        response = await browser.request("/consent", { form: { ...consent.fields, decision: "allow" } });
      } else {
        throw new Error(`unexpected page: ${html.slice(0, 500)}`);
      }
    }
    throw new Error("too many redirects");
  };

  const ours = {
    name: options.name ?? "ours",
    issuer,
    proc,
    clientId: web.client_id,
    redirectUri: REDIRECT_URI,
    paths: { discovery: "/.well-known/openid-configuration", jwks: "/jwks.json", token: "/token", userinfo: "/userinfo", introspect: "/introspect" },
    webAuth,
    serviceAuth,
    clientCredentialsBody: "grant_type=client_credentials&scope=reports%3Aread",
    /** Introspection responses that count as answered. */
    introspectionOk: (/** @type {string} */ body) => body.includes('"active":true'),

    /**
     * Signs in `count` users (one browser each), each consenting once to the web client.
     * @param {number} count
     * @param {number} [concurrency]
     */
    async signInUsers(count, concurrency = 8) {
      const indexes = Array.from({ length: Math.max(0, count - users.length) }, (_, k) => users.length + k);
      const signedIn = await mapLimit(indexes, concurrency, async (i) => {
        const browser = new Browser(issuer);
        const code = await authorizeAsUser(browser, `bench-user-${i}@example.com`, "openid profile email offline_access");
        await redeem(code);
        return browser;
      });
      users.push(...signedIn);
    },

    /**
     * The session (Cookie header) and the authorization request for the authorize → token scenario: the user's
     * consent for these scopes is remembered, so the answer is a redirect with a code.
     * @param {number} i
     */
    authorizeRequest(i) {
      const browser = users[i % users.length];
      if (!browser) throw new Error("no users signed in");
      return { path: authorizePath("openid profile email"), cookie: browser.jar.header("/authorize") ?? "" };
    },
    codeTokenBody,

    /**
     * A new grant of user `i` with a refresh token (offline_access), through /authorize and /token.
     * @param {number} i
     */
    async mintGrant(i) {
      const { path: p, cookie } = this.authorizeRequest(i);
      const response = await fetch(`${issuer}${p.replace(/scope=[^&]*/, `scope=${encodeURIComponent("openid profile email offline_access")}`)}`, {
        headers: { cookie },
        redirect: "manual",
      });
      const location = response.headers.get("location") ?? "";
      const code = location.startsWith(REDIRECT_URI) ? new URL(location).searchParams.get("code") : null;
      if (code === null) throw new Error(`authorize with session answered ${response.status} ${location}`);
      const tokens = await redeem(code);
      if (!tokens.refresh_token) throw new Error("no refresh token");
      return { refreshToken: tokens.refresh_token, accessToken: tokens.access_token };
    },

    /** An access token /userinfo accepts (ours are JWTs, accepted at /userinfo and /introspect alike). */
    async mintUserinfoToken(/** @type {number} */ i) {
      return (await this.mintGrant(i)).accessToken;
    },

    /**
     * Signs in again every user whose session the server no longer knows (its /authorize answer is not a code).
     * @returns {Promise<number>} how many
     */
    async ensureSignedIn() {
      const lost = await mapLimit(users.map((_, i) => i), 8, async (i) => {
        const { path: p, cookie } = this.authorizeRequest(i);
        const response = await fetch(`${issuer}${p}`, { headers: { cookie }, redirect: "manual" });
        await response.body?.cancel();
        if ((response.headers.get("location") ?? "").startsWith(REDIRECT_URI)) return 0;
        const browser = /** @type {Browser} */ (users[i]);
        await redeem(await authorizeAsUser(browser, `bench-user-${i}@example.com`, "openid profile email"));
        return 1;
      });
      return lost.filter((n) => n === 1).length;
    },

    refreshBody: (/** @type {string} */ token) => `grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}`,

    /**
     * A DPoP-bound grant of the public client for user `i`: the code through /authorize with the user's session, the
     * tokens from /token with a proof. The refresh token is bound to the key (RFC 9449 §5).
     * @param {number} i
     */
    async mintDpopGrant(i) {
      const key = await dpopKey();
      const browser = users[i % users.length];
      if (!browser) throw new Error("no users signed in");
      const spaPkce = pkcePair();
      const query = new URLSearchParams({
        response_type: "code",
        client_id: spa.client_id,
        redirect_uri: SPA_REDIRECT_URI,
        scope: "openid profile email offline_access",
        state: "bench-dpop",
        code_challenge: spaPkce.challenge,
        code_challenge_method: "S256",
      });
      const authorized = await fetch(`${issuer}/authorize?${query}`, { headers: { cookie: browser.jar.header("/authorize") ?? "" }, redirect: "manual" });
      const location = authorized.headers.get("location") ?? "";
      const code = location.startsWith(SPA_REDIRECT_URI) ? new URL(location).searchParams.get("code") : null;
      if (code === null) throw new Error(`authorize (DPoP SPA) answered ${authorized.status} ${location}`);
      const response = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", dpop: await key.proof("POST", `${issuer}/token`) },
        body: new URLSearchParams({ grant_type: "authorization_code", client_id: spa.client_id, code, redirect_uri: SPA_REDIRECT_URI, code_verifier: spaPkce.verifier }).toString(),
      });
      await expectStatus(response, [200], "POST /token (DPoP code)");
      const tokens = /** @type {{ access_token: string, refresh_token: string }} */ (await response.json());
      return { key, accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
    },
    spaRefreshBody: (/** @type {string} */ token) => `grant_type=refresh_token&client_id=${encodeURIComponent(spa.client_id)}&refresh_token=${encodeURIComponent(token)}`,

    /** The web client's authorization request as a pushed one (RFC 9126): the body of POST /par. */
    parBody: () =>
      new URLSearchParams({
        response_type: "code",
        redirect_uri: REDIRECT_URI,
        scope: "openid profile email",
        state: "bench-state",
        nonce: "bench-nonce",
        code_challenge: pkce.challenge,
        code_challenge_method: "S256",
      }).toString(),
    /**
     * The authorization request by reference to a pushed one, and the session of user `i`.
     * @param {string} requestUri
     * @param {number} i
     */
    pushedAuthorizeRequest(requestUri, i) {
      const browser = users[i % users.length];
      if (!browser) throw new Error("no users signed in");
      return { path: `/authorize?${new URLSearchParams({ client_id: web.client_id, request_uri: requestUri })}`, cookie: browser.jar.header("/authorize") ?? "" };
    },

    stop: () => proc.stop(),
  };
  return ours;
}

/** @typedef {Awaited<ReturnType<typeof startOurs>>} Ours */
