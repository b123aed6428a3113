import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, type RegisteredClient } from "./helpers/dev-server.ts";
import { UserAgent, authorizeAsUser, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * oauth4webapi 3.8.8, unmodified (plain http allowed on loopback), against `wrangler dev`: the core flow with
 * client_secret_post, then the races through the Worker over HTTP, the prompt / max_age rules, the errors a client
 * meets — each answered as the RFCs say — and PAR with DPoP and server nonces (DPOP_NONCE_SECRET is set, so the
 * library's nonce retry is exercised), for a public client and for a FAPI 2.0 one.
 */

const CALLBACK = "https://app.example/callback";

let server: DevServer;
let issuer: string;
let as: oauth.AuthorizationServer;
let app: RegisteredClient;
let otherApp: RegisteredClient;
let appClient: oauth.Client;
let appAuth: oauth.ClientAuth;

const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** The server asks for DPoP nonces: every DPoP client below meets the use_dpop_nonce challenge once, and retries. */
const NONCE_SECRET = "e2e-dpop-nonce-secret-0123456789abcdef";

beforeAll(async () => {
  server = await DevServer.start({ vars: { DPOP_NONCE_SECRET: NONCE_SECRET } });
  issuer = server.issuer;
  [app, otherApp] = await Promise.all([
    server.registerClient({
      client_name: "Four Web",
      redirect_uris: [CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "client_secret_post",
    }),
    server.registerClient({
      client_name: "Other App",
      redirect_uris: ["https://other.example/cb"],
      token_endpoint_auth_method: "client_secret_basic",
    }),
  ]);
  const issuerUrl = new URL(issuer);
  as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { algorithm: "oidc", ...insecure }));
  appClient = { client_id: app.client_id };
  appAuth = oauth.ClientSecretPost(app.client_secret!);
});

afterAll(async () => {
  await server?.dispose();
});

interface Request {
  url: URL;
  state: string;
  nonce: string;
  verifier: string;
}

async function authorizationRequest(extra: Record<string, string> = {}): Promise<Request> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint!);
  const params: Record<string, string> = {
    client_id: app.client_id,
    redirect_uri: CALLBACK,
    response_type: "code",
    scope: "openid email offline_access",
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url, state, nonce, verifier };
}

/** The code exchange the way oauth4webapi does it: validate the response (state, iss), redeem, validate the ID token. */
async function redeem(request: Request, callback: URL, options: oauth.ProcessAuthorizationCodeResponseOptions = {}) {
  const params = oauth.validateAuthResponse(as, appClient, callback, request.state);
  const response = await oauth.authorizationCodeGrantRequest(as, appClient, appAuth, params, CALLBACK, request.verifier, insecure);
  const result = await oauth.processAuthorizationCodeResponse(as, appClient, response, { expectedNonce: request.nonce, requireIdToken: true, ...options });
  return { result, claims: oauth.getValidatedIdTokenClaims(result)! };
}

/** A raw form POST to a back-channel endpoint, for what a library would not send. */
async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(`${issuer}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

async function introspect(token: string, client = appClient, auth = appAuth) {
  return oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, token, insecure));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const email = uniqueEmail("o4w");
let ua: UserAgent;
let authTime = 0;

describe("the core flow with oauth4webapi (client_secret_post)", () => {
  it("sign-in, consent, code (iss validated per RFC 9207), tokens, userinfo, refresh, introspection, revocation", async () => {
    ua = new UserAgent(issuer);
    const request = await authorizationRequest();
    const outcome = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    expect(outcome).toMatchObject({ signedIn: true, consented: true });

    // A response that claims another issuer is refused by the client: the OP's iss is what makes that possible.
    const forged = new URL(outcome.callback);
    forged.searchParams.set("iss", "https://evil.example");
    expect(() => oauth.validateAuthResponse(as, appClient, forged, request.state)).toThrow();

    const { result, claims } = await redeem(request, outcome.callback);
    expect(claims).toMatchObject({ iss: issuer, aud: app.client_id, nonce: request.nonce, amr: ["email"] });
    expect(claims.sid).toBeTruthy();
    authTime = claims.auth_time!;

    const userinfo = await oauth.processUserInfoResponse(as, appClient, claims.sub, await oauth.userInfoRequest(as, appClient, result.access_token, insecure));
    expect(userinfo).toMatchObject({ sub: claims.sub, email, email_verified: true });

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      appClient,
      await oauth.refreshTokenGrantRequest(as, appClient, appAuth, result.refresh_token!, insecure),
    );
    expect(oauth.getValidatedIdTokenClaims(refreshed)).toMatchObject({ sub: claims.sub, auth_time: claims.auth_time });
    expect(refreshed.refresh_token).not.toBe(result.refresh_token);

    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, sub: claims.sub, client_id: app.client_id });
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, appClient, appAuth, refreshed.refresh_token!, insecure));
    expect(await introspect(refreshed.access_token)).toEqual({ active: false });
    expect(await introspect(refreshed.refresh_token!)).toEqual({ active: false });
    const refused = await oauth
      .processUserInfoResponse(as, appClient, claims.sub, await oauth.userInfoRequest(as, appClient, refreshed.access_token, insecure))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    expect((refused as oauth.WWWAuthenticateChallengeError).status).toBe(401);
    expect((refused as oauth.WWWAuthenticateChallengeError).cause[0]).toMatchObject({ scheme: "bearer", parameters: { error: "invalid_token" } });
  });
});

describe("races through the Worker over HTTP", () => {
  it("20 parallel redemptions of one code: at most one 200, the rest invalid_grant, and the replay revokes what the code produced", async () => {
    const request = await authorizationRequest();
    const { callback } = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    const code = callback.searchParams.get("code")!;
    const form = { grant_type: "authorization_code", code, redirect_uri: CALLBACK, code_verifier: request.verifier, client_id: app.client_id, client_secret: app.client_secret! };
    const answers = await Promise.all(Array.from({ length: 20 }, () => post("/token", form)));
    const ok = answers.filter((a) => a.status === 200);
    expect(ok.length).toBeLessThanOrEqual(1);
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused).toHaveLength(20 - ok.length);
    for (const r of refused) expect(r).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    // C1: the code was replayed, so the tokens it produced are revoked — or, when a replay reached the grant before the
    // winning redemption made it, none were produced at all.
    for (const winner of ok) expect(await introspect(winner.body.access_token as string)).toEqual({ active: false });
  });

  it("10 parallel refreshes of one refresh token: exactly one 200", async () => {
    const request = await authorizationRequest();
    const { callback } = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    const { result } = await redeem(request, callback);
    const form = { grant_type: "refresh_token", refresh_token: result.refresh_token!, client_id: app.client_id, client_secret: app.client_secret! };
    const answers = await Promise.all(Array.from({ length: 10 }, () => post("/token", form)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused).toHaveLength(9);
    for (const r of refused) expect(r).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
  });
});

describe("prompt and max_age", () => {
  it("prompt=none without a session: login_required at the redirect URI, with state and iss", async () => {
    const request = await authorizationRequest({ prompt: "none" });
    const response = await new UserAgent(issuer).get(request.url);
    expect(response.status).toBe(303);
    const answer = new URL(response.headers.get("location")!);
    expect(answer.origin + answer.pathname).toBe(CALLBACK);
    expect(Object.fromEntries(answer.searchParams)).toEqual({
      error: "login_required",
      error_description: expect.any(String),
      state: request.state,
      iss: issuer,
    });
    expect(() => oauth.validateAuthResponse(as, appClient, answer, request.state)).toThrow(oauth.AuthorizationResponseError);
  });

  it("prompt=none with a session (and consent given): a code, no page", async () => {
    const request = await authorizationRequest({ prompt: "none" });
    const outcome = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    expect(outcome).toMatchObject({ signedIn: false, consented: false });
    const { claims } = await redeem(request, outcome.callback);
    expect(claims.auth_time).toBe(authTime);
  });

  it("prompt=consent asks again even though consent was remembered", async () => {
    const request = await authorizationRequest({ prompt: "consent" });
    const outcome = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    expect(outcome).toMatchObject({ signedIn: false, consented: true });
  });

  it("max_age larger than the session's age does not ask again; auth_time stays", async () => {
    const request = await authorizationRequest({ max_age: "3600" });
    const outcome = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    expect(outcome.signedIn).toBe(false);
    const { claims } = await redeem(request, outcome.callback, { maxAge: 3600 });
    expect(claims.auth_time).toBe(authTime);
  });

  it("prompt=login signs the user in again: auth_time moves", async () => {
    await sleep(1100); // auth_time has a resolution of one second
    const request = await authorizationRequest({ prompt: "login" });
    const outcome = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    expect(outcome.signedIn).toBe(true);
    const { claims } = await redeem(request, outcome.callback);
    expect(claims.auth_time).toBeGreaterThan(authTime);
    authTime = claims.auth_time!;
  });

  it("max_age=0 forces re-authentication: auth_time moves again", async () => {
    await sleep(1100);
    const request = await authorizationRequest({ max_age: "0" });
    const outcome = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    expect(outcome.signedIn).toBe(true);
    const { claims } = await redeem(request, outcome.callback, { maxAge: 0 });
    expect(claims.auth_time).toBeGreaterThan(authTime);
  });
});

describe("errors a client meets", () => {
  it("an unregistered redirect_uri gets an error page, never a redirect", async () => {
    for (const redirectUri of ["https://evil.example/callback", `${CALLBACK}/x`, CALLBACK.toUpperCase(), `${CALLBACK}?x=1`]) {
      const request = await authorizationRequest({ redirect_uri: redirectUri });
      const response = await fetch(request.url, { redirect: "manual" });
      expect(response.status).toBe(400);
      expect(response.headers.get("location")).toBeNull();
      expect(response.headers.get("content-type")).toMatch(/^text\/html/);
      expect(await response.text()).toContain("redirect_uri");
    }
  });

  it("a missing response_type is invalid_request at the (registered) redirect URI", async () => {
    const request = await authorizationRequest();
    request.url.searchParams.delete("response_type");
    const response = await fetch(request.url, { redirect: "manual" });
    expect(response.status).toBe(303);
    const answer = new URL(response.headers.get("location")!);
    expect(answer.origin + answer.pathname).toBe(CALLBACK);
    expect(Object.fromEntries(answer.searchParams)).toMatchObject({ error: "invalid_request", state: request.state, iss: issuer });
  });

  it("a wrong PKCE verifier is invalid_grant", async () => {
    const request = await authorizationRequest();
    const { callback } = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    const params = oauth.validateAuthResponse(as, appClient, callback, request.state);
    const response = await oauth.authorizationCodeGrantRequest(as, appClient, appAuth, params, CALLBACK, oauth.generateRandomCodeVerifier(), insecure);
    await expect(oauth.processAuthorizationCodeResponse(as, appClient, response)).rejects.toMatchObject({ error: "invalid_grant", status: 400 });
  });

  it("a wrong client secret: 401 invalid_client, with a Basic challenge when Basic was used", async () => {
    const viaBasic = await post("/token", { grant_type: "refresh_token", refresh_token: "x.y" }, { authorization: basic(otherApp.client_id, "wrong-secret") });
    expect(viaBasic).toMatchObject({ status: 401, body: { error: "invalid_client" } });
    expect(viaBasic.headers.get("www-authenticate")).toMatch(/^Basic /);
    const viaPost = await post("/token", { grant_type: "refresh_token", refresh_token: "x.y", client_id: app.client_id, client_secret: "wrong-secret" });
    expect(viaPost).toMatchObject({ status: 401, body: { error: "invalid_client" } });
    expect(viaPost.headers.get("www-authenticate")).toBeNull();
    // A wrong secret by the other way of sending one is no better; the right one by either way authenticates
    // (RFC 6749 §2.3.1), so the request gets as far as the refresh token.
    const wrongViaBasic = await post("/token", { grant_type: "refresh_token", refresh_token: "x.y" }, { authorization: basic(app.client_id, "wrong-secret") });
    expect(wrongViaBasic).toMatchObject({ status: 401, body: { error: "invalid_client" } });
    const otherWay = await post("/token", { grant_type: "refresh_token", refresh_token: "x.y" }, { authorization: basic(app.client_id, app.client_secret!) });
    expect(otherWay).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
  });

  it("introspection and revocation need client credentials, and show or revoke only the caller's own tokens", async () => {
    const request = await authorizationRequest();
    const { callback } = await authorizeAsUser(ua, request.url, { email, redirectUri: CALLBACK });
    const { result } = await redeem(request, callback);

    for (const path of ["/introspect", "/revoke"]) {
      const anonymous = await post(path, { token: result.access_token });
      expect(anonymous).toMatchObject({ status: 401, body: { error: "invalid_client" } });
      const idOnly = await post(path, { token: result.access_token, client_id: app.client_id });
      expect(idOnly).toMatchObject({ status: 401, body: { error: "invalid_client" } });
    }

    const other = { authorization: basic(otherApp.client_id, otherApp.client_secret!) };
    expect(await post("/introspect", { token: result.access_token }, other)).toMatchObject({ status: 200, body: { active: false } });
    expect(await post("/introspect", { token: result.refresh_token! }, other)).toMatchObject({ status: 200, body: { active: false } });
    // RFC 7009 §2.2: answered like success, and nothing is revoked.
    expect((await post("/revoke", { token: result.access_token }, other)).status).toBe(200);
    expect((await post("/revoke", { token: result.refresh_token! }, other)).status).toBe(200);
    expect(await introspect(result.access_token)).toMatchObject({ active: true });
    expect(await introspect(result.refresh_token!)).toMatchObject({ active: true });
  });
});

/**
 * oauth4webapi's documented way to meet a server nonce: the DPoP handle keeps the nonce of every answer, and a request
 * refused with use_dpop_nonce (isDPoPNonceError) is sent once more, then carrying it.
 */
async function withNonceRetry<T>(send: () => Promise<Response>, process: (response: Response) => Promise<T>): Promise<{ result: T; challenged: boolean }> {
  try {
    return { result: await process(await send()), challenged: false };
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    return { result: await process(await send()), challenged: true };
  }
}

describe("PAR, DPoP and server nonces with oauth4webapi (RFC 9126, RFC 9449)", () => {
  const SPA_CALLBACK = "http://127.0.0.1:5173/callback";

  it("a public client: PAR with a proof (the nonce challenge answered by the library's retry), PKCE, a bound code, DPoP userinfo, DPoP refresh", async () => {
    const spa = await server.registerClient({
      client_name: "DPoP SPA",
      redirect_uris: [SPA_CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
      dpop_bound_access_tokens: true,
      require_pushed_authorization_requests: true,
    });
    const client: oauth.Client = { client_id: spa.client_id };
    const auth = oauth.None();
    const keys = await oauth.generateKeyPair("ES256");
    const DPoP = oauth.DPoP(client, keys);
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const parameters = {
      redirect_uri: SPA_CALLBACK,
      response_type: "code",
      scope: "openid email offline_access",
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    };

    // A plain authorization request is refused: this client must push its requests.
    const plain = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({ ...parameters, client_id: spa.client_id })) plain.searchParams.set(k, v);
    const refused = new URL((await fetch(plain, { redirect: "manual" })).headers.get("location")!);
    expect(refused.searchParams.get("error")).toBe("invalid_request");

    const pushed = await withNonceRetry(
      () => oauth.pushedAuthorizationRequest(as, client, auth, parameters, { DPoP, ...insecure }),
      (response) => oauth.processPushedAuthorizationResponse(as, client, response),
    );
    expect(pushed.challenged).toBe(true);
    expect(pushed.result.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);

    const authorizationUrl = new URL(as.authorization_endpoint!);
    authorizationUrl.searchParams.set("client_id", spa.client_id);
    authorizationUrl.searchParams.set("request_uri", pushed.result.request_uri);
    const { callback } = await authorizeAsUser(new UserAgent(issuer), authorizationUrl, { email: uniqueEmail("dpop-spa"), redirectUri: SPA_CALLBACK });
    const params = oauth.validateAuthResponse(as, client, callback, state);

    // The client registered dpop_bound_access_tokens: a token request without a proof is refused (and the code, bound
    // to the key it was pushed with, is not spent).
    const unbound = await oauth.authorizationCodeGrantRequest(as, client, auth, params, SPA_CALLBACK, verifier, insecure);
    await expect(oauth.processAuthorizationCodeResponse(as, client, unbound)).rejects.toMatchObject({ error: "invalid_dpop_proof" });
    // The nonce is cached by now: no second challenge.
    const exchanged = await withNonceRetry(
      () => oauth.authorizationCodeGrantRequest(as, client, auth, params, SPA_CALLBACK, verifier, { DPoP, ...insecure }),
      (response) => oauth.processAuthorizationCodeResponse(as, client, response),
    );
    expect(exchanged.challenged).toBe(false);
    const tokens = exchanged.result;
    expect(tokens.token_type).toBe("dpop");
    const claims = oauth.getValidatedIdTokenClaims(tokens)!;

    const userinfo = await oauth.processUserInfoResponse(as, client, claims.sub, await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure }));
    expect(userinfo.sub).toBe(claims.sub);
    // A bound token is no Bearer token.
    const asBearer = await oauth.processUserInfoResponse(as, client, claims.sub, await oauth.userInfoRequest(as, client, tokens.access_token, insecure)).catch((e: unknown) => e);
    expect(asBearer).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    expect((asBearer as oauth.WWWAuthenticateChallengeError).status).toBe(401);

    // The refresh token of a public client is bound to the key too (RFC 9449 §5).
    const thief = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
    const stolen = withNonceRetry(
      () => oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, { DPoP: thief, ...insecure }),
      (response) => oauth.processRefreshTokenResponse(as, client, response),
    );
    await expect(stolen).rejects.toMatchObject({ error: "invalid_grant" });
    const refreshed = await withNonceRetry(
      () => oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, { DPoP, ...insecure }),
      (response) => oauth.processRefreshTokenResponse(as, client, response),
    );
    expect(refreshed.result.token_type).toBe("dpop");
    expect(refreshed.result.refresh_token).not.toBe(tokens.refresh_token);
    const again = await oauth.processUserInfoResponse(as, client, claims.sub, await oauth.userInfoRequest(as, client, refreshed.result.access_token, { DPoP, ...insecure }));
    expect(again.sub).toBe(claims.sub);
  });

  it("a FAPI 2.0 client (security_profile fapi2, private_key_jwt): PAR, PKCE and DPoP, ES256 tokens", async () => {
    const signing = await oauth.generateKeyPair("ES256");
    const publicJwk = { ...(await crypto.subtle.exportKey("jwk", signing.publicKey)), kid: "fapi-key-1", alg: "ES256", use: "sig" };
    const bank = await server.registerClient({
      client_name: "FAPI bank app",
      redirect_uris: [CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "private_key_jwt",
      jwks: { keys: [publicJwk] },
      security_profile: "fapi2",
    });
    expect(bank).toMatchObject({ dpop_bound_access_tokens: true, require_pushed_authorization_requests: true, id_token_signed_response_alg: "ES256" });
    const client: oauth.Client = { client_id: bank.client_id, id_token_signed_response_alg: "ES256" };
    const auth = oauth.PrivateKeyJwt({ key: signing.privateKey, kid: "fapi-key-1" });
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const pushed = await withNonceRetry(
      () =>
        oauth.pushedAuthorizationRequest(
          as,
          client,
          auth,
          { redirect_uri: CALLBACK, response_type: "code", scope: "openid email", state, nonce, code_challenge: "", code_challenge_method: "S256" },
          { DPoP, ...insecure },
        ),
      (response) => oauth.processPushedAuthorizationResponse(as, client, response),
    ).catch((e: unknown) => e);
    // Without PKCE (an empty challenge is none), a FAPI client is refused even though it is confidential.
    expect(pushed).toMatchObject({ error: "invalid_request" });

    const { result } = await withNonceRetry(
      async () =>
        oauth.pushedAuthorizationRequest(
          as,
          client,
          auth,
          { redirect_uri: CALLBACK, response_type: "code", scope: "openid email", state, nonce, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" },
          { DPoP, ...insecure },
        ),
      (response) => oauth.processPushedAuthorizationResponse(as, client, response),
    );
    expect(result.expires_in).toBeLessThan(600);
    const authorizationUrl = new URL(as.authorization_endpoint!);
    authorizationUrl.searchParams.set("client_id", bank.client_id);
    authorizationUrl.searchParams.set("request_uri", result.request_uri);
    const { callback } = await authorizeAsUser(new UserAgent(issuer), authorizationUrl, { email: uniqueEmail("fapi"), redirectUri: CALLBACK });
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const { result: tokens } = await withNonceRetry(
      () => oauth.authorizationCodeGrantRequest(as, client, auth, params, CALLBACK, verifier, { DPoP, ...insecure }),
      (response) => oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true }),
    );
    expect(tokens.token_type).toBe("dpop");
    const claims = oauth.getValidatedIdTokenClaims(tokens)!;
    const { result: info } = await withNonceRetry(
      () => oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure }),
      (response) => oauth.processUserInfoResponse(as, client, claims.sub, response),
    );
    expect(info.sub).toBe(claims.sub);
  });
});
