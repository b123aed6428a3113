// @ts-check
/**
 * The scenarios, the same for every server (each server names its own paths and credentials; see ours.mjs and
 * peer.mjs). An operation is one request, except authorize → token, which is two (a round trip of a signed-in user).
 * An operation counts as ok only when the answer is the one a client wants (a 200 with a new refresh token, an
 * introspection that says active, a redirect with a code and then tokens), so a server that forgets state under
 * load shows it in the error column, not as speed.
 */
import { performance } from "node:perf_hooks";
import { mapLimit } from "./http.mjs";
import { fail } from "./load.mjs";

/** @typedef {import("./ours.mjs").Ours | Awaited<ReturnType<typeof import("./peer.mjs").startPeer>>} Target */
/** @typedef {import("./load.mjs").LoadRequest} LoadRequest */
/** @typedef {import("./load.mjs").RoundStats} RoundStats */
/** @typedef {{ token: string, inflight: boolean, broken: boolean, draining: boolean }} Chain  one connection's refresh chain */

const FORM = "application/x-www-form-urlencoded";

/**
 * @typedef {object} Scenario
 * @property {string} id
 * @property {string} title
 * @property {string} unit          what one operation is
 * @property {number} requestsPerOp
 * @property {(target: Target, maxConnections: number) => Promise<any>} [prepare]  once per server, before the first round
 * @property {(target: Target, state: any, connections: number) => Promise<void>} [beforeRound]
 * @property {(target: Target, state: any, connection: number, stats: RoundStats) => LoadRequest[]} requestsFor
 * @property {(state: any) => boolean} [drained]  after a round's window: whether it may stop without cutting state off
 */

/**
 * A one-request operation whose answer is checked by `ok`.
 * @param {RoundStats} stats
 * @param {Omit<LoadRequest, "onResponse">} request
 * @param {(status: number, body: string) => boolean} ok
 * @returns {LoadRequest[]}
 */
function single(stats, request, ok) {
  return [
    {
      ...request,
      onResponse(status, body) {
        if (ok(status, body)) stats.ok++;
        else fail(stats, status, body);
      },
    },
  ];
}

/** @param {string} text */
function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/**
 * @param {Record<string, any>} headers
 * @param {string} name
 */
function header(headers, name) {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return Array.isArray(v) ? String(v[0]) : String(v);
  return null;
}

/**
 * Access tokens for /userinfo and /introspect, one per connection (each its own grant, as many users would have).
 * @param {Target} target
 * @param {number} count
 */
async function userinfoTokens(target, count) {
  return { tokens: await mapLimit(Array.from({ length: count }, (_, i) => i), 4, (i) => target.mintUserinfoToken(i)) };
}

/** @type {Scenario[]} */
export const SCENARIOS = [
  {
    id: "discovery",
    title: "discovery",
    unit: "request",
    requestsPerOp: 1,
    requestsFor: (target, _state, _i, stats) => single(stats, { method: "GET", path: target.paths.discovery }, (s, b) => s === 200 && b.includes('"issuer"')),
  },
  {
    id: "jwks",
    title: "JWKS",
    unit: "request",
    requestsPerOp: 1,
    requestsFor: (target, _state, _i, stats) => single(stats, { method: "GET", path: target.paths.jwks }, (s, b) => s === 200 && b.includes('"keys"')),
  },
  {
    id: "client_credentials",
    title: "client_credentials",
    unit: "request",
    requestsPerOp: 1,
    requestsFor: (target, _state, _i, stats) =>
      single(
        stats,
        { method: "POST", path: target.paths.token, headers: { authorization: target.serviceAuth, "content-type": FORM }, body: target.clientCredentialsBody },
        (s, b) => s === 200 && b.includes('"access_token"'),
      ),
  },
  {
    id: "userinfo",
    title: "userinfo",
    unit: "request",
    requestsPerOp: 1,
    prepare: userinfoTokens,
    requestsFor: (target, state, i, stats) =>
      single(
        stats,
        { method: "GET", path: target.paths.userinfo, headers: { authorization: `Bearer ${state.tokens[i % state.tokens.length]}` } },
        (s, b) => s === 200 && b.includes('"sub"'),
      ),
  },
  {
    id: "introspection",
    title: "introspection",
    unit: "request",
    requestsPerOp: 1,
    prepare: userinfoTokens,
    requestsFor: (target, state, i, stats) =>
      single(
        stats,
        {
          method: "POST",
          path: target.paths.introspect,
          headers: { authorization: target.webAuth, "content-type": FORM },
          body: `token=${encodeURIComponent(state.tokens[i % state.tokens.length])}`,
        },
        (s, b) => s === 200 && target.introspectionOk(b),
      ),
  },
  {
    id: "refresh",
    title: "refresh rotation",
    unit: "request",
    requestsPerOp: 1,
    // One chain per connection: each request presents the refresh token the previous answer gave, so every token
    // is used exactly once. After the window the chains send discovery requests instead, so none is cut off half-way;
    // a chain that failed is replaced by a spare grant at once, and by a new grant before the next round.
    async prepare() {
      return { chains: /** @type {Chain[]} */ ([]), spares: /** @type {string[]} */ ([]) };
    },
    async beforeRound(target, state, connections) {
      const stale = [];
      for (let i = 0; i < connections; i++) {
        const chain = state.chains[i];
        if (!chain || chain.inflight || chain.broken) stale.push(i);
      }
      const fresh = await mapLimit(stale, 4, async (i) => ({ i, token: (await target.mintGrant(i)).refreshToken }));
      for (const { i, token } of fresh) state.chains[i] = { token, inflight: false, broken: false, draining: false };
      while (state.spares.length < 10) state.spares.push((await target.mintGrant(state.spares.length)).refreshToken);
    },
    drained: (state) => state.chains.every((/** @type {Chain} */ c) => !c.inflight),
    requestsFor: (target, state, i, stats) => {
      /** @type {Chain} */
      const chain = state.chains[i];
      return [
        {
          method: "POST",
          path: target.paths.token,
          headers: { authorization: target.webAuth, "content-type": FORM },
          body: target.refreshBody(chain.token),
          setupRequest(req) {
            chain.draining = stats.closed || chain.broken;
            if (chain.draining) return { ...req, method: "GET", path: target.paths.discovery, body: undefined };
            chain.inflight = true;
            return { ...req, method: "POST", path: target.paths.token, body: target.refreshBody(chain.token) };
          },
          onResponse(status, body) {
            if (chain.draining) return;
            chain.inflight = false;
            if (status === 200) {
              const next = /** @type {{ refresh_token?: string }} */ (safeJson(body)).refresh_token;
              if (next) {
                chain.token = next;
                stats.ok++;
                return;
              }
            }
            fail(stats, status, body);
            const spare = state.spares.pop();
            if (spare) chain.token = spare;
            else chain.broken = true;
          },
        },
      ];
    },
  },
  {
    id: "authorize",
    title: "authorize → token",
    unit: "round trip (2 requests)",
    requestsPerOp: 2,
    // A signed-in user (session cookie) whose consent is remembered: /authorize answers with a redirect carrying a
    // code, which the client redeems at /token (PKCE, client_secret_basic) for an access token and an ID token.
    // Sessions a server has forgotten since the sign-in (the in-memory peer's LRU) are signed in again first.
    async prepare(target) {
      const again = await target.ensureSignedIn();
      if (again > 0) process.stderr.write(`      ${target.name}: ${again} users had lost their session and signed in again\n`);
      return null;
    },
    requestsFor: (target, _state, i, stats) => {
      const { path, cookie } = target.authorizeRequest(i);
      /** @type {LoadRequest[]} */
      const requests = [
        {
          method: "GET",
          path,
          headers: { cookie },
          setupRequest(req, context) {
            context.t0 = performance.now();
            return req;
          },
          onResponse(status, _body, context, headers) {
            // Anything but a redirect to the client with a code (a sign-in page, say: a forgotten session) leaves no code.
            const location = status >= 300 && status < 400 ? header(headers, "location") : null;
            context.code = location?.startsWith(target.redirectUri) ? new URL(location).searchParams.get("code") : null;
            if (!context.code) context.authorizeAnswer = `${status} ${location ?? ""}`;
          },
        },
        {
          method: "POST",
          path: target.paths.token,
          headers: { authorization: target.webAuth, "content-type": FORM },
          setupRequest(req, context) {
            return { ...req, body: target.codeTokenBody(context.code ?? "no-code") };
          },
          onResponse(status, body, context) {
            if (status === 200 && body.includes('"id_token"')) {
              stats.ok++;
              stats.latencies.push(performance.now() - context.t0);
            } else {
              fail(stats, status, `${body} (authorize gave ${context.code ? "a code" : `no code: ${context.authorizeAnswer}`})`);
            }
          },
        },
      ];
      return requests;
    },
  },
];
