import { createHash } from "node:crypto";
import { createRemoteJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, queryStoppedD1, type RegisteredClient } from "./helpers/dev-server.ts";
import { UserAgent, authorizeAsUser, formWithAction, newMailboxLink, seenLinks, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * What a developer does with the README: `wrangler dev` (as `npm start` runs it), clients registered through the admin
 * API, and openid-client 6 pointed at the issuer — unmodified, except that plain http is allowed on loopback. A person
 * signs in with the emailed link and consents; the app gets tokens, validates the ID token, reads userinfo, refreshes,
 * introspects, revokes, and logs the user out. A second app uses client_credentials; a public app uses PKCE alone.
 */

const CALLBACK = "https://app.example/callback";
const LOGGED_OUT = "https://app.example/logged-out";

let server: DevServer;
let issuer: string;
let webApp: RegisteredClient;
let serviceApp: RegisteredClient;
let publicApp: RegisteredClient;
let config: client.Configuration;

/** http on 127.0.0.1: the only change to openid-client's defaults (it refuses plain http otherwise). */
const insecureOnLoopback = { execute: [client.allowInsecureRequests] };

beforeAll(async () => {
  // DPoP nonces on (RFC 9449 §8): openid-client answers the use_dpop_nonce challenge itself; nothing else changes.
  server = await DevServer.start({ vars: { DPOP_NONCE_SECRET: "openid-client-e2e-nonce-secret-0123456789" } });
  issuer = server.issuer;
  [webApp, serviceApp, publicApp] = await Promise.all([
    // openid-client authenticates with client_secret_post when given a secret and no method.
    server.registerClient({
      client_name: "Acme Web",
      redirect_uris: [CALLBACK],
      post_logout_redirect_uris: [LOGGED_OUT],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "client_secret_post",
    }),
    server.registerClient({
      client_name: "Acme Reports Service",
      grant_types: ["client_credentials"],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "reports:read reports:write",
    }),
    server.registerClient({
      client_name: "Acme SPA",
      redirect_uris: [CALLBACK],
      token_endpoint_auth_method: "none",
      scope: "openid email",
    }),
  ]);
  config = await client.discovery(new URL(issuer), webApp.client_id, webApp.client_secret, undefined, insecureOnLoopback);
});

afterAll(async () => {
  await server?.dispose();
});

function atHash(accessToken: string): string {
  return createHash("sha256").update(accessToken).digest().subarray(0, 16).toString("base64url");
}

/** openid-client's error for a 401 from a protected resource carries the status and the parsed challenges. */
async function challengeOf(promise: Promise<unknown>): Promise<{ status: number; scheme: string; error: string | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof client.WWWAuthenticateChallengeError) {
      const challenge = error.cause[0]!;
      return { status: error.status, scheme: challenge.scheme, error: challenge.parameters.error };
    }
    throw error;
  }
  throw new Error("expected the request to be refused");
}

async function authorizationRequest(extra: Record<string, string> = {}, cfg = config) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: CALLBACK,
    scope: "openid profile email offline_access",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    state,
    nonce,
    ...extra,
  });
  return { url, codeVerifier, state, nonce };
}

describe("openid-client against wrangler dev", () => {
  const email = uniqueEmail("oc");
  let ua: UserAgent;
  let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
  let firstIdToken: string;
  let authTimeWindow: [number, number];

  it("discovers the provider: issuer, endpoints and the capabilities it really has", () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(issuer);
    expect(metadata.authorization_endpoint).toBe(`${issuer}/authorize`);
    expect(metadata.token_endpoint).toBe(`${issuer}/token`);
    expect(metadata.end_session_endpoint).toBe(`${issuer}/logout`);
    expect(metadata.code_challenge_methods_supported).toEqual(["S256"]);
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    expect(metadata.supportsPKCE()).toBe(true);
  });

  it("a person signs in with the emailed link and consents; the app redeems the code with PKCE", async () => {
    ua = new UserAgent(issuer);
    const { url, codeVerifier, state, nonce } = await authorizationRequest();
    expect(url.origin + url.pathname).toBe(`${issuer}/authorize`);

    // The authorize URL sends the browser to the sign-in page.
    const start = await ua.get(url);
    expect(start.status).toBe(303);
    const loginUrl = new URL(start.headers.get("location")!, issuer);
    expect(loginUrl.pathname).toBe("/login");
    const loginPage = await ua.get(loginUrl);
    expect(loginPage.status).toBe(200);
    const loginHtml = await loginPage.text();
    expect(loginHtml).toContain("Acme Web");
    const signInForm = formWithAction(loginHtml, "/login");
    expect(signInForm.inputs).toContain("email");
    expect(signInForm.fields.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ua.jar.cookies.get("oidc_csrf")).toBe(signInForm.fields.csrf_token);

    // Typing the address sends a link, which the dev transport keeps in the mailbox.
    const sent = await ua.submit(signInForm, { email });
    expect(sent.status).toBe(200);
    expect(await sent.text()).toContain("Check your email");
    const beforeLink = Math.floor(Date.now() / 1000);
    const link = await newMailboxLink(issuer, email, seenLinks);
    expect(link).toMatch(new RegExp(`^${issuer.replace(/\./g, "\\.")}/login/email\\?token=`));
    const mailbox = (await (await fetch(`${issuer}/dev/mailbox?to=${encodeURIComponent(email)}`)).json()) as Record<string, unknown>[];
    expect(mailbox[0]).toMatchObject({ to: email, link, subject: expect.any(String), sentAt: expect.any(Number) });
    expect(mailbox[0]!.text).toContain(link);

    // Opening the link shows a confirmation (a prefetching scanner cannot use it up); confirming signs in.
    const confirmPage = await ua.get(link);
    expect(confirmPage.status).toBe(200);
    const confirmForm = formWithAction(await confirmPage.text(), "/login/email");
    const signedIn = await ua.submit(confirmForm);
    expect(signedIn.status).toBe(303);
    const sessionCookie = signedIn.headers.getSetCookie().find((c) => c.startsWith("oidc_session="));
    expect(sessionCookie).toMatch(/HttpOnly/i);
    expect(sessionCookie).toMatch(/SameSite=Lax/i);
    expect(sessionCookie).not.toMatch(/Secure/i); // plain http on 127.0.0.1; __Host- and Secure on https issuers

    // Back to the request, which now needs consent.
    const resumed = await ua.get(new URL(signedIn.headers.get("location")!, issuer));
    expect(resumed.status).toBe(303);
    const consentUrl = new URL(resumed.headers.get("location")!, issuer);
    expect(consentUrl.pathname).toBe("/consent");
    const consentPage = await ua.get(consentUrl);
    const consentHtml = await consentPage.text();
    expect(consentHtml).toContain("Acme Web");
    for (const scope of ["openid", "profile", "email", "offline_access"]) expect(consentHtml).toContain(`(${scope})`);
    const consentForm = formWithAction(consentHtml, "/consent");
    expect(consentForm.buttons).toEqual(expect.arrayContaining([{ name: "decision", value: "allow" }, { name: "decision", value: "deny" }]));
    const allowed = await ua.submit(consentForm, { decision: "allow" });
    expect(allowed.status).toBe(303);

    // The code arrives at the redirect URI with state and iss (RFC 9207).
    const callback = new URL(allowed.headers.get("location")!);
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    expect(callback.searchParams.get("state")).toBe(state);
    expect(callback.searchParams.get("iss")).toBe(issuer);
    expect(callback.searchParams.get("code")).toBeTruthy();

    tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    authTimeWindow = [beforeLink, Math.floor(Date.now() / 1000)];
    expect(tokens.token_type.toLowerCase()).toBe("bearer");
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeTruthy(); // offline_access was granted
    expect(tokens.id_token).toBeTruthy();
    firstIdToken = tokens.id_token!;
  });

  it("the ID token is signed with a published key and carries iss, aud, sub, auth_time, nonce, sid, amr and at_hash", async () => {
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(firstIdToken, jwks, { issuer, audience: webApp.client_id });
    expect(protectedHeader.alg).toBe("RS256");
    expect(protectedHeader.kid).toBeTruthy();
    const claims = tokens.claims()!;
    expect(claims).toEqual(payload);
    expect(claims.iss).toBe(issuer);
    expect([claims.aud].flat()).toContain(webApp.client_id);
    expect(claims.sub).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(claims.auth_time).toBeGreaterThanOrEqual(authTimeWindow[0] - 1);
    expect(claims.auth_time).toBeLessThanOrEqual(authTimeWindow[1]);
    expect(claims.sid).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(claims.amr).toEqual(["email"]);
    expect(claims.at_hash).toBe(atHash(tokens.access_token));
    expect(claims.exp).toBeGreaterThan(claims.iat);
    // The access token is an RFC 9068 JWT.
    expect(decodeProtectedHeader(tokens.access_token).typ).toBe("at+jwt");
  });

  it("the ID token itself carries the claims of the granted scopes (email, and the name once the user has one) and the acr that was asked for", async () => {
    // What an RP that builds its user from the ID token (Auth.js, express-openid-connect, passport) reads.
    const first = tokens.claims()!;
    expect(first).toMatchObject({ email, email_verified: true, updated_at: expect.any(Number) });
    expect(first.name).toBeUndefined(); // signed up a moment ago by email: no name yet
    expect(first.acr).toBeUndefined(); // none asked for

    // The user gets a name (a D1 row changed while the server is stopped); the next sign-in to the app carries it.
    server = await server.restart(() => queryStoppedD1(server.stateDir, [`UPDATE users SET name = 'Ada Lovelace' WHERE email = '${email}'`]));
    const { url, codeVerifier, state, nonce } = await authorizationRequest({ acr_values: "phr 0" });
    const outcome = await authorizeAsUser(ua, url, { email, redirectUri: CALLBACK });
    expect(outcome).toMatchObject({ signedIn: false, consented: false });
    const again = await client.authorizationCodeGrant(config, outcome.callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(again.claims()).toMatchObject({ sub: first.sub, email, email_verified: true, name: "Ada Lovelace", acr: "0" });
    // The scope bounds it: no address or phone was asked for.
    expect(again.claims()!.address).toBeUndefined();
    expect(config.serverMetadata().acr_values_supported).toEqual(["phrh", "phr", "0"]);
  });

  it("userinfo answers with the claims of the granted scopes", async () => {
    const sub = tokens.claims()!.sub;
    const info = await client.fetchUserInfo(config, tokens.access_token, sub);
    expect(info).toMatchObject({ sub, email, email_verified: true });
  });

  it("refresh rotates the refresh token and keeps sub and auth_time", async () => {
    const before = tokens.claims()!;
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()).toMatchObject({ sub: before.sub, auth_time: before.auth_time, sid: before.sid });
    // The rotated-out refresh token is spent.
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
    // …and presenting it again was reuse: the whole grant is revoked (RFC 9700 §4.14.2), the new tokens included.
    expect(await client.tokenIntrospection(config, refreshed.access_token)).toEqual({ active: false });
    tokens = refreshed;
  });

  it("introspection and revocation of a fresh grant: access token, then refresh token (the whole grant)", async () => {
    const { url, codeVerifier, state, nonce } = await authorizationRequest();
    // Signed in and consented already: straight back with a code.
    const outcome = await authorizeAsUser(ua, url, { email, redirectUri: CALLBACK });
    expect(outcome).toMatchObject({ signedIn: false, consented: false });
    tokens = await client.authorizationCodeGrant(config, outcome.callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    const sub = tokens.claims()!.sub;

    const introspected = await client.tokenIntrospection(config, tokens.access_token);
    expect(introspected).toMatchObject({ active: true, client_id: webApp.client_id, sub, iss: issuer, token_type: "Bearer" });
    expect(introspected.scope?.split(" ")).toEqual(expect.arrayContaining(["openid", "email", "offline_access"]));
    expect(await client.tokenIntrospection(config, tokens.refresh_token!)).toMatchObject({ active: true, client_id: webApp.client_id, sub });

    // Revoking the access token: inactive at introspection, refused at userinfo; the refresh token lives on.
    await client.tokenRevocation(config, tokens.access_token);
    expect(await client.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false });
    expect(await challengeOf(client.fetchUserInfo(config, tokens.access_token, sub))).toEqual({ status: 401, scheme: "bearer", error: "invalid_token" });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(await client.fetchUserInfo(config, refreshed.access_token, sub)).toMatchObject({ sub });

    // Revoking the refresh token revokes the grant: its access tokens too.
    await client.tokenRevocation(config, refreshed.refresh_token!);
    expect(await client.tokenIntrospection(config, refreshed.refresh_token!)).toEqual({ active: false });
    expect(await client.tokenIntrospection(config, refreshed.access_token)).toEqual({ active: false });
    expect(await challengeOf(client.fetchUserInfo(config, refreshed.access_token, sub))).toEqual({ status: 401, scheme: "bearer", error: "invalid_token" });
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("the client_secret_post app may send its secret by HTTP Basic at /introspect and /revoke, as Authlib does (RFC 6749 §2.3.1)", async () => {
    const { url, codeVerifier, state, nonce } = await authorizationRequest();
    const outcome = await authorizeAsUser(ua, url, { email, redirectUri: CALLBACK });
    const granted = await client.authorizationCodeGrant(config, outcome.callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    const viaBasic = await client.discovery(new URL(issuer), webApp.client_id, undefined, client.ClientSecretBasic(webApp.client_secret), insecureOnLoopback);
    expect(await client.tokenIntrospection(viaBasic, granted.access_token)).toMatchObject({ active: true, client_id: webApp.client_id });
    await client.tokenRevocation(viaBasic, granted.refresh_token!);
    expect(await client.tokenIntrospection(viaBasic, granted.refresh_token!)).toEqual({ active: false });
    expect(await client.tokenIntrospection(config, granted.access_token)).toEqual({ active: false });
  });

  it("RP-initiated logout with the ID token ends the session: prompt=none then gets login_required", async () => {
    const sub = tokens.claims()!.sub;
    // While signed in, prompt=none answers with a code.
    const silent = await authorizationRequest({ prompt: "none" });
    const before = await authorizeAsUser(ua, silent.url, { email, redirectUri: CALLBACK });
    expect(before.callback.searchParams.get("code")).toBeTruthy();
    expect((await server.admin<{ sessions: unknown[] }>("GET", `/admin/users/${sub}/sessions`)).body.sessions).toHaveLength(1);

    const logoutState = client.randomState();
    const logoutUrl = client.buildEndSessionUrl(config, { id_token_hint: firstIdToken, post_logout_redirect_uri: LOGGED_OUT, state: logoutState });
    expect(logoutUrl.origin + logoutUrl.pathname).toBe(`${issuer}/logout`);
    const loggedOut = await ua.get(logoutUrl);
    expect(loggedOut.status).toBe(303);
    expect(loggedOut.headers.get("location")).toBe(`${LOGGED_OUT}?state=${logoutState}`);
    expect(ua.jar.cookies.has("oidc_session")).toBe(false);
    expect((await server.admin<{ sessions: unknown[] }>("GET", `/admin/users/${sub}/sessions`)).body.sessions).toEqual([]);

    const after = await authorizationRequest({ prompt: "none" });
    const refused = await ua.get(after.url);
    expect(refused.status).toBe(303);
    const answer = new URL(refused.headers.get("location")!);
    expect(answer.origin + answer.pathname).toBe(CALLBACK);
    expect(Object.fromEntries(answer.searchParams)).toMatchObject({ error: "login_required", state: after.state, iss: issuer });
    // openid-client turns it into the error it is.
    await expect(client.authorizationCodeGrant(config, answer, { pkceCodeVerifier: after.codeVerifier, expectedState: after.state })).rejects.toMatchObject({
      error: "login_required",
    });
  });
});

describe("client_credentials for a second app (client_secret_basic)", () => {
  it("gets an access token for the app itself, which introspection recognises", async () => {
    const service = await client.discovery(new URL(issuer), serviceApp.client_id, undefined, client.ClientSecretBasic(serviceApp.client_secret), insecureOnLoopback);
    const granted = await client.clientCredentialsGrant(service, { scope: "reports:read" });
    expect(granted.token_type.toLowerCase()).toBe("bearer");
    expect(granted.scope).toBe("reports:read");
    expect(granted.refresh_token).toBeUndefined();
    expect(granted.id_token).toBeUndefined();
    expect(await client.tokenIntrospection(service, granted.access_token)).toMatchObject({
      active: true,
      client_id: serviceApp.client_id,
      sub: serviceApp.client_id,
      scope: "reports:read",
    });
    // A user scope is not the app's to have.
    await expect(client.clientCredentialsGrant(service, { scope: "openid email" })).rejects.toMatchObject({ error: "invalid_scope" });
    // Revocable like any other token.
    await client.tokenRevocation(service, granted.access_token);
    expect(await client.tokenIntrospection(service, granted.access_token)).toEqual({ active: false });
  });

  it("a wrong secret is refused with 401 and a Basic challenge (RFC 6749 §5.2)", async () => {
    const wrong = await client.discovery(new URL(issuer), serviceApp.client_id, undefined, client.ClientSecretBasic("not-the-secret"), insecureOnLoopback);
    expect(await challengeOf(client.clientCredentialsGrant(wrong))).toMatchObject({ status: 401, scheme: "basic" });
  });
});

describe("a private_key_jwt service that signs hour-long assertions, as Authlib does", () => {
  it("is authenticated at /token and /introspect; a two-hour assertion is refused", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const keyApp = await server.registerClient({
      client_name: "Acme Key Service",
      grant_types: ["client_credentials"],
      token_endpoint_auth_method: "private_key_jwt",
      scope: "reports:read",
      jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: "ES256", kid: "k1" }] },
    });
    // openid-client signs for 60 s; Authlib signs for an hour (exp = iat + 3600).
    const signedFor = (seconds: number) =>
      client.PrivateKeyJwt({ key: privateKey, kid: "k1" }, {
        [client.modifyAssertion]: (_header, payload) => {
          payload.exp = (payload.iat as number) + seconds;
        },
      });
    const hourLong = await client.discovery(new URL(issuer), keyApp.client_id, undefined, signedFor(3600), insecureOnLoopback);
    const granted = await client.clientCredentialsGrant(hourLong, { scope: "reports:read" });
    expect(await client.tokenIntrospection(hourLong, granted.access_token)).toMatchObject({ active: true, client_id: keyApp.client_id });
    const twoHours = await client.discovery(new URL(issuer), keyApp.client_id, undefined, signedFor(7200), insecureOnLoopback);
    await expect(client.clientCredentialsGrant(twoHours, { scope: "reports:read" })).rejects.toMatchObject({ error: "invalid_client" });
  });
});

describe("a public client (token_endpoint_auth_method none) with PKCE", () => {
  it("signs a user in and redeems the code with the verifier alone", async () => {
    const spa = await client.discovery(new URL(issuer), publicApp.client_id, undefined, client.None(), insecureOnLoopback);
    const { url, codeVerifier, state, nonce } = await authorizationRequest({ scope: "openid email" }, spa);
    const outcome = await authorizeAsUser(new UserAgent(issuer), url, { email: uniqueEmail("spa"), redirectUri: CALLBACK });
    expect(outcome).toMatchObject({ signedIn: true, consented: true });
    const granted = await client.authorizationCodeGrant(spa, outcome.callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(granted.claims()).toMatchObject({ iss: issuer, aud: publicApp.client_id, nonce });
    expect(granted.refresh_token).toBeUndefined();
  });

  it("without a code_challenge the request is refused at the redirect URI (PKCE is required for public clients)", async () => {
    const spa = await client.discovery(new URL(issuer), publicApp.client_id, undefined, client.None(), insecureOnLoopback);
    const url = client.buildAuthorizationUrl(spa, { redirect_uri: CALLBACK, scope: "openid", state: "s1" });
    const response = await fetch(url, { redirect: "manual" });
    expect(response.status).toBe(303);
    const answer = new URL(response.headers.get("location")!);
    expect(Object.fromEntries(answer.searchParams)).toMatchObject({ error: "invalid_request", state: "s1", iss: issuer });
  });
});

describe("PAR and DPoP with openid-client (it retries the nonce challenge by itself)", () => {
  it("buildAuthorizationUrlWithPAR with a DPoP handle, then the code, userinfo and refresh, all DPoP-bound", async () => {
    const app = await server.registerClient({
      client_name: "Acme PAR app",
      redirect_uris: [CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "client_secret_post",
      require_pushed_authorization_requests: true,
      dpop_bound_access_tokens: true,
    });
    const parConfig = await client.discovery(new URL(issuer), app.client_id, app.client_secret, undefined, insecureOnLoopback);
    expect(parConfig.serverMetadata()).toMatchObject({ pushed_authorization_request_endpoint: `${issuer}/par`, dpop_signing_alg_values_supported: expect.arrayContaining(["ES256"]) });
    const DPoP = client.getDPoPHandle(parConfig, await client.randomDPoPKeyPair("ES256"));
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = await client.buildAuthorizationUrlWithPAR(
      parConfig,
      { redirect_uri: CALLBACK, scope: "openid email offline_access", code_challenge: await client.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: "S256", state, nonce },
      { DPoP },
    );
    expect([...url.searchParams.keys()].sort()).toEqual(["client_id", "request_uri"]);
    const { callback } = await authorizeAsUser(new UserAgent(issuer), url, { email: uniqueEmail("oc-par"), redirectUri: CALLBACK });
    const tokens = await client.authorizationCodeGrant(parConfig, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce }, undefined, { DPoP });
    expect(tokens.token_type).toBe("dpop");
    const sub = tokens.claims()!.sub;
    expect(await client.fetchUserInfo(parConfig, tokens.access_token, sub, { DPoP })).toMatchObject({ sub });
    expect(await challengeOf(client.fetchUserInfo(parConfig, tokens.access_token, sub))).toMatchObject({ status: 401, error: "invalid_token" });
    const refreshed = await client.refreshTokenGrant(parConfig, tokens.refresh_token!, undefined, { DPoP });
    expect(refreshed.token_type).toBe("dpop");
    // Without a proof, this client is refused: its access tokens are DPoP-bound.
    await expect(client.refreshTokenGrant(parConfig, refreshed.refresh_token!)).rejects.toMatchObject({ error: "invalid_dpop_proof" });
  });
});
