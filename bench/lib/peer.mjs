// @ts-check
/**
 * node-oidc-provider for the bench (bench/peer/server.mjs in its own process group), with the same interface as
 * bench/lib/ours.mjs: clients, users signed in through its interaction (a session cookie and a remembered grant),
 * fresh grants, tokens for /userinfo.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { root } from "./bundle.mjs";
import { Browser, basicAuth, codeGrant, expectStatus, mapLimit, pkcePair } from "./http.mjs";
import { spawnGroup } from "./procs.mjs";

export const REDIRECT_URI = "http://127.0.0.1:9/cb";
const RESOURCE = "urn:bench:api";

/**
 * @param {{ adapter: "memory" | "sqlite", stateDir: string, name: string, synchronous?: "FULL" | "NORMAL" }} options
 */
export async function startPeer(options) {
  const web = { client_id: "bench-web", client_secret: randomBytes(24).toString("base64url") };
  const service = { client_id: "bench-service", client_secret: randomBytes(24).toString("base64url") };
  const clients = [
    {
      ...web,
      client_name: "Bench web app",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
    {
      ...service,
      client_name: "Bench service",
      redirect_uris: [],
      response_types: [],
      grant_types: ["client_credentials"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ];
  const proc = spawnGroup(process.execPath, [path.join(root, "bench", "peer", "server.mjs")], {
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: "production",
      BENCH_PEER_OPTIONS: JSON.stringify({ adapter: options.adapter, stateDir: options.stateDir, clients, synchronous: options.synchronous }),
    },
  });
  const { url } = await proc.waitFor("ready", 30_000);
  const issuer = String(url);
  const webAuth = basicAuth(web.client_id, web.client_secret);
  const serviceAuth = basicAuth(service.client_id, service.client_secret);
  const pkce = pkcePair();
  /** @type {Browser[]} */
  const users = [];

  /**
   * @param {{ scope: string, resource: boolean, prompt?: string }} request
   */
  const authorizePath = (request) =>
    `/auth?${new URLSearchParams({
      response_type: "code",
      client_id: web.client_id,
      redirect_uri: REDIRECT_URI,
      scope: request.scope,
      state: "bench-state",
      nonce: "bench-nonce",
      code_challenge: pkce.challenge,
      code_challenge_method: "S256",
      ...(request.resource ? { resource: RESOURCE } : {}),
      ...(request.prompt ? { prompt: request.prompt } : {}),
    })}`;

  const { codeTokenBody, redeem } = codeGrant(issuer, webAuth, pkce, REDIRECT_URI);

  /**
   * Follows an authorization request through the interaction: sign in with `email` if asked, grant what is asked.
   * @param {Browser} browser
   * @param {string} email
   * @param {string} authorizeUrl
   */
  const authorizeAsUser = async (browser, email, authorizeUrl) => {
    let response = await browser.request(authorizeUrl);
    for (let hops = 0; hops < 20; hops++) {
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || location === null) {
        throw new Error(`${response.url}: HTTP ${response.status}: ${(await response.text()).slice(0, 500)}`);
      }
      await response.body?.cancel();
      if (location.startsWith(REDIRECT_URI)) {
        const code = new URL(location).searchParams.get("code");
        if (code === null) throw new Error(`no code in ${location}`);
        return code;
      }
      const target = new URL(location, issuer);
      if (target.pathname.startsWith("/interaction/")) {
        const details = await browser.request(target.pathname);
        await expectStatus(details, [200], `GET ${target.pathname}`);
        const { prompt } = /** @type {{ prompt: string }} */ (await details.json());
        response =
          prompt === "login"
            ? await browser.request(`${target.pathname}/login`, { form: { email } })
            : await browser.request(`${target.pathname}/confirm`, { form: {} });
      } else {
        response = await browser.request(target.href);
      }
    }
    throw new Error("too many redirects");
  };

  const peer = {
    name: options.name,
    issuer,
    proc,
    clientId: web.client_id,
    redirectUri: REDIRECT_URI,
    paths: { discovery: "/.well-known/openid-configuration", jwks: "/jwks", token: "/token", userinfo: "/me", introspect: "/token/introspection" },
    webAuth,
    serviceAuth,
    clientCredentialsBody: `grant_type=client_credentials&scope=api%3Aread&resource=${encodeURIComponent(RESOURCE)}`,
    introspectionOk: (/** @type {string} */ body) => body.includes('"active":true'),

    /**
     * @param {number} count
     * @param {number} [concurrency]
     */
    async signInUsers(count, concurrency = 8) {
      const indexes = Array.from({ length: Math.max(0, count - users.length) }, (_, k) => users.length + k);
      const signedIn = await mapLimit(indexes, concurrency, async (i) => {
        const browser = new Browser(issuer);
        const code = await authorizeAsUser(
          browser,
          `bench-user-${i}@example.com`,
          authorizePath({ scope: "openid profile email offline_access api:read", resource: true, prompt: "consent" }),
        );
        await redeem(code);
        return browser;
      });
      users.push(...signedIn);
    },

    /**
     * The authorize → token scenario: a session and a remembered grant, so the answer is a redirect with a code.
     * The resource makes the access token a JWT (RFC 9068), as ours are.
     * @param {number} i
     */
    authorizeRequest(i) {
      const browser = users[i % users.length];
      if (!browser) throw new Error("no users signed in");
      return { path: authorizePath({ scope: "openid profile email api:read", resource: true }), cookie: browser.jar.header("/auth") ?? "" };
    },
    codeTokenBody,

    /**
     * A new grant with a refresh token: node-oidc-provider keeps offline_access only with prompt=consent, so this
     * goes through the consent step of the interaction (the user is signed in already).
     * @param {number} i
     */
    async mintGrant(i) {
      const browser = users[i % users.length];
      if (!browser) throw new Error("no users signed in");
      // The email is needed when the in-memory adapter has forgotten the session (its LRU holds 1,000 entries).
      const code = await authorizeAsUser(
        browser,
        `bench-user-${i % users.length}@example.com`,
        authorizePath({ scope: "openid profile email offline_access api:read", resource: true, prompt: "consent" }),
      );
      const tokens = await redeem(code);
      if (!tokens.refresh_token) throw new Error("no refresh token");
      return { refreshToken: tokens.refresh_token, accessToken: tokens.access_token };
    },

    /**
     * node-oidc-provider's /userinfo (/me) takes only access tokens issued for it: opaque ones, from a request
     * without a resource indicator. Those are also the ones it can introspect (JWT access tokens are not stored).
     * @param {number} i
     */
    async mintUserinfoToken(i) {
      const browser = users[i % users.length];
      if (!browser) throw new Error("no users signed in");
      const code = await authorizeAsUser(browser, `bench-user-${i % users.length}@example.com`, authorizePath({ scope: "openid profile email", resource: false }));
      return (await redeem(code)).access_token;
    },

    /**
     * Signs in again every user whose session the server no longer knows (its /auth answer is not a code).
     * @returns {Promise<number>} how many
     */
    async ensureSignedIn() {
      const lost = await mapLimit(users.map((_, i) => i), 8, async (i) => {
        const { path: p, cookie } = this.authorizeRequest(i);
        const response = await fetch(`${issuer}${p}`, { headers: { cookie }, redirect: "manual" });
        await response.body?.cancel();
        if ((response.headers.get("location") ?? "").startsWith(REDIRECT_URI)) return 0;
        const browser = /** @type {Browser} */ (users[i]);
        await redeem(await authorizeAsUser(browser, `bench-user-${i}@example.com`, authorizePath({ scope: "openid profile email api:read", resource: true })));
        return 1;
      });
      return lost.filter((n) => n === 1).length;
    },

    refreshBody: (/** @type {string} */ token) => `grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}`,

    stop: () => proc.stop(),
  };
  return peer;
}
