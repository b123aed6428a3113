import { createExecutionContext, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import { authorize } from "../src/routes/authorize";
import { clearClientKeyCache } from "../src/routes/support/client-keys";
import { renderError } from "../src/routes/support/errors";
import { token } from "../src/routes/token";
import { ISSUER, REDIRECT_URI, errorOf, makeClient, makeUser, makeCode, post, verifyIdToken, type TestClient, type Tokens } from "./helpers/back-channel";
import { ClientKey, unsignedRequestObject } from "./helpers/client-keys";
import { Browser, authorizeUrl, followLocal, formFields, pkcePair, responseParams, signIn, uniqueAddress, uniqueEmail } from "./helpers/front-channel";

/**
 * Signed request objects (RFC 9101, OIDC Core §6.1) at /authorize and /par, and where their refusals go: to the
 * redirect URI the object names, in the response mode it asks for, with its state (OIDC Core §3.1.2.6, Form Post
 * Response Mode) — read from the object before its signature is checked. Client keys from jwks and from jwks_uri.
 */

afterEach(() => {
  vi.restoreAllMocks();
  clearClientKeyCache();
});

async function requestParams(clientId: string, extra: Record<string, unknown> = {}) {
  const { verifier, challenge } = await pkcePair();
  const params: Record<string, unknown> = {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: "openid email",
    state: `inner-${crypto.randomUUID()}`,
    nonce: `n-${crypto.randomUUID()}`,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  };
  return { verifier, params };
}

async function keyedClient(fields: Parameters<typeof makeClient>[0] = {}): Promise<TestClient & { key: ClientKey }> {
  const key = await ClientKey.generate();
  return { ...(await makeClient({ skip_consent: true, jwks: key.jwks, ...fields })), key };
}

/** A browser signed in to the client (which skips consent), through a request object. */
async function signedInBrowser(c: TestClient & { key: ClientKey }): Promise<Browser> {
  const browser = new Browser();
  const { params } = await requestParams(c.clientId);
  const start = await browser.get(authorizeUrl({ client_id: c.clientId, request: await c.key.requestObject(c.clientId, params) }));
  expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);
  const done = await followLocal(browser, await signIn(browser, start.headers.get("location")!, uniqueEmail("jar")));
  expect(responseParams(done).params.get("code")).toBeTruthy();
  return browser;
}

/** The parameters an authorization response carries, whatever its mode: a redirect's query or fragment, or a form_post page. */
async function answerOf(response: Response): Promise<{ mode: string; target: string; params: Record<string, string> }> {
  if (response.status === 303) {
    const url = new URL(response.headers.get("location")!);
    const mode = url.hash ? "fragment" : "query";
    const params = Object.fromEntries(mode === "fragment" ? new URLSearchParams(url.hash.slice(1)) : url.searchParams);
    return { mode, target: `${url.origin}${url.pathname}`, params };
  }
  const page = await response.text();
  const action = /<form method="post" action="([^"]*)"/.exec(page)?.[1];
  return { mode: response.status === 200 && action ? "form_post" : `page ${response.status}`, target: action ?? "", params: formFields(page) };
}

describe("request objects at /authorize (RFC 9101 §5)", () => {
  it("the object's parameters are the request; those outside are ignored but client_id; the code carries the object's state, nonce and PKCE", async () => {
    const rp = await keyedClient();
    const browser = await signedInBrowser(rp);
    const { verifier, params } = await requestParams(rp.clientId, { max_age: 86400, claims: { id_token: { email: null } } });
    const request = await rp.key.requestObject(rp.clientId, params);
    const answer = await browser.get(authorizeUrl({ client_id: rp.clientId, request, state: "outside", scope: "openid profile", response_mode: "fragment" }));
    const { mode, target, params: callback } = await answerOf(answer);
    expect([mode, target, callback.state]).toEqual(["query", REDIRECT_URI, params.state]);
    const auth = { authorization: `Basic ${btoa(`${rp.clientId}:${rp.secret}`)}` };
    const tokens = await (
      await post("/token", { grant_type: "authorization_code", code: callback.code!, redirect_uri: REDIRECT_URI, code_verifier: verifier }, auth)
    ).json<Tokens>();
    expect(tokens.scope).toBe("openid email");
    expect((await verifyIdToken(tokens.id_token!, rp.clientId)).payload.nonce).toBe(params.nonce);
  });

  it("every refusal goes to the object's redirect URI, in its response mode (form_post, fragment), with its state — not the outer ones", async () => {
    const rp = await keyedClient();
    const stranger = await ClientKey.generate();
    const { params } = await requestParams(rp.clientId, { response_mode: "form_post" });
    const now = Math.floor(Date.now() / 1000);
    const replayed = await rp.key.requestObject(rp.clientId, params);
    const firstUse = await new Browser().get(authorizeUrl({ client_id: rp.clientId, request: replayed }));
    expect(firstUse.status).toBe(303); // to the sign-in page: the object was good, and is now used
    const cases: Record<string, string> = {
      "a wrong signature (another key)": await stranger.requestObject(rp.clientId, params, { header: { kid: rp.key.jwk.kid } }),
      "a wrong aud": await rp.key.requestObject(rp.clientId, params, { claims: { aud: "https://other-op.example" } }),
      "expired": await rp.key.requestObject(rp.clientId, params, { claims: { iat: now - 600, nbf: now - 600, exp: now - 300 } }),
      "not yet valid (nbf)": await rp.key.requestObject(rp.clientId, params, { claims: { nbf: now + 600, exp: now + 900 } }),
      "a replayed jti": replayed,
      "alg none": unsignedRequestObject({ ...params, iss: rp.clientId, aud: ISSUER, exp: now + 60, jti: crypto.randomUUID() }),
      "another iss": await rp.key.requestObject(rp.clientId, params, { claims: { iss: "someone-else" } }),
      "another client_id inside": await rp.key.requestObject(rp.clientId, { ...params, client_id: "someone-else" }),
      "no exp": await rp.key.requestObject(rp.clientId, params, { claims: { exp: undefined } }),
      "no jti": await rp.key.requestObject(rp.clientId, params, { claims: { jti: undefined } }),
      "a lifetime over an hour": await rp.key.requestObject(rp.clientId, params, { claims: { exp: now + 7200 } }),
      "a request_uri inside": await rp.key.requestObject(rp.clientId, { ...params, request_uri: "urn:ietf:params:oauth:request_uri:x" }),
      "typ dpop+jwt": await rp.key.requestObject(rp.clientId, params, { header: { typ: "dpop+jwt" } }),
    };
    for (const [name, request] of Object.entries(cases)) {
      const answer = await answerOf(await new Browser().get(authorizeUrl({ client_id: rp.clientId, request, state: "outer-state", response_mode: "query" })));
      expect({ name, ...answer }).toEqual({ name, mode: "form_post", target: REDIRECT_URI, params: { error: "invalid_request_object", error_description: expect.any(String), state: params.state, iss: ISSUER } });
    }
    // Fragment, when the object asks for it.
    const fragment = await answerOf(
      await new Browser().get(authorizeUrl({ client_id: rp.clientId, request: await stranger.requestObject(rp.clientId, { ...params, response_mode: "fragment" }) })),
    );
    expect([fragment.mode, fragment.params.error, fragment.params.state]).toEqual(["fragment", "invalid_request_object", params.state]);
  });

  it("an object that is not a JWT is refused where the outer parameters say; one naming an unregistered redirect URI is a page", async () => {
    const rp = await keyedClient();
    const { params } = await requestParams(rp.clientId);
    const outer = { client_id: rp.clientId, redirect_uri: REDIRECT_URI, state: "outer-state", response_type: "code" };
    const garbage = await answerOf(await new Browser().get(authorizeUrl({ ...outer, request: "not-a-jwt" })));
    expect([garbage.mode, garbage.params.error, garbage.params.state]).toEqual(["query", "invalid_request_object", "outer-state"]);
    const evil = await rp.key.requestObject(rp.clientId, { ...params, redirect_uri: "https://evil.example/cb" });
    const page = await new Browser().get(authorizeUrl({ ...outer, request: evil }));
    expect(page.status).toBe(400);
    expect(page.headers.get("location")).toBeNull();
    expect(await page.text()).not.toContain("evil.example");
  });

  it("request_object_signing_alg narrows the algorithms; ALLOW_UNSIGNED_REQUEST_OBJECTS lets alg none through", async () => {
    const rp = await keyedClient({ request_object_signing_alg: "PS256" });
    const { params } = await requestParams(rp.clientId);
    const es256 = await answerOf(await new Browser().get(authorizeUrl({ client_id: rp.clientId, request: await rp.key.requestObject(rp.clientId, params) })));
    expect(es256.params.error).toBe("invalid_request_object");

    const lax = { ...env, ALLOW_UNSIGNED_REQUEST_OBJECTS: "true" } as Env;
    const open = await makeClient();
    const { params: openParams } = await requestParams(open.clientId);
    const request = new Request(`${ISSUER}${authorizeUrl({ client_id: open.clientId, request: unsignedRequestObject(openParams) })}`, { headers: { "cf-connecting-ip": uniqueAddress() } });
    const taken = await authorize(request, lax, createExecutionContext());
    expect(taken.headers.get("location")).toMatch(/^\/login\?interaction=/);
  });
});

describe("request objects at /par (RFC 9126 §3)", () => {
  it("a pushed object is verified once at /par; its refusal there is a JSON invalid_request_object", async () => {
    const rp = await keyedClient();
    const auth = { authorization: `Basic ${btoa(`${rp.clientId}:${rp.secret}`)}` };
    const { params } = await requestParams(rp.clientId);
    const request = await rp.key.requestObject(rp.clientId, params);
    const first = await post("/par", { request }, auth);
    expect(first.status).toBe(201);
    const replay = await post("/par", { request }, auth);
    expect(replay.headers.get("content-type")).toBe("application/json");
    expect(await errorOf(replay)).toEqual({ status: 400, error: "invalid_request_object" });
    // The pushed object's parameters are the request: client_id and request_uri start it.
    const { request_uri } = await first.json<{ request_uri: string }>();
    expect((await new Browser().get(authorizeUrl({ client_id: rp.clientId, request_uri }))).headers.get("location")).toMatch(/^\/login\?interaction=/);
  });
});

describe("client keys from jwks_uri", () => {
  const JWKS_URI = "https://rp.example/jwks.json";

  function stubJwks(answer: () => Response | Promise<Response>) {
    return vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      if (String(input instanceof Request ? input.url : input) !== JWKS_URI) throw new Error(`unexpected fetch of ${String(input)}`);
      return answer();
    });
  }

  function tokenWithAssertion(c: TestClient, assertion: Record<string, string>, code: string, verifier: string): Promise<Response> {
    const request = new Request(`${ISSUER}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": uniqueAddress() },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, ...assertion }).toString(),
    });
    return token(request, env as Env, createExecutionContext()).catch((error: unknown) => renderError(error));
  }

  it("fetches the client's keys for private_key_jwt, keeps them, and refetches once for an unknown kid (a rotated key)", async () => {
    const first = await ClientKey.generate();
    const rotated = await ClientKey.generate();
    const rp = await makeClient({ token_endpoint_auth_method: "private_key_jwt", jwks_uri: JWKS_URI });
    const user = await makeUser();
    let published = first.jwks;
    const fetched = stubJwks(() => Response.json(published));
    for (let i = 0; i < 2; i++) {
      const code = await makeCode(rp.clientId, user.id);
      expect((await tokenWithAssertion(rp, await first.assertionParams(rp.clientId), code.code, code.verifier)).status).toBe(200);
    }
    expect(fetched).toHaveBeenCalledTimes(1);
    // The client rotates its key: an unknown kid makes the OP fetch again (the cooldown has passed).
    published = rotated.jwks;
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(start + 31_000);
    const code = await makeCode(rp.clientId, user.id);
    expect((await tokenWithAssertion(rp, await rotated.assertionParams(rp.clientId), code.code, code.verifier)).status).toBe(200);
    expect(fetched).toHaveBeenCalledTimes(2);
    // Within the cooldown, another unknown kid does not fetch again.
    const stranger = await ClientKey.generate();
    const next = await makeCode(rp.clientId, user.id);
    expect(await errorOf(await tokenWithAssertion(rp, await stranger.assertionParams(rp.clientId), next.code, next.verifier))).toEqual({ status: 401, error: "invalid_client" });
    expect(fetched).toHaveBeenCalledTimes(2);
    vi.useRealTimers();
  });

  it("a jwks_uri answering too much, not a key set, not 200, or a redirect gives no keys: invalid_client, and nothing is kept", async () => {
    const key = await ClientKey.generate();
    const rp = await makeClient({ token_endpoint_auth_method: "private_key_jwt", jwks_uri: JWKS_URI });
    const user = await makeUser();
    const answers: Array<() => Response> = [
      () => new Response(JSON.stringify({ keys: [key.jwk], padding: "x".repeat(70_000) }), { headers: { "content-type": "application/json" } }),
      () => Response.json({ not: "a key set" }),
      () => new Response("oops", { status: 500 }),
      () => new Response(null, { status: 302, headers: { location: "https://evil.example/jwks.json" } }),
      () => new Response("{not json"),
    ];
    for (const answer of answers) {
      clearClientKeyCache();
      vi.restoreAllMocks();
      const fetched = stubJwks(answer);
      const code = await makeCode(rp.clientId, user.id);
      expect(await errorOf(await tokenWithAssertion(rp, await key.assertionParams(rp.clientId), code.code, code.verifier))).toEqual({ status: 401, error: "invalid_client" });
      expect(fetched).toHaveBeenCalledTimes(1);
    }
  });

  it("a jwks_uri that does not answer in 5 s gives no keys; one on plain http off loopback is never fetched", async () => {
    const key = await ClientKey.generate();
    const user = await makeUser();
    const slow = await makeClient({ token_endpoint_auth_method: "private_key_jwt", jwks_uri: JWKS_URI });
    // The client's server takes the request and never answers: the fetch gives up when its signal does.
    const hanging = vi.spyOn(globalThis, "fetch").mockImplementation(
      (_input, init) => new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(new Error("timed out")))),
    );
    const code = await makeCode(slow.clientId, user.id);
    expect(await errorOf(await tokenWithAssertion(slow, await key.assertionParams(slow.clientId), code.code, code.verifier))).toEqual({ status: 401, error: "invalid_client" });
    expect(hanging).toHaveBeenCalledTimes(1);
    vi.restoreAllMocks();
    // Stored behind the admin API's back (it refuses such a URI): still never fetched.
    const plain = await makeClient({ token_endpoint_auth_method: "private_key_jwt", jwks_uri: "http://rp.example/jwks.json" });
    const never = vi.spyOn(globalThis, "fetch");
    const other = await makeCode(plain.clientId, user.id);
    expect(await errorOf(await tokenWithAssertion(plain, await key.assertionParams(plain.clientId), other.code, other.verifier))).toEqual({ status: 401, error: "invalid_client" });
    expect(never).not.toHaveBeenCalled();
  });

  it("a request object is checked with keys from jwks_uri too", async () => {
    const key = await ClientKey.generate();
    const rp = await makeClient({ jwks_uri: JWKS_URI });
    stubJwks(() => Response.json(key.jwks));
    const { params } = await requestParams(rp.clientId);
    const request = new Request(`${ISSUER}${authorizeUrl({ client_id: rp.clientId, request: await key.requestObject(rp.clientId, params) })}`, { headers: { "cf-connecting-ip": uniqueAddress() } });
    const response = await authorize(request, env as Env, createExecutionContext());
    expect(response.headers.get("location")).toMatch(/^\/login\?interaction=/);
  });
});
