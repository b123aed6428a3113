import { SELF, createExecutionContext, env, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import type { Env } from "../src/env";
import { parRequestStoreFor } from "../src/objects/locate";
import { authorize } from "../src/routes/authorize";
import { pushedAuthorizationRequest } from "../src/routes/par";
import { renderError } from "../src/routes/support/errors";
import { ISSUER, REDIRECT_URI, credentials, errorOf, makeClient, post, verifyIdToken, type TestClient, type Tokens } from "./helpers/back-channel";
import { ClientKey } from "./helpers/client-keys";
import { DpopKey, decodePayload } from "./helpers/dpop";
import { Browser, authorizeParams, authorizeUrl, followLocal, responseParams, signIn, uniqueEmail } from "./helpers/front-channel";

/**
 * RFC 9126 end to end on workerd: /par authenticates the client as /token does and validates with /authorize's one
 * validator (JSON errors, never a redirect); /authorize takes the pushed request by its request_uri alone, once,
 * for the client that pushed it (C9), within PAR_TTL.
 */

afterEach(() => vi.useRealTimers());

interface Pushed {
  request_uri: string;
  expires_in: number;
}


/** POST /par authenticated as `c`, with extra headers (a DPoP proof). */
function push(c: TestClient, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  const auth = credentials(c);
  return post("/par", { ...auth.params, ...params }, { ...auth.headers, ...headers });
}

async function pushed(c: TestClient, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Pushed> {
  const response = await push(c, params, headers);
  if (response.status !== 201) throw new Error(`par: ${response.status} ${await response.text()}`);
  return response.json<Pushed>();
}

/** A browser signed in (through a pushed request) to a client that skips consent: its next authorize gets a code at once. */
async function signedInBrowser(c: TestClient): Promise<Browser> {
  const browser = new Browser();
  const { params } = await authorizeParams(c.clientId);
  const { request_uri } = await pushed(c, params);
  const start = await browser.get(authorizeUrl({ client_id: c.clientId, request_uri }));
  const done = await followLocal(browser, await signIn(browser, start.headers.get("location")!, uniqueEmail("par")));
  expect(responseParams(done).params.get("code")).toBeTruthy();
  return browser;
}

/** Every request held across the PAR shards, live or tombstoned: "nothing stored" is this not moving. */
async function pushedHeld(): Promise<number> {
  let total = 0;
  for (let shard = 0; shard < loadConfig(env).shardCount; shard++) total += await env.PAR_REQUESTS.get(env.PAR_REQUESTS.idFromName(`par:${shard}`)).size();
  return total;
}

function redeemCode(c: TestClient, code: string, verifier: string, headers: Record<string, string> = {}): Promise<Response> {
  const auth = credentials(c);
  return post("/token", { ...auth.params, grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier }, { ...auth.headers, ...headers });
}

describe("POST /par (RFC 9126)", () => {
  it("answers 201 with a request_uri; /authorize with client_id and request_uri goes on with the pushed parameters alone (§4), and the code redeems with the pushed PKCE", async () => {
    const rp = await makeClient({ skip_consent: true });
    const browser = await signedInBrowser(rp);
    const { verifier, params } = await authorizeParams(rp.clientId);
    const response = await push(rp, params);
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = await response.json<Pushed>();
    expect(body.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_.-]+$/);
    expect(body.expires_in).toBe(loadConfig(env).parTtl);

    // Parameters outside the pushed request are ignored (except client_id): another state, redirect URI, scope.
    const answer = await browser.get(authorizeUrl({ client_id: rp.clientId, request_uri: body.request_uri, state: "outside", redirect_uri: "https://evil.example/cb", scope: "openid profile" }));
    const { base, params: callback } = responseParams(answer);
    expect(base).toBe(REDIRECT_URI);
    expect(callback.get("state")).toBe(params.state);
    expect(callback.get("iss")).toBe(ISSUER);
    const tokens = await (await redeemCode(rp, callback.get("code")!, verifier)).json<Tokens>();
    expect(tokens.scope).toBe("openid email");
    expect((await verifyIdToken(tokens.id_token!, rp.clientId)).payload.nonce).toBe(params.nonce);
  });

  it("refuses what /authorize refuses, and what /par alone refuses, as JSON errors, never a redirect, storing nothing", async () => {
    const rp = await makeClient();
    const spa = await makeClient({ token_endpoint_auth_method: "none" });
    const { params } = await authorizeParams(rp.clientId);
    const without = (name: string) => Object.fromEntries(Object.entries(params).filter(([k]) => k !== name));
    const before = await pushedHeld();
    const cases: Array<[string, Promise<Response>, number, string]> = [
      ["unregistered redirect_uri", push(rp, { ...params, redirect_uri: "https://evil.example/cb" }), 400, "invalid_request"],
      ["no redirect_uri", push(rp, without("redirect_uri")), 400, "invalid_request"],
      ["no response_type", push(rp, without("response_type")), 400, "invalid_request"],
      ["response_type token", push(rp, { ...params, response_type: "token" }), 400, "unsupported_response_type"],
      ["unknown scope", push(rp, { ...params, scope: "bogus" }), 400, "invalid_scope"],
      ["plain PKCE", push(rp, { ...params, code_challenge_method: "plain" }), 400, "invalid_request"],
      ["bad claims", push(rp, { ...params, claims: "{not json" }), 400, "invalid_request"],
      ["bad id_token_hint", push(rp, { ...params, id_token_hint: "not.a.jwt" }), 400, "invalid_request"],
      ["malformed dpop_jkt", push(rp, { ...params, dpop_jkt: "short" }), 400, "invalid_request"],
      ["request_uri in a pushed request (§2.1)", push(rp, { ...params, request_uri: "urn:ietf:params:oauth:request_uri:x" }), 400, "invalid_request"],
      ["a public client without PKCE", push(spa, { ...without("code_challenge"), code_challenge_method: "" , client_id: spa.clientId }), 400, "invalid_request"],
      ["no client authentication", post("/par", params), 401, "invalid_client"],
      ["a wrong secret", post("/par", { ...params, client_secret: "wrong" }), 401, "invalid_client"],
      ["another client's client_id with these credentials", push(rp, { ...params, client_id: spa.clientId }), 400, "invalid_request"],
    ];
    for (const [name, pending, status, error] of cases) {
      const response = await pending;
      expect(response.headers.get("location"), name).toBeNull();
      expect(response.headers.get("content-type"), name).toBe("application/json");
      expect({ name, ...(await errorOf(response)) }).toEqual({ name, status, error });
    }
    const get = await SELF.fetch(`${ISSUER}/par`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect(await pushedHeld()).toBe(before);
  });

  it("is rate-limited as /token is: with RATE_LIMIT_TOKEN=N, N pushes pass and the next is 429 with Retry-After", async () => {
    const limited = { ...env, RATE_LIMIT_TOKEN: "3" } as Env;
    const rp = await makeClient();
    const { params } = await authorizeParams(rp.clientId);
    const auth = credentials(rp);
    const request = () =>
      new Request(`${ISSUER}/par`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...auth.headers, "cf-connecting-ip": "203.0.113.77" },
        body: new URLSearchParams(params).toString(),
      });
    const answers = await Promise.all(Array.from({ length: 4 }, () => pushedAuthorizationRequest(request(), limited).catch((e: unknown) => renderError(e))));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 201, 429]);
    expect(answers.find((a) => a.status === 429)!.headers.get("retry-after")).toMatch(/^\d+$/);
  });

  it("takes an assertion whose audience is the PAR endpoint's URL (§2), as well as the issuer", async () => {
    const key = await ClientKey.generate();
    const rp = await makeClient({ token_endpoint_auth_method: "private_key_jwt", jwks: key.jwks });
    const { params } = await authorizeParams(rp.clientId);
    for (const aud of [ISSUER, `${ISSUER}/par`, `${ISSUER}/token`]) {
      expect((await post("/par", { ...params, ...(await key.assertionParams(rp.clientId, aud)) })).status, aud).toBe(201);
    }
    expect(await errorOf(await post("/par", { ...params, ...(await key.assertionParams(rp.clientId, `${ISSUER}/authorize`)) }))).toEqual({ status: 401, error: "invalid_client" });
  });
});

describe("a request_uri is bound to its client, short-lived and usable once (C9)", () => {
  it("50 concurrent /authorize with one request_uri: exactly one code, 49 pages (invalid_request_uri), none redirected", async () => {
    const rp = await makeClient({ skip_consent: true });
    const browser = await signedInBrowser(rp);
    const { params } = await authorizeParams(rp.clientId);
    const { request_uri } = await pushed(rp, params);
    const answers = await Promise.all(Array.from({ length: 50 }, () => browser.get(authorizeUrl({ client_id: rp.clientId, request_uri }))));
    const codes = answers.filter((a) => a.status === 303 && new URL(a.headers.get("location")!).searchParams.get("code") !== null);
    expect(codes).toHaveLength(1);
    const refused = answers.filter((a) => !codes.includes(a));
    expect(refused).toHaveLength(49);
    for (const page of refused) {
      expect(page.status).toBe(400);
      expect(page.headers.get("location")).toBeNull();
      expect(await page.text()).toContain("already used");
    }
    // The replays were audited; deliver them now so no alarm is still running when the file ends.
    const store = parRequestStoreFor(env, request_uri)!;
    for (let i = 0; i < 100 && (await store.outboxStatus()).pending > 0; i++) {
      if (!(await runDurableObjectAlarm(store))) await new Promise((r) => setTimeout(r, 20));
    }
  });

  it("another client's request_uri is a page and changes nothing: its own client can still use it", async () => {
    const rp = await makeClient({ skip_consent: true });
    const other = await makeClient({ skip_consent: true });
    const browser = await signedInBrowser(rp);
    const { params } = await authorizeParams(rp.clientId);
    const { request_uri } = await pushed(rp, params);
    const foreign = await browser.get(authorizeUrl({ client_id: other.clientId, request_uri }));
    expect(foreign.status).toBe(400);
    expect(foreign.headers.get("location")).toBeNull();
    const own = await browser.get(authorizeUrl({ client_id: rp.clientId, request_uri }));
    expect(responseParams(own).params.get("code")).toBeTruthy();
  });

  it("after PAR_TTL it is a page (expired), and a made-up one is too", async () => {
    const rp = await makeClient({ skip_consent: true });
    const browser = await signedInBrowser(rp);
    const { params } = await authorizeParams(rp.clientId);
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(start);
    const { request_uri, expires_in } = await pushed(rp, params);
    vi.setSystemTime(start + expires_in * 1000 + 1000);
    const expired = await browser.get(authorizeUrl({ client_id: rp.clientId, request_uri }));
    expect(expired.status).toBe(400);
    expect(await expired.text()).toContain("expired");
    vi.useRealTimers();
    for (const made of [`${request_uri}x`, "urn:ietf:params:oauth:request_uri:0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "urn:ietf:params:oauth:request_uri:"]) {
      const page = await browser.get(authorizeUrl({ client_id: rp.clientId, request_uri: made }));
      expect(page.status, made).toBe(400);
      expect(page.headers.get("location")).toBeNull();
    }
  });
});

describe("requiring pushed requests (RFC 9126 §5, §6)", () => {
  it("a client registered with require_pushed_authorization_requests: a plain request is invalid_request at its redirect URI; pushed, it goes on", async () => {
    const rp = await makeClient({ require_pushed_authorization_requests: true });
    const { params } = await authorizeParams(rp.clientId);
    const plain = await new Browser().get(authorizeUrl(params));
    const { params: answer } = responseParams(plain);
    expect([answer.get("error"), answer.get("state")]).toEqual(["invalid_request", params.state]);
    const { request_uri } = await pushed(rp, params);
    const viaPar = await new Browser().get(authorizeUrl({ client_id: rp.clientId, request_uri }));
    expect(viaPar.headers.get("location")).toMatch(/^\/login\?interaction=/);
  });

  it("REQUIRE_PUSHED_AUTHORIZATION_REQUESTS=true does it for every client", async () => {
    const strict = { ...env, REQUIRE_PUSHED_AUTHORIZATION_REQUESTS: "true" } as Env;
    const rp = await makeClient();
    const { params } = await authorizeParams(rp.clientId);
    const response = await authorize(new Request(`${ISSUER}${authorizeUrl(params)}`, { headers: { "cf-connecting-ip": "203.0.113.78" } }), strict, createExecutionContext());
    expect(responseParams(response).params.get("error")).toBe("invalid_request");
  });
});

describe("DPoP at /par binds the code to the key (RFC 9449 §10.1)", () => {
  it("the proof's key, or dpop_jkt, binds the code; the two must agree; the code then needs a proof of that key", async () => {
    const rp = await makeClient({ skip_consent: true });
    const browser = await signedInBrowser(rp);
    const key = await DpopKey.generate();
    const other = await DpopKey.generate();

    const mismatch = await push(rp, (await authorizeParams(rp.clientId, { dpop_jkt: other.jkt })).params, { dpop: await key.proof("POST", `${ISSUER}/par`) });
    expect(await errorOf(mismatch)).toEqual({ status: 400, error: "invalid_request" });
    const badProof = await push(rp, (await authorizeParams(rp.clientId)).params, { dpop: await key.proof("POST", `${ISSUER}/token`) });
    expect(await errorOf(badProof)).toEqual({ status: 400, error: "invalid_dpop_proof" });

    for (const how of ["proof", "dpop_jkt"] as const) {
      const { verifier, params } = await authorizeParams(rp.clientId, how === "dpop_jkt" ? { dpop_jkt: key.jkt } : {});
      const headers: Record<string, string> = how === "proof" ? { dpop: await key.proof("POST", `${ISSUER}/par`) } : {};
      const { request_uri } = await pushed(rp, params, headers);
      const code = responseParams(await browser.get(authorizeUrl({ client_id: rp.clientId, request_uri }))).params.get("code")!;
      expect(await errorOf(await redeemCode(rp, code, verifier)), how).toEqual({ status: 400, error: "invalid_grant" });
      expect(await errorOf(await redeemCode(rp, code, verifier, { dpop: await other.proof("POST", `${ISSUER}/token`) })), how).toEqual({ status: 400, error: "invalid_grant" });
      const redeemed = await redeemCode(rp, code, verifier, { dpop: await key.proof("POST", `${ISSUER}/token`) });
      expect(redeemed.status, how).toBe(200);
      expect(decodePayload((await redeemed.json<Tokens>()).access_token).cnf).toEqual({ jkt: key.jkt });
    }
  });
});
