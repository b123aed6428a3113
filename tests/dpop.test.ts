import { SELF, createExecutionContext, env } from "cloudflare:test";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import type { Env } from "../src/env";
import { nonceWindow } from "../src/oauth/dpop-nonce";
import { token } from "../src/routes/token";
import { userinfo } from "../src/routes/userinfo";
import { ISSUER, REDIRECT_URI, credentials, errorOf, makeClient, makeCode, makeUser, post, postAs, type TestClient, type Tokens } from "./helpers/back-channel";
import { DpopKey, decodePayload } from "./helpers/dpop";

/**
 * RFC 9449 at the endpoints, on workerd with real objects: proofs at /token for every grant and at /userinfo, bound
 * tokens, codes and refresh tokens, the proof's jti accepted once (C10), each refusal with its error, and server nonces.
 */

const TOKEN_URL = `${ISSUER}/token`;
const USERINFO_URL = `${ISSUER}/userinfo`;

function tokenRequest(c: TestClient, params: Record<string, string>, proof?: string, targetEnv?: Env): Promise<Response> {
  const auth = credentials(c);
  const headers: Record<string, string> = { ...auth.headers, ...(proof !== undefined ? { dpop: proof } : {}) };
  if (targetEnv === undefined) return post("/token", { ...auth.params, ...params }, headers);
  const request = new Request(TOKEN_URL, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ ...auth.params, ...params }).toString(),
  });
  return token(request, targetEnv, createExecutionContext()).catch(errorResponse);
}

/** Route handlers called directly throw their OAuth errors; the router renders them. This renders them the same way. */
async function errorResponse(error: unknown): Promise<Response> {
  const { renderError } = await import("../src/routes/support/errors");
  return renderError(error, "api");
}

function userinfoRequest(accessToken: string, proof: string | null, scheme = "DPoP", targetEnv?: Env): Promise<Response> {
  const headers: Record<string, string> = { authorization: `${scheme} ${accessToken}`, ...(proof !== null ? { dpop: proof } : {}) };
  if (targetEnv === undefined) return SELF.fetch(USERINFO_URL, { headers });
  return userinfo(new Request(USERINFO_URL, { headers }), targetEnv).catch(errorResponse);
}

async function codeTokens(c: TestClient, key: DpopKey | null, overrides: Parameters<typeof makeCode>[2] = {}): Promise<{ response: Response; code: Awaited<ReturnType<typeof makeCode>> }> {
  const user = await makeUser();
  const code = await makeCode(c.clientId, user.id, overrides);
  const params = { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier };
  const response = await tokenRequest(c, params, key === null ? undefined : await key.proof("POST", TOKEN_URL));
  return { response, code };
}

describe("DPoP-bound tokens from /token (RFC 9449 §5)", () => {
  it("a proof at the code grant binds the access token (cnf.jkt, token_type DPoP); /userinfo takes it with a proof, never as Bearer; introspection shows cnf", async () => {
    const rp = await makeClient();
    const key = await DpopKey.generate();
    const { response } = await codeTokens(rp, key);
    expect(response.status).toBe(200);
    const tokens = await response.json<Tokens>();
    expect(tokens.token_type).toBe("DPoP");
    expect(decodePayload(tokens.access_token).cnf).toEqual({ jkt: key.jkt });

    const ok = await userinfoRequest(tokens.access_token, await key.proof("GET", USERINFO_URL, { accessToken: tokens.access_token }));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ sub: expect.any(String) });

    // RFC 9449 §7.1: a bound token is not a Bearer token.
    const asBearer = await userinfoRequest(tokens.access_token, null, "Bearer");
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get("www-authenticate")).toMatch(/^Bearer realm="http:\/\/localhost", error="invalid_token"/);
    // Nor does another key's proof, or none, make it usable.
    const otherKey = await DpopKey.generate();
    const stolen = await userinfoRequest(tokens.access_token, await otherKey.proof("GET", USERINFO_URL, { accessToken: tokens.access_token }));
    expect(stolen.status).toBe(401);
    expect(stolen.headers.get("www-authenticate")).toMatch(/^DPoP realm="http:\/\/localhost", error="invalid_token"/);
    const noProof = await userinfoRequest(tokens.access_token, null);
    expect(noProof.status).toBe(401);
    expect(noProof.headers.get("www-authenticate")).toMatch(/^DPoP .*error="invalid_dpop_proof"/);

    const introspected = await (await postAs(rp, "/introspect", { token: tokens.access_token })).json<Record<string, unknown>>();
    expect(introspected).toMatchObject({ active: true, token_type: "DPoP", cnf: { jkt: key.jkt } });
  });

  it("an unbound token with the DPoP scheme is refused; without a proof the code grant still gives a Bearer token", async () => {
    const rp = await makeClient();
    const { response } = await codeTokens(rp, null);
    const tokens = await response.json<Tokens>();
    expect(tokens.token_type).toBe("Bearer");
    expect(decodePayload(tokens.access_token).cnf).toBeUndefined();
    const key = await DpopKey.generate();
    const refused = await userinfoRequest(tokens.access_token, await key.proof("GET", USERINFO_URL, { accessToken: tokens.access_token }));
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("a code bound to a key (dpop_jkt, §10) needs a proof of that key: none or another key is invalid_grant and burns nothing", async () => {
    const rp = await makeClient();
    const key = await DpopKey.generate();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id, { dpopJkt: key.jkt });
    const params = { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier };
    expect(await errorOf(await tokenRequest(rp, params))).toEqual({ status: 400, error: "invalid_grant" });
    const other = await DpopKey.generate();
    expect(await errorOf(await tokenRequest(rp, params, await other.proof("POST", TOKEN_URL)))).toEqual({ status: 400, error: "invalid_grant" });
    const redeemed = await tokenRequest(rp, params, await key.proof("POST", TOKEN_URL));
    expect(redeemed.status).toBe(200);
    expect(decodePayload((await redeemed.json<Tokens>()).access_token).cnf).toEqual({ jkt: key.jkt });
  });

  it("a public client's refresh token is bound to its key: without a proof or with another key invalid_grant; with the key it rotates", async () => {
    const spa = await makeClient({ token_endpoint_auth_method: "none" });
    const key = await DpopKey.generate();
    const { response } = await codeTokens(spa, key);
    const tokens = await response.json<Tokens>();
    const refresh = (proof?: string) => tokenRequest(spa, { grant_type: "refresh_token", refresh_token: tokens.refresh_token! }, proof);
    expect(await errorOf(await refresh())).toEqual({ status: 400, error: "invalid_grant" });
    const other = await DpopKey.generate();
    expect(await errorOf(await refresh(await other.proof("POST", TOKEN_URL)))).toEqual({ status: 400, error: "invalid_grant" });
    // Refusals spend nothing: the right key still rotates it.
    const rotated = await refresh(await key.proof("POST", TOKEN_URL));
    expect(rotated.status).toBe(200);
    const next = await rotated.json<Tokens>();
    expect(next.token_type).toBe("DPoP");
    expect(decodePayload(next.access_token).cnf).toEqual({ jkt: key.jkt });
  });

  it("a confidential client's refresh token is not bound (§5): each refresh binds the new access token to that request's key", async () => {
    const rp = await makeClient();
    const key = await DpopKey.generate();
    const tokens = await (await codeTokens(rp, key)).response.json<Tokens>();
    const plain = await tokenRequest(rp, { grant_type: "refresh_token", refresh_token: tokens.refresh_token! });
    expect(plain.status).toBe(200);
    const plainTokens = await plain.json<Tokens>();
    expect(plainTokens.token_type).toBe("Bearer");
    const other = await DpopKey.generate();
    const bound = await tokenRequest(rp, { grant_type: "refresh_token", refresh_token: plainTokens.refresh_token! }, await other.proof("POST", TOKEN_URL));
    expect(decodePayload((await bound.json<Tokens>()).access_token).cnf).toEqual({ jkt: other.jkt });
  });

  it("client_credentials with a proof gives a bound token; a client registered with dpop_bound_access_tokens must send one", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [] });
    const key = await DpopKey.generate();
    const bound = await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL));
    expect(await bound.json()).toMatchObject({ token_type: "DPoP" });
    const strict = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [], dpop_bound_access_tokens: true });
    expect(await errorOf(await tokenRequest(strict, { grant_type: "client_credentials" }))).toEqual({ status: 400, error: "invalid_dpop_proof" });
    expect((await tokenRequest(strict, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL))).status).toBe(200);
  });
});

describe("a proof is accepted once within its window (C10, RFC 9449 §11.1)", () => {
  it("a replayed proof is invalid_dpop_proof at /token", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [] });
    const key = await DpopKey.generate();
    const proof = await key.proof("POST", TOKEN_URL);
    expect((await tokenRequest(api, { grant_type: "client_credentials" }, proof)).status).toBe(200);
    expect(await errorOf(await tokenRequest(api, { grant_type: "client_credentials" }, proof))).toEqual({ status: 400, error: "invalid_dpop_proof" });
  });

  it("50 concurrent token requests with one proof: exactly one 200, 49 invalid_dpop_proof", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [] });
    const key = await DpopKey.generate();
    const proof = await key.proof("POST", TOKEN_URL);
    const answers = await Promise.all(Array.from({ length: 50 }, () => tokenRequest(api, { grant_type: "client_credentials" }, proof)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    const refused = await Promise.all(answers.filter((a) => a.status !== 200).map(errorOf));
    expect(refused).toEqual(Array.from({ length: 49 }, () => ({ status: 400, error: "invalid_dpop_proof" })));
  });

  it("50 concurrent /userinfo requests with one proof: exactly one 200, 49 401 invalid_dpop_proof with a DPoP challenge", async () => {
    const rp = await makeClient();
    const key = await DpopKey.generate();
    const tokens = await (await codeTokens(rp, key)).response.json<Tokens>();
    const proof = await key.proof("GET", USERINFO_URL, { accessToken: tokens.access_token });
    const answers = await Promise.all(Array.from({ length: 50 }, () => userinfoRequest(tokens.access_token, proof)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused).toHaveLength(49);
    for (const r of refused) {
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toMatch(/^DPoP realm="http:\/\/localhost", error="invalid_dpop_proof", error_description="the DPoP proof was already used \(jti\)", algs="/);
    }
  });
});

describe("each broken rule of a proof is refused with invalid_dpop_proof (RFC 9449 §4.3)", () => {
  it("at /token (400) and, with ath, at /userinfo (401 + DPoP challenge)", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [] });
    const key = await DpopKey.generate();
    const now = Math.floor(Date.now() / 1000);
    const hmac = await new SignJWT({ htm: "POST", htu: TOKEN_URL, iat: now, jti: "j-hs" })
      .setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: { kty: "oct", k: "c2VjcmV0" } as never })
      .sign(new TextEncoder().encode("secret-secret-secret-secret-secret"));
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    const withPrivate = await new SignJWT({ htm: "POST", htu: TOKEN_URL, iat: now, jti: "j-priv" })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await exportJWK(privateKey) })
      .sign(privateKey);
    const otherKey = await exportJWK(publicKey);
    const cases: Record<string, string> = {
      "another htu": await key.proof("POST", `${ISSUER}/userinfo`),
      "another origin": await key.proof("POST", "https://evil.example/token"),
      "another htm": await key.proof("GET", TOKEN_URL),
      "an old iat": await key.proof("POST", TOKEN_URL, { iat: now - 3600 }),
      "an iat far in the future": await key.proof("POST", TOKEN_URL, { iat: now + 120 }),
      "no jti": await key.proof("POST", TOKEN_URL, { jti: null }),
      "no iat": await key.proof("POST", TOKEN_URL, { iat: "x" as unknown as number }),
      "typ JWT": await key.proof("POST", TOKEN_URL, { header: { typ: "JWT" } }),
      "a symmetric alg": hmac,
      "a private key in jwk": withPrivate,
      "a jwk of another key": await key.proof("POST", TOKEN_URL, { header: { jwk: otherKey } }),
      "no jwk": await key.proof("POST", TOKEN_URL, { header: { jwk: undefined } }),
      "two proofs": `${await key.proof("POST", TOKEN_URL)}, ${await key.proof("POST", TOKEN_URL)}`,
      "not a JWT": "not-a-jwt",
      "an unsigned JWT": `${btoa(JSON.stringify({ alg: "none", typ: "dpop+jwt", jwk: key.publicJwk })).replace(/=/g, "")}.${btoa(JSON.stringify({ htm: "POST", htu: TOKEN_URL, iat: now, jti: "x" })).replace(/=/g, "")}.`,
      "oversized": `${"a".repeat(9000)}.b.c`,
    };
    for (const [name, proof] of Object.entries(cases)) {
      expect({ name, ...(await errorOf(await tokenRequest(api, { grant_type: "client_credentials" }, proof))) }).toEqual({ name, status: 400, error: "invalid_dpop_proof" });
    }
    // A query or fragment on htu is ignored (§4.3 item 9); a future iat within the tolerated skew is fine.
    expect((await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", `${TOKEN_URL}?a=b#c`))).status).toBe(200);
    expect((await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL, { iat: now + 10 }))).status).toBe(200);

    const rp = await makeClient();
    const tokens = await (await codeTokens(rp, key)).response.json<Tokens>();
    const resourceCases: Record<string, string> = {
      "no ath": await key.proof("GET", USERINFO_URL),
      "a wrong ath": await key.proof("GET", USERINFO_URL, { accessToken: `${tokens.access_token}x` }),
      "the token endpoint's htu": await key.proof("GET", TOKEN_URL, { accessToken: tokens.access_token }),
      "another htm": await key.proof("POST", USERINFO_URL, { accessToken: tokens.access_token }),
    };
    for (const [name, proof] of Object.entries(resourceCases)) {
      const response = await userinfoRequest(tokens.access_token, proof);
      expect({ name, status: response.status, challenge: response.headers.get("www-authenticate")?.replace(/, error_description=.*/, "") }).toEqual({
        name,
        status: 401,
        challenge: 'DPoP realm="http://localhost", error="invalid_dpop_proof"',
      });
    }
  });
});

describe("server nonces (RFC 9449 §8, §9) with DPOP_NONCE_SECRET", () => {
  const secret = "n".repeat(44);
  const nonceEnv = { ...env, DPOP_NONCE_SECRET: secret } as Env;

  it("/token: no nonce → use_dpop_nonce with DPoP-Nonce; the retry with it succeeds; a made-up one is use_dpop_nonce again", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [] });
    const key = await DpopKey.generate();
    const first = await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL), nonceEnv);
    expect(await errorOf(first.clone())).toEqual({ status: 400, error: "use_dpop_nonce" });
    const nonce = first.headers.get("dpop-nonce");
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const retry = await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL, { nonce: nonce! }), nonceEnv);
    expect(retry.status).toBe(200);
    expect(retry.headers.get("dpop-nonce")).toBeNull(); // still the current one: nothing to roll
    const madeUp = await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL, { nonce: "A".repeat(43) }), nonceEnv);
    expect(await errorOf(madeUp.clone())).toEqual({ status: 400, error: "use_dpop_nonce" });
    expect(madeUp.headers.get("dpop-nonce")).toBe(nonce);
  });

  it("a nonce of a few minutes ago still works and the answer carries the next one; an older one does not", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [] });
    const key = await DpopKey.generate();
    const now = Math.floor(Date.now() / 1000);
    const [current, threeMinutesAgo, tenMinutesAgo] = await Promise.all([now, now - 180, now - 600].map((t) => nonceWindow(secret, t).then((w) => w.current)));
    const rolled = await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL, { nonce: threeMinutesAgo }), nonceEnv);
    expect(rolled.status).toBe(200);
    expect(rolled.headers.get("dpop-nonce")).toBe(current);
    const stale = await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL, { nonce: tenMinutesAgo }), nonceEnv);
    expect(await errorOf(stale)).toEqual({ status: 400, error: "use_dpop_nonce" });
  });

  it("/userinfo: 401 with WWW-Authenticate: DPoP error=use_dpop_nonce and the nonce; the retry with it succeeds", async () => {
    const rp = await makeClient();
    const key = await DpopKey.generate();
    const tokens = await (await codeTokens(rp, key)).response.json<Tokens>();
    const challenged = await userinfoRequest(tokens.access_token, await key.proof("GET", USERINFO_URL, { accessToken: tokens.access_token }), "DPoP", nonceEnv);
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get("www-authenticate")).toMatch(/^DPoP realm="http:\/\/localhost", error="use_dpop_nonce"/);
    const nonce = challenged.headers.get("dpop-nonce")!;
    const retry = await userinfoRequest(tokens.access_token, await key.proof("GET", USERINFO_URL, { accessToken: tokens.access_token, nonce }), "DPoP", nonceEnv);
    expect(retry.status).toBe(200);
  });

  it("without the secret a nonce in a proof is not asked for and not held against it", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read", redirect_uris: [] });
    const key = await DpopKey.generate();
    expect((await tokenRequest(api, { grant_type: "client_credentials" }, await key.proof("POST", TOKEN_URL, { nonce: "anything" }))).status).toBe(200);
  });
});
